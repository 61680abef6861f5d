"""Customers and terminals: drawn once from the seed, never from the day."""

from dataclasses import dataclass

import numpy as np

HOME_COUNTRIES = ("NL", "DE", "BE", "FR", "ES")
CHANNELS = ("pos", "ecommerce", "atm")
MERCHANT_CATEGORIES = (
    "grocery",
    "restaurant",
    "fuel",
    "retail",
    "travel",
    "electronics",
    "digital_goods",
    "cash_withdrawal",
)
HOME_COUNTRY_WEIGHTS = np.array([0.40, 0.20, 0.15, 0.15, 0.10])
# Countries no simulated customer ever transacts in legitimately: foreign fraud happens there.
FOREIGN_COUNTRIES = ("US", "BR", "TH", "ZA", "MX")
CATEGORY_WEIGHTS = np.array([0.30, 0.18, 0.10, 0.17, 0.05, 0.06, 0.08, 0.06])
TERMINALS_PER_CUSTOMER = 2
FOREIGN_TERMINAL_SHARE = 0.05

# Channel of each merchant category, in MERCHANT_CATEGORIES order.
_CATEGORY_CHANNEL = {
    "grocery": "pos",
    "restaurant": "pos",
    "fuel": "pos",
    "retail": "pos",
    "travel": "ecommerce",
    "electronics": "ecommerce",
    "digital_goods": "ecommerce",
    "cash_withdrawal": "atm",
}
assert set(_CATEGORY_CHANNEL.values()) <= set(CHANNELS)
assert tuple(_CATEGORY_CHANNEL) == MERCHANT_CATEGORIES


@dataclass(frozen=True)
class Population:
    customer_ids: np.ndarray  # str
    home_country: np.ndarray  # index into HOME_COUNTRIES
    travel_country: np.ndarray  # index into HOME_COUNTRIES, never the home country
    mean_amount: np.ndarray
    std_amount: np.ndarray
    daily_rate: np.ndarray
    active_hour: np.ndarray
    active_spread: np.ndarray
    usual_terminals: np.ndarray  # [customers, max_k] terminal indices, padded
    usual_terminal_count: np.ndarray
    terminal_ids: np.ndarray  # str
    terminal_country: np.ndarray  # str (home and foreign countries)
    terminal_category: np.ndarray  # str
    terminal_channel: np.ndarray  # str
    terminals_by_country: dict[str, np.ndarray]
    online_terminals: dict[str, np.ndarray]  # per home country, ecommerce terminals

    @property
    def n_customers(self) -> int:
        return len(self.customer_ids)


def build_population(seed: int, n_customers: int) -> Population:
    rng = np.random.default_rng([seed, 0, 0])
    n_home = len(HOME_COUNTRIES)

    home = rng.choice(n_home, size=n_customers, p=HOME_COUNTRY_WEIGHTS)
    travel = (home + rng.integers(1, n_home, size=n_customers)) % n_home
    mean_amount = rng.uniform(5.0, 100.0, size=n_customers)
    daily_rate = rng.uniform(0.0, 4.0, size=n_customers)
    active_hour = np.clip(rng.normal(14.0, 3.0, size=n_customers), 7.0, 21.0)
    active_spread = rng.uniform(1.5, 4.0, size=n_customers)

    n_terminals = n_customers * TERMINALS_PER_CUSTOMER
    n_foreign = max(len(FOREIGN_COUNTRIES), int(n_terminals * FOREIGN_TERMINAL_SHARE))
    n_domestic = n_terminals - n_foreign
    countries = np.concatenate(
        [
            np.asarray(HOME_COUNTRIES)[rng.choice(n_home, size=n_domestic, p=HOME_COUNTRY_WEIGHTS)],
            np.asarray(FOREIGN_COUNTRIES)[np.arange(n_foreign) % len(FOREIGN_COUNTRIES)],
        ]
    )
    categories = np.asarray(MERCHANT_CATEGORIES)[
        rng.choice(len(MERCHANT_CATEGORIES), size=n_terminals, p=CATEGORY_WEIGHTS)
    ]
    channels = np.asarray([_CATEGORY_CHANNEL[c] for c in categories])
    by_country = {c: np.flatnonzero(countries == c) for c in (*HOME_COUNTRIES, *FOREIGN_COUNTRIES)}
    online = {c: by_country[c][channels[by_country[c]] == "ecommerce"] for c in HOME_COUNTRIES}

    k = np.minimum(rng.integers(5, 21, size=n_customers), [len(by_country[HOME_COUNTRIES[h]]) for h in home])
    usual = np.zeros((n_customers, int(k.max())), dtype=np.int64)
    for i in range(n_customers):
        usual[i, : k[i]] = rng.choice(by_country[HOME_COUNTRIES[home[i]]], size=k[i], replace=False)

    return Population(
        customer_ids=np.asarray([f"C{i:07d}" for i in range(n_customers)]),
        home_country=home,
        travel_country=travel,
        mean_amount=mean_amount,
        std_amount=mean_amount / 2.0,
        daily_rate=daily_rate,
        active_hour=active_hour,
        active_spread=active_spread,
        usual_terminals=usual,
        usual_terminal_count=k,
        terminal_ids=np.asarray([f"T{j:07d}" for j in range(n_terminals)]),
        terminal_country=countries,
        terminal_category=categories,
        terminal_channel=channels,
        terminals_by_country=by_country,
        online_terminals=online,
    )
