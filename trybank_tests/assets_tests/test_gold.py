"""Gold features against a naive pure-Python reference that scans every earlier event."""

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from trybank_assets.assets.aggregates import customer_daily_aggregates_of, terminal_daily_aggregates_of
from trybank_assets.assets.gold import transaction_features
from trybank_assets.assets.silver import SILVER_SCHEMA
from trybank_assets.features import (
    CUSTOMER_WINDOWS,
    FEATURE_NAMES,
    LABEL_DELAY_DAYS,
    LOOKBACK_DAYS,
    TERMINAL_LOOKBACK_DAYS,
    TERMINAL_WINDOWS,
    PythonFeatureOps,
    derive_features,
    is_international,
)
from trybank_assets.simulator import SimulatorConfig, simulate_day

D0 = date(2026, 3, 31)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _tx(customer, terminal, when: datetime, amount: str, is_fraud=False, merchant_country="NL", customer_country="NL"):
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


def _at(days_back: int, hour: int, minute: int = 0) -> datetime:
    day = D0 - timedelta(days=days_back)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def _micros(when: datetime) -> int:
    return (when - EPOCH) // timedelta(microseconds=1)


def reference_features(transactions: list[dict]) -> dict[str, dict]:
    """Features of every transaction by brute force over all events before it."""
    out = {}
    for t in transactions:
        d, now = t["date"], _micros(t["event_time"])
        earlier = [
            e
            for e in transactions
            if e["customer_id"] == t["customer_id"]
            and _micros(e["event_time"]) < now
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
        raw["customer_previous_us"] = max((_micros(e["event_time"]) for e in earlier), default=None)
        for n in TERMINAL_WINDOWS:
            window = [e for e in at_terminal if e["date"] >= d - timedelta(days=LABEL_DELAY_DAYS + n)]
            raw[f"terminal_count_{n}"] = len(window)
            raw[f"terminal_fraud_{n}"] = sum(1 for e in window if e["is_fraud"])
        out[t["transaction_id"]] = derive_features(raw, PythonFeatureOps())
    return out


def spark_features(spark, transactions: list[dict]) -> dict[str, dict]:
    silver = spark.createDataFrame([tuple(t[f] for f in SILVER_SCHEMA.names) for t in transactions], SILVER_SCHEMA)
    gold = transaction_features(silver, customer_daily_aggregates_of(silver), terminal_daily_aggregates_of(silver))
    return {r["transaction_id"]: {n: r[n] for n in FEATURE_NAMES} for r in gold.collect()}


def assert_same_features(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for tx_id, features in expected.items():
        for name, value in features.items():
            assert actual[tx_id][name] == pytest.approx(value, abs=1e-9), (tx_id, name)


@pytest.fixture
def hand_built() -> list[dict]:
    """Window edges, same-day order, ties, label delay, unlabelled and international rows."""
    return [
        _tx("C1", "T9", _at(31, 10), "500.00"),  # one day beyond the 30-day window
        _tx("C1", "T9", _at(30, 10), "10.00"),  # first day inside it
        _tx("C1", "T9", _at(8, 10), "20.00", merchant_country="DE"),  # outside 7 days
        _tx("C1", "T9", _at(7, 10), "30.00"),  # first day of the 7-day window
        _tx("C1", "T9", _at(1, 23, 59), "40.00"),
        _tx("C1", "T1", _at(0, 8), "50.00"),
        _tx("C1", "T1", _at(0, 9), "60.00"),
        _tx("C1", "T2", _at(0, 9), "70.00"),  # same instant as the one before: neither sees the other
        _tx("C1", "T1", _at(0, 10), "80.00"),
        _tx("C2", "T1", _at(38, 12), "1.00", is_fraud=True),  # before the terminal's 30-day window
        _tx("C2", "T1", _at(37, 12), "2.00", is_fraud=True),  # its first day
        _tx("C2", "T1", _at(15, 12), "3.00", is_fraud=True),  # 30-day only
        _tx("C2", "T1", _at(14, 12), "4.00"),  # 7-day window starts
        _tx("C2", "T1", _at(8, 12), "5.00", is_fraud=True),  # newest day a label is known
        _tx("C2", "T1", _at(7, 12), "6.00", is_fraud=True),  # too recent: label not known yet
        _tx("C3", "T1", _at(2, 12), "7.00", is_fraud=None, merchant_country=None),  # API row, no label
    ]


def test_hand_built_features_match_reference(spark, hand_built):
    assert_same_features(spark_features(spark, hand_built), reference_features(hand_built))


def test_hand_built_window_edges(spark, hand_built):
    got = spark_features(spark, hand_built)
    last = got[hand_built[8]["transaction_id"]]  # C1 at 10:00 on D0
    assert last["customer_txn_count_30d"] == 7  # days -30..-1 (4) + 08:00, 09:00, 09:00 today
    assert last["customer_txn_count_7d"] == 5
    assert last["customer_txn_count_1d"] == 4
    assert last["customer_mean_amount_1d"] == pytest.approx((40 + 50 + 60 + 70) / 4)
    assert last["international_ratio_30d"] == pytest.approx(1 / 7)
    assert last["seconds_since_previous"] == 3600.0
    assert last["hour_of_day"] == 10.0 and last["is_night"] == 0.0
    assert last["terminal_txn_count_1d"] == 1 and last["terminal_fraud_risk_1d"] == 1.0
    assert last["terminal_txn_count_7d"] == 2 and last["terminal_fraud_risk_7d"] == 0.5
    assert last["terminal_txn_count_30d"] == 4 and last["terminal_fraud_risk_30d"] == 0.75
    tie_a, tie_b = got[hand_built[6]["transaction_id"]], got[hand_built[7]["transaction_id"]]
    assert tie_a["customer_txn_count_1d"] == tie_b["customer_txn_count_1d"] == 2
    first_ever = got[hand_built[0]["transaction_id"]]
    assert first_ever["customer_txn_count_30d"] == 0 and first_ever["amount_to_mean_ratio_30d"] == 1.0
    assert first_ever["seconds_since_previous"] == 30 * 86_400


def test_simulated_month_matches_reference(spark):
    config = SimulatorConfig(seed=3, n_customers=60)
    transactions = []
    for i in range(40):
        for r in simulate_day(config, D0 - timedelta(days=39 - i)):
            when = datetime.fromisoformat(r["event_time"])
            t = _tx(r["customer_id"], r["terminal_id"], when, str(r["amount"]), r["is_fraud"])
            t |= {"merchant_country": r["merchant_country"], "customer_country": r["customer_country"]}
            transactions.append(t)
    assert len(transactions) > 3000
    assert_same_features(spark_features(spark, transactions), reference_features(transactions))


def test_later_transactions_never_change_earlier_features(spark, hand_built):
    before = spark_features(spark, hand_built)
    later = [
        _tx("C1", "T1", _at(0, 10, 30), "999.00", is_fraud=True),
        _tx("C1", "T1", _at(-1, 1), "5.00", is_fraud=True),
        _tx("C2", "T1", _at(-3, 1), "5.00"),
    ]
    after = spark_features(spark, hand_built + later)
    assert {k: after[k] for k in before} == before
