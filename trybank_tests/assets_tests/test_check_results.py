"""The checks that a correct run cannot trip, seen to fail on the figures a broken run would give.

Silver, the aggregates and gold each re-check in their own step what that step just wrote, day by day;
on a real lake these checks only ever pass (the lake-level tests see them pass). Their judgement is a
pure function of a day's figures, so a check hard-coded to pass fails here.
"""

from datetime import date

from dagster import AssetCheckSeverity

from trybank_assets.assets.aggregates import counts_match_silver
from trybank_assets.assets.gold import gold_check_results
from trybank_assets.assets.silver import silver_check_results

GOOD_NULLS = dict.fromkeys(("transaction_id", "customer_id", "terminal_id", "event_time", "amount"), 0)
BALANCE = {"bronze_rows": 10, "silver_rows": 7, "quarantined_rows": 2, "duplicates_dropped": 1}


def _by_name(results):
    return {r.check_name: r for r in results}


def test_silver_checks_pass_on_a_sound_run_and_fail_naming_what_broke():
    sound = _by_name(silver_check_results(0, GOOD_NULLS, BALANCE))
    assert all(r.passed for r in sound.values())

    broken = _by_name(silver_check_results(2, GOOD_NULLS | {"customer_id": 3}, BALANCE | {"bronze_rows": 12}))
    assert not broken["transaction_id_unique"].passed
    assert broken["transaction_id_unique"].description == "2 silver rows repeat a transaction_id"
    assert not broken["keys_not_null"].passed
    assert broken["keys_not_null"].description == "null keys: {'customer_id': 3}"
    reconcile = broken["reconciles_with_bronze"]
    assert not reconcile.passed and reconcile.severity == AssetCheckSeverity.ERROR
    assert reconcile.description == "12 bronze rows but 10 silver + quarantined + duplicates"


def test_aggregates_must_count_every_silver_transaction_once():
    assert counts_match_silver("counts_match_silver", 100, 100).passed
    short = counts_match_silver("counts_match_silver", 98, 100)
    assert not short.passed and short.description == "98 aggregated transactions, 100 in silver"


def test_gold_needs_one_finite_row_per_silver_transaction_and_its_history():
    assert all(r.passed for r in gold_check_results(50, 0, 50, {}, []))
    broken = _by_name(gold_check_results(51, 1, 50, {"amount_zscore_30d": 4}, [date(2026, 3, 1)]))
    assert not broken["one_row_per_silver_transaction"].passed
    assert (
        broken["one_row_per_silver_transaction"].description
        == "51 gold rows (1 repeating a transaction_id), 50 silver rows"
    )
    assert not broken["features_finite"].passed
    assert broken["features_finite"].description == "null or NaN values: {'amount_zscore_30d': 4}"
    history = broken["history_complete"]
    assert not history.passed and history.severity == AssetCheckSeverity.WARN
    assert history.metadata["missing_days"].value == ["2026-03-01"]
    missing = _by_name(gold_check_results(50, 0, 49, {}, []))
    assert not missing["one_row_per_silver_transaction"].passed
    repeated = _by_name(gold_check_results(50, 1, 50, {}, []))
    assert not repeated["one_row_per_silver_transaction"].passed
