"""The brute-force feature reference gold and serving are checked against: every earlier event scanned."""

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from trybank_assets.features import (
    CUSTOMER_WINDOWS,
    LABEL_DELAY_DAYS,
    LOOKBACK_DAYS,
    TERMINAL_HABIT_DAYS,
    TERMINAL_LOOKBACK_DAYS,
    TERMINAL_WINDOWS,
    VELOCITY_WINDOWS,
    PythonFeatureOps,
    derive_features,
    is_international,
)

D0 = date(2026, 3, 31)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def transaction(
    customer, terminal, when: datetime, amount: str, is_fraud=False, merchant_country="NL", customer_country="NL"
):
    return {
        "transaction_id": str(uuid.uuid4()),
        "event_time": when,
        "customer_id": customer,
        "terminal_id": terminal,
        "amount": Decimal(amount),
        "amount_cents": int(Decimal(amount) * 100),
        "currency": "EUR",
        "merchant_country": merchant_country,
        "customer_country": customer_country,
        "channel": "pos",
        "merchant_category": "grocery",
        "is_fraud": is_fraud,
        "fraud_scenario": "hand_made" if is_fraud else None,
        "source_transaction_id": None,
        "source": "test",
        "date": when.date(),
    }


def at(days_back: int, hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    day = D0 - timedelta(days=days_back)
    return datetime(day.year, day.month, day.day, hour, minute, second, micro, tzinfo=UTC)


def micros(when: datetime) -> int:
    return (when - EPOCH) // timedelta(microseconds=1)


def reference_features(transactions: list[dict]) -> dict[str, dict]:
    """Features of every transaction by brute force over all events before it."""
    out = {}
    for t in transactions:
        d, now = t["date"], micros(t["event_time"])
        earlier = [
            e
            for e in transactions
            if e["customer_id"] == t["customer_id"]
            and micros(e["event_time"]) < now
            and e["date"] >= d - timedelta(days=LOOKBACK_DAYS)
        ]
        at_terminal = [
            e
            for e in transactions
            if e["terminal_id"] == t["terminal_id"]
            and d - timedelta(days=TERMINAL_LOOKBACK_DAYS) <= e["date"] <= d - timedelta(days=LABEL_DELAY_DAYS + 1)
        ]
        raw = {"amount_cents": t["amount_cents"], "event_us": now}
        for n in CUSTOMER_WINDOWS:
            window = [e for e in earlier if e["date"] >= d - timedelta(days=n)]
            raw[f"customer_count_{n}"] = len(window)
            raw[f"customer_cents_{n}"] = sum(e["amount_cents"] for e in window)
        raw["customer_cents_sq_30"] = sum(e["amount_cents"] ** 2 for e in earlier)
        raw["customer_international_30"] = sum(
            is_international(e["merchant_country"], e["customer_country"]) for e in earlier
        )
        raw["customer_previous_us"] = max((micros(e["event_time"]) for e in earlier), default=None)
        for n in TERMINAL_WINDOWS:
            window = [e for e in at_terminal if e["date"] >= d - timedelta(days=LABEL_DELAY_DAYS + n)]
            raw[f"terminal_count_{n}"] = len(window)
            raw[f"terminal_fraud_{n}"] = sum(1 for e in window if e["is_fraud"])
        for who in ("customer", "terminal"):
            same_day = [
                e
                for e in transactions
                if e[f"{who}_id"] == t[f"{who}_id"] and e["date"] == d and micros(e["event_time"]) < now
            ]
            for suffix, seconds, _ in VELOCITY_WINDOWS:
                window = [e for e in same_day if micros(e["event_time"]) >= now - seconds * 1_000_000]
                raw[f"{who}_count_{suffix}"] = len(window)
                raw[f"{who}_cents_{suffix}"] = sum(e["amount_cents"] for e in window)
        raw["customer_terminal_seen"] = int(
            any(
                e["terminal_id"] == t["terminal_id"] and e["date"] >= d - timedelta(days=TERMINAL_HABIT_DAYS)
                for e in earlier
            )
        )
        recent = [
            e
            for e in transactions
            if e["terminal_id"] == t["terminal_id"] and d - timedelta(days=TERMINAL_HABIT_DAYS) <= e["date"] < d
        ]
        raw["terminal_recent_count"] = len(recent)
        raw["terminal_recent_cents"] = sum(e["amount_cents"] for e in recent)
        out[t["transaction_id"]] = derive_features(raw, PythonFeatureOps())
    return out


def velocity_edges() -> list[dict]:
    """Velocity edges: exactly 10 minutes and one hour before (in), a microsecond more (out), the same
    second and the same microsecond, midnight, other customers at the terminal, a terminal's 30-day edge."""
    return [
        transaction("C5", "T5", at(31, 12), "900.00"),  # one day beyond the 30 days: T5 is new to C5 again
        transaction("C6", "T5", at(30, 12), "30.00"),  # first day of the terminal's 30-day amounts
        transaction("C6", "T6", at(1, 23, 59, 59), "11.00"),  # just before midnight: not in D0's windows
        transaction("C5", "T6", at(0, 0, 30), "1.00"),
        transaction("C5", "T6", at(0, 9, 0, 0, 1), "2.00"),  # 1 h + 1 µs before 10:00:00.000002: out of the hour
        transaction("C5", "T6", at(0, 9, 0, 0, 2), "3.00"),  # exactly one hour before: in
        transaction("C5", "T7", at(0, 9, 50, 0, 1), "4.00"),  # 10 min + 1 µs before: out of the 10 minutes
        transaction("C5", "T7", at(0, 9, 50, 0, 2), "5.00"),  # exactly 10 minutes before: in
        transaction("C7", "T7", at(0, 9, 55), "6.00"),  # another customer at the terminal
        transaction("C5", "T7", at(0, 10, 0, 0, 1), "7.00"),  # same second, a microsecond earlier: seen
        transaction("C5", "T5", at(0, 10, 0, 0, 2), "8.00"),  # the transaction of the edges
        transaction("C5", "T7", at(0, 10, 0, 0, 2), "9.00"),  # same microsecond: neither sees the other
    ]
