"""Gold features against a naive pure-Python reference that scans every earlier event."""

from datetime import date, datetime, timedelta

import pytest
from pyspark.sql import DataFrame
from pyspark.sql.types import DateType, DoubleType, StructField, StructType

from trybank_assets.assets.aggregates import customer_daily_aggregates_of, terminal_daily_aggregates_of
from trybank_assets.assets.gold import non_finite_by_day, transaction_features
from trybank_assets.assets.silver import SILVER_SCHEMA
from trybank_assets.features import FEATURE_NAMES
from trybank_assets.lib.spark_tables import replace_days
from trybank_assets.simulator import SimulatorConfig, simulate_day
from trybank_tests.feature_reference import D0, at, reference_features, transaction, velocity_edges


def gold_of(spark, transactions: list[dict], first_day: date | None = None, ranges: int | None = None) -> DataFrame:
    """Gold of a run over the days from ``first_day`` (the first transaction's by default) to the last
    transaction's, split into ``ranges`` day ranges (gold's default by default), the earlier days seen through
    their daily aggregates only, as in the lake."""
    every_day = spark.createDataFrame([tuple(t[f] for f in SILVER_SCHEMA.names) for t in transactions], SILVER_SCHEMA)
    first_day = first_day or min(t["date"] for t in transactions)
    days = [first_day + timedelta(days=i) for i in range((max(t["date"] for t in transactions) - first_day).days + 1)]
    silver = every_day.where(every_day.date >= first_day)
    return transaction_features(
        silver, customer_daily_aggregates_of(every_day), terminal_daily_aggregates_of(every_day), days, ranges
    )


def spark_features(
    spark, transactions: list[dict], first_day: date | None = None, ranges: int | None = None
) -> dict[str, dict]:
    gold = gold_of(spark, transactions, first_day, ranges)
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
        transaction("C1", "T9", at(31, 10), "500.00"),  # one day beyond the 30-day window
        transaction("C1", "T9", at(30, 10), "10.00"),  # first day inside it
        transaction("C1", "T9", at(8, 10), "20.00", merchant_country="DE"),  # outside 7 days
        transaction("C1", "T9", at(7, 10), "30.00"),  # first day of the 7-day window
        transaction("C1", "T9", at(1, 23, 59), "40.00"),
        transaction("C1", "T1", at(0, 8), "50.00"),
        transaction("C1", "T1", at(0, 9), "60.00"),
        transaction("C1", "T2", at(0, 9), "70.00"),  # same instant as the one before: neither sees the other
        transaction("C1", "T1", at(0, 10), "80.00"),
        transaction("C2", "T1", at(38, 12), "1.00", is_fraud=True),  # before the terminal's 30-day window
        transaction("C2", "T1", at(37, 12), "2.00", is_fraud=True),  # its first day
        transaction("C2", "T1", at(15, 12), "3.00", is_fraud=True),  # 30-day only
        transaction("C2", "T1", at(14, 12), "4.00"),  # 7-day window starts
        transaction("C2", "T1", at(8, 12), "5.00", is_fraud=True),  # newest day a label is known
        transaction("C2", "T1", at(7, 12), "6.00", is_fraud=True),  # too recent: label not known yet
        transaction("C3", "T1", at(2, 12), "7.00", is_fraud=None, merchant_country=None),  # API row, no label
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


@pytest.fixture
def bursts() -> list[dict]:
    return velocity_edges()


