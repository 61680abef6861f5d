"""Asset checks seen to fire: real materializations on lakes whose data breaks what each check guards,
and the check naming what it found. (promotion_gate: test_promotion.py.)"""

import json
import uuid
from datetime import date, timedelta

from dagster import AssetCheckSeverity, materialize
from fastapi.testclient import TestClient

from trybank_assets.assets.aggregates import customer_daily_aggregates, terminal_daily_aggregates
from trybank_assets.assets.bronze import bronze_transactions
from trybank_assets.assets.demo import simulated_transactions
from trybank_assets.assets.gold import gold_transaction_features
from trybank_assets.assets.monitoring import prediction_log
from trybank_assets.assets.silver import DEDUP_DAYS, silver_transactions
from trybank_assets.resources import build_resources
from trybank_assets.resources.lake import LakeResource
from trybank_serving.app import create_app
from trybank_tests.conftest import DAILY_ASSETS, range_tags, small_bank_settings
from trybank_tests.serving_tests.conftest import HEADERS, serving_settings, transaction

SPARK_ASSETS = [
    bronze_transactions,
    silver_transactions,
    customer_daily_aggregates,
    terminal_daily_aggregates,
    gold_transaction_features,
]


def _checks(result) -> dict:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def test_history_complete_warns_naming_the_days_never_aggregated(resources, instance):
    """Bronze holds 03-01 and 03-02; 03-02 has customer aggregates but no terminal aggregates; 03-03 is run through
    the daily assets."""
    assert materialize(
        [simulated_transactions], resources=resources, tags=range_tags("2026-03-01", "2026-03-02"), instance=instance
    ).success
    customer_side = [bronze_transactions, silver_transactions, customer_daily_aggregates]
    assert materialize(customer_side, resources=resources, partition_key="2026-03-02", instance=instance).success
    result = materialize(DAILY_ASSETS, resources=resources, partition_key="2026-03-03", instance=instance)
    assert result.success  # a warning, not a failure
    check = _checks(result)["history_complete"]
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert check.metadata["missing_days"].value == ["2026-03-01", "2026-03-02"]


def _import_file(lake: LakeResource, day: date, records: list[dict]) -> None:
    folder = lake.bronze_source_dir(day, "import-partner")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part-00000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_one_row_per_silver_transaction_fails_on_an_id_sent_on_two_days(lake_root, resources, instance):
    """A source re-sends a transaction with a corrected event time more than ``DEDUP_DAYS`` later, beyond the
    days silver deduplicates a run against, so silver ends up with the id on both days; gold over both has
    one row too many for its distinct ids, and the day of the repeat says so."""
    lake = LakeResource(root=str(lake_root))
    resent = str(uuid.uuid4())
    first, repeat = date(2026, 3, 2), date(2026, 3, 2) + timedelta(days=DEDUP_DAYS + 1)
    others = [transaction(customer_id=f"C{i}", event_time=f"{first}T1{i}:00:00Z") for i in range(3)]
    _import_file(lake, first, [*others, transaction(transaction_id=resent, event_time=f"{first}T09:00:00Z")])
    _import_file(lake, repeat, [transaction(transaction_id=resent, event_time=f"{repeat}T09:00:00Z")])
    for day in (first, repeat):
        day_run = materialize(SPARK_ASSETS, resources=resources, partition_key=day.isoformat(), instance=instance)
        assert day_run.success and _checks(day_run)["one_row_per_silver_transaction"].passed

    both = materialize(
        [gold_transaction_features], resources=resources, tags=range_tags(first, repeat), instance=instance
    )
    by_day = {
        c.partition: c for c in both.get_asset_check_evaluations() if c.check_name == "one_row_per_silver_transaction"
    }
    assert by_day[first.isoformat()].passed  # the id's first day
    check = by_day[repeat.isoformat()]
    assert not check.passed
    figures = {k: check.metadata[k].value for k in ("gold_rows", "repeated_ids", "silver_rows")}
    assert figures == {"gold_rows": 1, "repeated_ids": 1, "silver_rows": 1}


# A customer never seen, spending big abroad at night: the first the model declines is replayed.
SUSPICIOUS = [
    transaction(customer_id="NEVER-SEEN", amount=amount, merchant_country=country, event_time="2026-03-18T03:10:00Z")
    for amount in (900.0, 4_000.0, 20_000.0, 150_000.0)
    for country in ("NL", "BR")
]


def test_score_drift_and_decline_rate_warn_on_a_day_of_declines(serving_lake, instance):
    """A day of 250 copies of one declined transaction: the scores sit in one bin and every answer
    is a decline, far from the model's test window."""
    with TestClient(create_app(serving_settings(serving_lake)), headers=HEADERS) as client:
        declined = next(
            (tx for tx in SUSPICIOUS if client.post("/predict", json=tx).json()["decision"] == "decline"), None
        )
        assert declined is not None, "the bank's model declines none of the suspicious transactions"
        for _ in range(250):
            again = {**declined, "transaction_id": str(uuid.uuid4()), "event_time": "2026-03-17T03:10:00Z"}
            assert client.post("/predict", json=again).json()["decision"] == "decline"
        version = client.get("/model").json()["version"]

    resources = build_resources(small_bank_settings(serving_lake))
    result = materialize([prediction_log], resources=resources, partition_key="2026-03-17", instance=instance)
    assert result.success  # drift warns, it does not fail the run
    checks = _checks(result)
    for name in ("score_drift", "decline_rate", "feature_drift"):
        assert not checks[name].passed and checks[name].severity == AssetCheckSeverity.WARN, name
    assert checks["score_drift"].description.startswith(f"2026-03-17 model {version}: score PSI ")
    assert checks["decline_rate"].description.startswith(f"2026-03-17 model {version}: 100.00% declined, expected ")
