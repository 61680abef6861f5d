"""One simulated day of card transactions, legitimate behaviour plus five fraud scenarios."""

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
from faker import Faker

from trybank_assets.bronze_contract import BRONZE_FIELDS, bronze_record
from trybank_assets.simulator.population import FOREIGN_COUNTRIES, HOME_COUNTRIES, Population, build_population

# Independent random streams per day: adding a scenario never shifts another one's draws.
_STREAM_LEGIT, _STREAM_TERMINALS, _STREAM_TAKEOVER, _STREAM_EXTRA, _STREAM_IDS = 1, 2, 3, 4, 5

FRAUD_SCENARIOS = (
    "amount_outlier",
    "compromised_terminal",
    "account_takeover",
    "card_testing",
    "foreign_fraud",
)
COMPROMISED_TERMINAL_DAYS = 28
TAKEOVER_DAYS = 14
TRAVEL_PROBABILITY = 0.02

# Scenario intensities per 1,000 customers per day, tuned for a 0.5-1% fraud rate.
TERMINAL_COMPROMISES_PER_1K = 0.25
ACCOUNT_TAKEOVERS_PER_1K = 0.5
CARD_TESTING_BURSTS_PER_1K = 0.3
FOREIGN_FRAUDS_PER_1K = 1.0
AMOUNT_OUTLIERS_PER_1K = 1.0


@dataclass(frozen=True)
class SimulatorConfig:
    seed: int = 42
    n_customers: int = 3000


@lru_cache(maxsize=4)
def _population(config: SimulatorConfig) -> Population:
    return build_population(config.seed, config.n_customers)


def _day_rng(config: SimulatorConfig, day: date, stream: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, day.toordinal(), stream])


def _per_day(config: SimulatorConfig, per_1k: float) -> float:
    return per_1k * config.n_customers / 1000.0


def compromised_terminals(config: SimulatorConfig, day: date) -> set[int]:
    """Terminals compromised on any of the previous 28 days: all their transactions today are fraud."""
    population = _population(config)
    domestic = np.flatnonzero(~np.isin(population.terminal_country, FOREIGN_COUNTRIES))
    compromised: set[int] = set()
    for back in range(1, COMPROMISED_TERMINAL_DAYS + 1):
        rng = _day_rng(config, day - timedelta(days=back), _STREAM_TERMINALS)
        n = rng.poisson(_per_day(config, TERMINAL_COMPROMISES_PER_1K))
        compromised.update(rng.choice(domestic, size=n, replace=False).tolist())
    return compromised


def taken_over_customers(config: SimulatorConfig, day: date) -> set[int]:
    """Customers whose account was taken over on any of the previous 14 days."""
    population = _population(config)
    taken: set[int] = set()
    for back in range(1, TAKEOVER_DAYS + 1):
        rng = _day_rng(config, day - timedelta(days=back), _STREAM_TAKEOVER)
        n = rng.poisson(_per_day(config, ACCOUNT_TAKEOVERS_PER_1K))
        taken.update(rng.choice(population.n_customers, size=n, replace=False).tolist())
    return taken


def _legitimate(config: SimulatorConfig, day: date) -> dict[str, np.ndarray]:
    pop = _population(config)
    rng = _day_rng(config, day, _STREAM_LEGIT)
    counts = rng.poisson(pop.daily_rate)
    customer = np.repeat(np.arange(pop.n_customers), counts)
    n = len(customer)
    hours = rng.normal(pop.active_hour[customer], pop.active_spread[customer])
    seconds = np.mod(hours * 3600.0, 86_400.0)  # late-night spenders wrap around midnight
    amount = rng.normal(pop.mean_amount[customer], pop.std_amount[customer])
    redraw = amount <= 0.01
    amount[redraw] = rng.uniform(0.01, 2 * pop.mean_amount[customer[redraw]])
    slot = np.floor(rng.random(n) * pop.usual_terminal_count[customer]).astype(np.int64)
    terminal = pop.usual_terminals[customer, slot]
    travelling = np.flatnonzero(rng.random(n) < TRAVEL_PROBABILITY)
    for i in travelling:
        pool = pop.terminals_by_country[HOME_COUNTRIES[pop.travel_country[customer[i]]]]
        terminal[i] = pool[rng.integers(len(pool))]
    return {
        "customer": customer,
        "terminal": terminal,
        "seconds": seconds,
        "amount": amount,
        "scenario": np.full(n, "", dtype=object),
    }