def test_velocity_windows_match_reference(spark, bursts):
    got = spark_features(spark, bursts)
    assert_same_features(got, reference_features(bursts))
    edge, tie = got[bursts[10]["transaction_id"]], got[bursts[11]["transaction_id"]]
    assert edge["customer_txn_count_10min"] == 2 and edge["customer_amount_10min"] == 12.0  # 5.00 + 7.00
    assert edge["customer_txn_count_1h"] == 4 and edge["customer_amount_1h"] == 19.0  # 3, 4, 5, 7
    assert tie["customer_txn_count_1h"] == 4
    assert tie["terminal_txn_count_10min"] == 3 and tie["terminal_amount_10min"] == 18.0  # 5, 6, 7 at T7
    assert edge["terminal_txn_count_1h"] == 0 and edge["new_terminal_30d"] == 1.0
    assert tie["new_terminal_30d"] == 0.0
    assert got[bursts[3]["transaction_id"]]["terminal_txn_count_1h"] == 0  # 23:59:59 the day before
    assert got[bursts[3]["transaction_id"]]["new_terminal_30d"] == 1.0  # C6, not C5, used T6 yesterday
    assert edge["terminal_mean_amount_30d"] == 30.0  # D-31's 900.00 is out, today's nothing counts
    assert edge["amount_to_terminal_mean_ratio_30d"] == pytest.approx(8 / 30)
    assert got[bursts[0]["transaction_id"]]["amount_to_terminal_mean_ratio_30d"] == 1.0  # no history


@pytest.mark.parametrize(
    ("run_days", "ranges"),
    [(40, None), (3, None), (40, 9)],
    ids=["whole-history", "last-3-days", "whole-history-in-8-ranges-of-5-days"],
)
def test_simulated_month_matches_reference(spark, run_days, ranges):
    config = SimulatorConfig(seed=3, n_customers=60)
    transactions = []
    for i in range(40):
        for r in simulate_day(config, D0 - timedelta(days=39 - i)):
            when = datetime.fromisoformat(r["event_time"])
            t = transaction(r["customer_id"], r["terminal_id"], when, str(r["amount"]), r["is_fraud"])
            t |= {"merchant_country": r["merchant_country"], "customer_country": r["customer_country"]}
            transactions.append(t)
    assert len(transactions) > 3000
    first_day = D0 - timedelta(days=run_days - 1)
    in_run = {t["transaction_id"] for t in transactions if t["date"] >= first_day}
    expected = {k: v for k, v in reference_features(transactions).items() if k in in_run}
    assert_same_features(spark_features(spark, transactions, first_day, ranges), expected)


def test_each_day_of_a_range_run_is_written_as_one_file(spark, hand_built, tmp_path):
    """Gold's rows leave the ranges' partitions written as they are, without a shuffle by day: still one file a day."""
    days = sorted({t["date"] for t in hand_built})
    run = [days[0] + timedelta(days=i) for i in range((days[-1] - days[0]).days + 1)]
    commit = replace_days(gold_of(spark, hand_built, ranges=5), tmp_path / "gold", run, days_together=True)
    assert {d: len(files) for d, files in commit.files_by_day.items()} == dict.fromkeys(days, 1)
    assert commit.rows_by_day == {d: sum(t["date"] == d for t in hand_built) for d in run}


def test_later_transactions_never_change_earlier_features(spark, hand_built):
    before = spark_features(spark, hand_built)
    later = [
        transaction("C1", "T1", at(0, 10, 30), "999.00", is_fraud=True),
        transaction("C1", "T1", at(-1, 1), "5.00", is_fraud=True),
        transaction("C2", "T1", at(-3, 1), "5.00"),
    ]
    after = spark_features(spark, hand_built + later)
    assert {k: after[k] for k in before} == before


def test_non_finite_features_are_named_by_day(spark):
    """The breakdown gold's features_finite check runs when its write counted a null or NaN feature."""
    schema = StructType([StructField("date", DateType()), *[StructField(n, DoubleType()) for n in FEATURE_NAMES]])
    clean = dict.fromkeys(FEATURE_NAMES, 1.0)
    first, second = D0, D0 + timedelta(days=1)
    rows = [
        {"date": first, **clean},
        {"date": first, **clean, FEATURE_NAMES[0]: float("nan")},
        {"date": first, **clean, FEATURE_NAMES[0]: None, FEATURE_NAMES[-1]: float("nan")},
        {"date": second, **clean},
    ]
    gold = spark.createDataFrame([tuple(r[n] for n in schema.names) for r in rows], schema)
    assert non_finite_by_day(gold) == {first: {FEATURE_NAMES[0]: 2, FEATURE_NAMES[-1]: 1}}
