"""Every model feature, declared once and computed by one formula for Spark and for serving.

A transaction's features depend only on events strictly before it (``event_us`` smaller than
its own). Windows are calendar-day aligned: "N days" means the previous N whole UTC days plus
the same day's earlier events, so the online path can rebuild them from daily aggregates plus
the day's stream. Terminal risk windows are shifted back by ``LABEL_DELAY_DAYS`` because a fraud
label is only known once it is that old; the terminal's typical amount needs no label, so it is not.

Velocity windows (``VELOCITY_WINDOWS``: the last 10 minutes and hour) are intra-day: the events of
the same UTC day within the last N seconds before the transaction (``event_us`` in [now - N s, now)).
They restart at 00:00 UTC like the "earlier today" part of the day windows, so serving computes them
exactly from the day's stream alone; a burst straddling midnight is seen only from its post-midnight
part (only the first hour's transactions are affected: about 4% of a day spread evenly).

``derive_features`` is written against a tiny set of primitives (``FeatureOps``); gold runs it
over numpy arrays (``NumpyFeatureOps`` in ``assets/history_arrays.py``), serving over Python numbers
(``PythonFeatureOps``). Amounts enter as integer cents and counts as integers, so both paths do
the same IEEE operations on the same exact inputs and agree to the last bit.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

CUSTOMER_WINDOWS = (1, 7, 30)
TERMINAL_WINDOWS = (1, 7, 30)
LABEL_DELAY_DAYS = 7
LOOKBACK_DAYS = max(CUSTOMER_WINDOWS)
TERMINAL_LOOKBACK_DAYS = LABEL_DELAY_DAYS + max(TERMINAL_WINDOWS)
NIGHT_END_HOUR = 6
# (name suffix, seconds, in words): customer and terminal counts and amounts over the day's last N seconds.
VELOCITY_WINDOWS = (("10min", 600, "10 minutes"), ("1h", 3_600, "hour"))
# The customer's terminals and the terminal's amounts are looked up over the previous 30 days.
TERMINAL_HABIT_DAYS = 30
# Seconds since the previous transaction when there is none in the look-back (cold start).
NO_PREVIOUS_SECONDS = float(LOOKBACK_DAYS * 86_400)
MICROS_PER_HOUR = 3_600_000_000
MICROS_PER_DAY = 86_400_000_000


# A reason's sentence from all of the transaction's feature values (a reason may cite a second one).
Explain = Callable[[Mapping[str, float]], str]


@dataclass(frozen=True)
class Feature:
    name: str
    description: str
    code: str  # stable reason code for the API; never reused for another meaning
    explain: Explain
    window_days: int | None = None
    needs: tuple[str, ...] = ()  # optional bronze fields without which the feature is neutral


def euros(value: float) -> str:
    return f"€{value:,.2f}"


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 7_200:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 172_800:
        return f"{seconds / 3_600:.0f} hours"
    return f"{seconds / 86_400:.0f} days"


def _days(n: int) -> str:
    return "day" if n == 1 else f"{n} days"


def _customer_features() -> list[Feature]:
    out = []
    for n in CUSTOMER_WINDOWS:
        count, mean = f"customer_txn_count_{n}d", f"customer_mean_amount_{n}d"
        out.append(
            Feature(
                count,
                f"Customer transactions in the previous {n} day(s) plus earlier today.",
                f"CUSTOMER_TXNS_{n}D",
                lambda f, n=n, k=count: (
                    f"{f[k]:.0f} transactions of the customer in the previous {_days(n)} and earlier today"
                ),
                n,
            )
        )
        out.append(
            Feature(
                mean,
                f"Customer mean amount over the same {n}-day window (0 when none).",
                f"CUSTOMER_MEAN_AMOUNT_{n}D",
                lambda f, n=n, k=mean: f"the customer's average amount in the previous {_days(n)} is {euros(f[k])}",
                n,
            )
        )
    return out


def _terminal_features() -> list[Feature]:
    out = []
    for n in TERMINAL_WINDOWS:
        lag = f"days D-{LABEL_DELAY_DAYS + n}..D-{LABEL_DELAY_DAYS + 1}"
        count, risk = f"terminal_txn_count_{n}d", f"terminal_fraud_risk_{n}d"
        span = f"the {_days(n)} before last week"
        out.append(
            Feature(
                count,
                f"Terminal transactions over {lag} (label-delayed).",
                f"TERMINAL_TXNS_{n}D",
                lambda f, k=count, span=span: f"{f[k]:.0f} transactions at the terminal in {span}",
                n,
            )
        )
        out.append(
            Feature(
                risk,
                f"Share of labelled fraud at the terminal over {lag}.",
                f"TERMINAL_FRAUD_RATE_{n}D",
                lambda f, k=risk, span=span: f"{f[k]:.1%} of the terminal's transactions in {span} were fraud",
                n,
            )
        )
    return out


def _velocity_features() -> list[Feature]:
    out = []
    for who, whose in (("customer", "the customer's"), ("terminal", "the terminal's")):
        for suffix, _, span in VELOCITY_WINDOWS:
            count, amount = f"{who}_txn_count_{suffix}", f"{who}_amount_{suffix}"
            code = f"{who.upper()}_{{}}_{suffix.upper()}"
            out.append(
                Feature(
                    count,
                    f"{who.capitalize()} transactions in the {span} before, same UTC day (restarts at midnight).",
                    code.format("TXNS"),
                    lambda f, k=count, span=span, who=who: f"{f[k]:.0f} transactions of the {who} in the {span} before",
                )
            )
            out.append(
                Feature(
                    amount,
                    f"Sum of {whose} amounts in the {span} before, same UTC day (restarts at midnight).",
                    code.format("AMOUNT"),
                    lambda f, k=amount, span=span, whose=whose: (
                        f"{whose} transactions in the {span} before total {euros(f[k])}"
                    ),
                )
            )
    return out


def _flag(yes: str, no: str, name: str) -> Explain:
    return lambda f: yes if f[name] else no


FEATURES: tuple[Feature, ...] = (
    Feature("amount", "Transaction amount.", "AMOUNT", lambda f: f"the amount is {euros(f['amount'])}"),
    *_customer_features(),
    Feature(
        "amount_to_mean_ratio_30d",
        "Amount divided by the customer's 30-day mean (1 when no history).",
        "AMOUNT_VS_30D_MEAN",
        lambda f: (
            f"the amount is {f['amount_to_mean_ratio_30d']:.1f} times the customer's 30-day average of "
            f"{euros(f['customer_mean_amount_30d'])}"
        ),
        30,
    ),
    Feature(
        "amount_zscore_30d",
        "Amount z-score against the customer's 30-day amounts (0 when undefined).",
        "AMOUNT_ZSCORE_30D",
        lambda f: f"the amount is {f['amount_zscore_30d']:+.1f} standard deviations from the customer's 30-day amounts",
        30,
    ),
    Feature(
        "international_ratio_30d",
        "Share of the customer's 30-day transactions abroad.",
        "INTERNATIONAL_SHARE_30D",
        lambda f: f"{f['international_ratio_30d']:.0%} of the customer's transactions in the last 30 days were abroad",
        30,
        needs=("merchant_country", "customer_country"),
    ),
    Feature(
        "volume_30d",
        "Customer's total amount over 30 days.",
        "VOLUME_30D",
        lambda f: f"the customer spent {euros(f['volume_30d'])} in the last 30 days",
        30,
    ),
    Feature(
        "seconds_since_previous",
        f"Seconds since the customer's previous transaction, capped at {LOOKBACK_DAYS} days.",
        "TIME_SINCE_PREVIOUS",
        lambda f: (
            f"{duration(f['seconds_since_previous'])} since the customer's previous transaction"
            if f["seconds_since_previous"] < NO_PREVIOUS_SECONDS
            else f"no transaction of the customer in the last {LOOKBACK_DAYS} days"
        ),
    ),
    Feature(
        "hour_of_day",
        "UTC hour of the transaction.",
        "HOUR_OF_DAY",
        lambda f: f"made between {f['hour_of_day']:02.0f}:00 and {f['hour_of_day']:02.0f}:59 UTC",
    ),
    Feature(
        "is_night",
        f"1 when the UTC hour is before {NIGHT_END_HOUR}:00.",
        "NIGHT",
        _flag(f"made at night (before {NIGHT_END_HOUR:02d}:00 UTC)", "made in the daytime", "is_night"),
    ),
    Feature(
        "is_weekend",
        "1 on Saturday and Sunday (UTC).",
        "WEEKEND",
        _flag("made on a weekend", "made on a weekday", "is_weekend"),
    ),
    *_terminal_features(),
    *_velocity_features(),
    Feature(
        "new_terminal_30d",
        f"1 when the customer has no transaction at this terminal in the previous {TERMINAL_HABIT_DAYS} days "
        "nor earlier today.",
        f"FIRST_TIME_AT_TERMINAL_{TERMINAL_HABIT_DAYS}D",
        _flag(
            f"the customer's first transaction at this terminal in {TERMINAL_HABIT_DAYS} days",
            f"the customer used this terminal in the last {TERMINAL_HABIT_DAYS} days",
            "new_terminal_30d",
        ),
        TERMINAL_HABIT_DAYS,
    ),
    Feature(
        "terminal_mean_amount_30d",
        f"Terminal mean amount over the previous {TERMINAL_HABIT_DAYS} days (no label, no delay; 0 when none).",
        f"TERMINAL_MEAN_AMOUNT_{TERMINAL_HABIT_DAYS}D",
        lambda f: (
            f"the terminal's average amount in the previous {TERMINAL_HABIT_DAYS} days is "
            f"{euros(f['terminal_mean_amount_30d'])}"
        ),
        TERMINAL_HABIT_DAYS,
    ),
    Feature(
        "amount_to_terminal_mean_ratio_30d",
        f"Amount divided by the terminal's {TERMINAL_HABIT_DAYS}-day mean (1 when no history).",
        f"AMOUNT_VS_TERMINAL_{TERMINAL_HABIT_DAYS}D_MEAN",
        lambda f: (
            f"the amount is {f['amount_to_terminal_mean_ratio_30d']:.1f} times the terminal's "
            f"{TERMINAL_HABIT_DAYS}-day average of {euros(f['terminal_mean_amount_30d'])}"
            if f["terminal_mean_amount_30d"] > 0
            else f"no amount at the terminal in the previous {TERMINAL_HABIT_DAYS} days to compare with"
        ),
        TERMINAL_HABIT_DAYS,
    ),
)
FEATURE_NAMES = tuple(f.name for f in FEATURES)


class FeatureOps(Protocol):
    def div(self, num: Any, den: Any, default: float, min_den: float = 0.0) -> Any: ...
    def flag(self, cond: Any) -> Any: ...
    def sqrt_pos(self, x: Any) -> Any: ...
    def floordiv(self, x: Any, m: int) -> Any: ...
    def mod(self, x: Any, m: int) -> Any: ...
    def to_double(self, x: Any) -> Any: ...
    def elapsed_seconds(self, now_us: Any, previous_us: Any, cap: float) -> Any: ...


class PythonFeatureOps:
    """Primitives over Python ints and floats (serving, reference tests)."""

    def div(self, num, den, default, min_den=0.0):
        return float(num) / float(den) if den > min_den else default

    def flag(self, cond):
        return 1.0 if cond else 0.0

    def sqrt_pos(self, x):
        return math.sqrt(x) if x > 0 else 0.0

    def floordiv(self, x, m):
        return x // m

    def mod(self, x, m):
        return x % m

    def to_double(self, x):
        return float(x)

    def elapsed_seconds(self, now_us, previous_us, cap):
        return cap if previous_us is None else min(float(now_us - previous_us) / 1e6, cap)


def is_international(merchant_country: str | None, customer_country: str | None) -> int:
    """1 when both countries are known and differ; unknown countries count as domestic."""
    return int(merchant_country is not None and customer_country is not None and merchant_country != customer_country)


def derive_features(raw: dict[str, Any], ops: FeatureOps) -> dict[str, Any]:
    """Features from raw, exact inputs. ``raw`` keys:

    amount_cents, event_us; for N in CUSTOMER_WINDOWS customer_count_N and customer_cents_N;
    customer_cents_sq_30, customer_international_30, customer_previous_us (None when none);
    for N in TERMINAL_WINDOWS terminal_count_N and terminal_fraud_N (label-delayed);
    for each VELOCITY_WINDOWS suffix S customer_count_S, customer_cents_S, terminal_count_S and
    terminal_cents_S (the same UTC day's events in the last N seconds before ``event_us``);
    customer_terminal_seen (1 when the customer used the terminal in the previous TERMINAL_HABIT_DAYS
    days or earlier today, else 0); terminal_recent_count and terminal_recent_cents (the terminal's
    transactions and amounts over the previous TERMINAL_HABIT_DAYS days, not delayed).
    """
    cents = raw["amount_cents"]
    out = {"amount": ops.div(cents, 100, 0.0)}
    for count_key, cents_key, count_name, mean_name in _CUSTOMER_KEYS:
        count, total = raw[count_key], raw[cents_key]
        out[count_name] = ops.to_double(count)
        out[mean_name] = ops.div(total, count * 100, 0.0)

    count30, cents30 = raw["customer_count_30"], raw["customer_cents_30"]
    mean_cents = ops.div(cents30, count30, 0.0)
    variance = ops.div(raw["customer_cents_sq_30"], count30, 0.0) - mean_cents * mean_cents
    out["amount_to_mean_ratio_30d"] = ops.div(cents * count30, cents30, 1.0)
    # A spread under one cent is rounding noise, not a spending pattern.
    out["amount_zscore_30d"] = ops.div(cents - mean_cents, ops.sqrt_pos(variance), 0.0, min_den=1.0)
    out["international_ratio_30d"] = ops.div(raw["customer_international_30"], count30, 0.0)
    out["volume_30d"] = ops.div(cents30, 100, 0.0)
    out["seconds_since_previous"] = ops.elapsed_seconds(
        raw["event_us"], raw["customer_previous_us"], NO_PREVIOUS_SECONDS
    )

    hour = ops.mod(ops.floordiv(raw["event_us"], MICROS_PER_HOUR), 24)
    weekday = ops.mod(ops.floordiv(raw["event_us"], MICROS_PER_DAY) + 3, 7)  # 1970-01-01 was a Thursday; Monday = 0
    out["hour_of_day"] = ops.to_double(hour)
    out["is_night"] = ops.flag(hour < NIGHT_END_HOUR)
    out["is_weekend"] = ops.flag(weekday >= 5)

    for count_key, fraud_key, count_name, risk_name in _TERMINAL_KEYS:
        count = raw[count_key]
        out[count_name] = ops.to_double(count)
        out[risk_name] = ops.div(raw[fraud_key], count, 0.0)

    for count_key, cents_key, count_name, amount_name in _VELOCITY_KEYS:
        out[count_name] = ops.to_double(raw[count_key])
        out[amount_name] = ops.div(raw[cents_key], 100, 0.0)
    out["new_terminal_30d"] = ops.flag(raw["customer_terminal_seen"] == 0)
    recent_count, recent_cents = raw["terminal_recent_count"], raw["terminal_recent_cents"]
    out["terminal_mean_amount_30d"] = ops.div(recent_cents, recent_count * 100, 0.0)
    out["amount_to_terminal_mean_ratio_30d"] = ops.div(cents * recent_count, recent_cents, 1.0)
    return out


# Key names spelled once, outside the per-request path.
_CUSTOMER_KEYS = tuple(
    (f"customer_count_{n}", f"customer_cents_{n}", f"customer_txn_count_{n}d", f"customer_mean_amount_{n}d")
    for n in CUSTOMER_WINDOWS
)
_TERMINAL_KEYS = tuple(
    (f"terminal_count_{n}", f"terminal_fraud_{n}", f"terminal_txn_count_{n}d", f"terminal_fraud_risk_{n}d")
    for n in TERMINAL_WINDOWS
)
_VELOCITY_KEYS = tuple(
    (f"{who}_count_{suffix}", f"{who}_cents_{suffix}", f"{who}_txn_count_{suffix}", f"{who}_amount_{suffix}")
    for who in ("customer", "terminal")
    for suffix, _, _ in VELOCITY_WINDOWS
)