def _apply_fraud(config: SimulatorConfig, day: date, tx: dict[str, np.ndarray]) -> None:
    """Label existing transactions: compromised terminals, account takeovers, amount outliers."""
    pop = _population(config)
    scenario, amount = tx["scenario"], tx["amount"]

    at_compromised = np.isin(tx["terminal"], list(compromised_terminals(config, day)))
    scenario[at_compromised] = "compromised_terminal"

    rng = _day_rng(config, day, _STREAM_TAKEOVER)
    of_taken = np.isin(tx["customer"], list(taken_over_customers(config, day)))
    takeover = of_taken & (rng.random(len(amount)) < 1 / 3) & (scenario == "")
    scenario[takeover] = "account_takeover"
    amount[takeover] *= 5.0

    rng = _day_rng(config, day, _STREAM_EXTRA)
    n_outliers = rng.poisson(_per_day(config, AMOUNT_OUTLIERS_PER_1K))
    candidates = np.flatnonzero(scenario == "")
    if n_outliers and len(candidates):
        chosen = rng.choice(candidates, size=min(n_outliers, len(candidates)), replace=False)
        amount[chosen] = np.maximum(
            rng.uniform(15.0, 40.0, size=len(chosen)) * pop.mean_amount[tx["customer"][chosen]], 500.0
        )
        scenario[chosen] = "amount_outlier"


def _injected_fraud(config: SimulatorConfig, day: date) -> dict[str, np.ndarray]:
    """Transactions that exist only because of fraud: card-testing bursts and foreign fraud."""
    pop = _population(config)
    rng = _day_rng(config, day, _STREAM_EXTRA)
    rng = np.random.default_rng(rng.integers(2**63))  # decouple from _apply_fraud's draws
    customer, terminal, seconds, amount, scenario = [], [], [], [], []

    for _ in range(rng.poisson(_per_day(config, CARD_TESTING_BURSTS_PER_1K))):
        victim = int(rng.integers(pop.n_customers))
        online = pop.online_terminals[HOME_COUNTRIES[pop.home_country[victim]]]
        size = int(rng.integers(5, 11))
        start = rng.uniform(0.0, 86_400.0 - 900.0)
        customer += [victim] * size
        terminal += rng.choice(online, size=size).tolist()
        seconds += (start + np.sort(rng.uniform(0.0, 600.0, size=size))).tolist()
        amount += rng.uniform(0.5, 3.0, size=size).tolist()
        scenario += ["card_testing"] * size

    for _ in range(rng.poisson(_per_day(config, FOREIGN_FRAUDS_PER_1K))):
        victim = int(rng.integers(pop.n_customers))
        pool = pop.terminals_by_country[FOREIGN_COUNTRIES[rng.integers(len(FOREIGN_COUNTRIES))]]
        customer.append(victim)
        terminal.append(int(pool[rng.integers(len(pool))]))
        seconds.append(rng.uniform(0.0, 86_399.0))
        amount.append(float(pop.mean_amount[victim] * rng.uniform(2.0, 6.0)))
        scenario.append("foreign_fraud")

    return {
        "customer": np.asarray(customer, dtype=np.int64),
        "terminal": np.asarray(terminal, dtype=np.int64),
        "seconds": np.asarray(seconds, dtype=np.float64),
        "amount": np.asarray(amount, dtype=np.float64),
        "scenario": np.asarray(scenario, dtype=object),
    }


def simulate_day(config: SimulatorConfig, day: date) -> list[dict]:
    """All of one UTC day's transactions as bronze records, ordered by event time."""
    pop = _population(config)
    tx = _legitimate(config, day)
    _apply_fraud(config, day, tx)
    extra = _injected_fraud(config, day)
    tx = {key: np.concatenate([tx[key], extra[key]]) for key in tx}

    fake = Faker()
    fake.seed_instance(int(_day_rng(config, day, _STREAM_IDS).integers(2**63)))
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    millis = np.floor(tx["seconds"] * 1000.0).astype(np.int64)
    cents = np.maximum(np.round(tx["amount"] * 100.0), 1).astype(np.int64)
    records = []
    for i in np.lexsort((np.arange(len(millis)), millis)):
        c, t = tx["customer"][i], tx["terminal"][i]
        scenario = tx["scenario"][i] or None
        records.append(
            bronze_record(
                transaction_id=str(uuid.UUID(fake.uuid4())),
                event_time=midnight + timedelta(milliseconds=int(millis[i])),
                customer_id=str(pop.customer_ids[c]),
                terminal_id=str(pop.terminal_ids[t]),
                amount_cents=int(cents[i]),
                merchant_country=str(pop.terminal_country[t]),
                customer_country=HOME_COUNTRIES[pop.home_country[c]],
                channel=str(pop.terminal_channel[t]),
                merchant_category=str(pop.terminal_category[t]),
                is_fraud=scenario is not None,
                fraud_scenario=scenario,
            )
        )
    assert all(tuple(r) == BRONZE_FIELDS for r in records[:1])
    return records


def encode_records(records: list[dict]) -> bytes:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()


def write_day(config: SimulatorConfig, day: date, path: Path) -> int:
    """Write the day's JSON lines to ``path`` atomically (temp file + rename); returns rows."""
    records = simulate_day(config, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(encode_records(records))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return len(records)
