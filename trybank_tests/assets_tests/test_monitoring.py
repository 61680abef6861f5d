from datetime import date

import pytest
from dagster import AssetCheckSeverity, materialize
from fastapi.testclient import TestClient

from trybank_assets.assets.monitoring import (
    PredictionMonitoringConfig,
    decline_rate_band,
    drift_checks,
    prediction_log,
)
from trybank_assets.lib.spark_tables import days_with_rows
from trybank_assets.resources import build_resources
from trybank_serving.app import create_app
from trybank_tests.conftest import small_bank_settings
from trybank_tests.serving_tests.conftest import HEADERS, replay_day, serving_settings, transaction


def test_prediction_log_asset_reads_what_the_api_logged(spark, serving_lake, instance):
    with TestClient(create_app(serving_settings(serving_lake)), headers=HEADERS) as client:
        answers = [client.post("/predict", json=transaction()).json() for _ in range(5)]
        client.post("/predict", json=transaction(event_time="2026-03-17T08:00:00Z"))
    resources = build_resources(small_bank_settings(serving_lake))
    result = materialize([prediction_log], resources=resources, partition_key="2026-03-16", instance=instance)
    assert result.success
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["dagster/row_count"].value == 5
    by_model = metadata["by_model_version"].value
    assert by_model[answers[0]["model_version"]]["predictions"] == 5
    assert days_with_rows(spark, serving_lake / "gold" / "prediction_log") == [date(2026, 3, 16)]


def test_a_replayed_day_raises_no_drift_and_a_skewed_one_names_the_feature(trained_bank, serving_lake, instance):
    """The replayed day lies in the model's test window, so it looks like the baseline; a day of one
    customer buying the same 9,000 EUR item over and over does not."""
    resources = build_resources(small_bank_settings(serving_lake))
    with TestClient(create_app(serving_settings(serving_lake)), headers=HEADERS) as client:
        replay_day(client, trained_bank["lake"], date(2026, 3, 16))
    calm = materialize([prediction_log], resources=resources, partition_key="2026-03-16", instance=instance)
    checks = {c.check_name: c for c in calm.get_asset_check_evaluations()}
    assert set(checks) == {"score_drift", "feature_drift", "decline_rate"}
    assert all(c.passed for c in checks.values()), {n: c.description for n, c in checks.items()}
    metadata = calm.get_asset_materialization_events()[0].materialization.metadata
    assert 0.0 <= metadata["score_psi"].value < 0.25
    assert checks["score_drift"].metadata["worst_score_psi"].value == metadata["score_psi"].value

    with TestClient(create_app(serving_settings(serving_lake)), headers=HEADERS) as client:
        same_big_purchase = {"event_time": "2026-03-17T19:30:00Z", "amount": 9000.0}
        for _ in range(250):
            assert client.post("/predict", json=transaction(**same_big_purchase)).status_code == 200
    skewed = materialize([prediction_log], resources=resources, partition_key="2026-03-17", instance=instance)
    assert skewed.success  # drift warns, it does not fail the run
    checks = {c.check_name: c for c in skewed.get_asset_check_evaluations()}
    assert not checks["feature_drift"].passed
    assert checks["feature_drift"].severity == AssetCheckSeverity.WARN
    assert "2026-03-17" in checks["feature_drift"].description and "amount " in checks["feature_drift"].description


def test_decline_rate_band():
    # 1% in the test window, 10,000 predictions: 1/3 % .. 3 %, widened by 3 standard errors (0.3 %)
    low, high = decline_rate_band(0.01, 40_000, 10_000, 3.0)
    assert low == pytest.approx(0.01 / 3 - 0.003, abs=1e-4) and high == pytest.approx(0.03 + 0.003, abs=1e-4)
    # no declines in 3,000 test rows: one decline in 600 is within the band, two are not
    low, high = decline_rate_band(0.0, 3_000, 600, 3.0)
    assert low == 0.0 and 1 / 600 < high < 2 / 600


def test_checks_name_what_drifted_and_what_was_not_judged():
    drifting = {
        "date": "2026-03-17",
        "model_version": "v2",
        "predictions": 900,
        "declines": 90,
        "decline_rate": 0.1,
        "judged": True,
        "baseline_decline_rate": 0.01,
        "baseline_rows": 5000,
        "score_psi": 0.4,
        "feature_psi": {"amount": 1.2, "hour_of_day": 0.05},
    }
    too_few = {**drifting, "date": "2026-03-16", "predictions": 50, "judged": False}
    older_model = {k: drifting[k] for k in ("date", "model_version", "predictions", "declines", "decline_rate")}
    older_model |= {"model_version": "v1", "judged": False}
    checks = {c.check_name: c for c in drift_checks([too_few, drifting, older_model], PredictionMonitoringConfig())}
    assert not any(c.passed for c in checks.values())
    assert checks["score_drift"].description.startswith("2026-03-17 model v2: score PSI 0.400")
    assert "amount 1.200" in checks["feature_drift"].description
    assert "hour_of_day" not in checks["feature_drift"].description
    assert "10.00% declined" in checks["decline_rate"].description
    for check in checks.values():
        assert "not judged: 2026-03-16 v2 (50 predictions), 2026-03-17 v1 (no baseline.json)" in check.description
    assert checks["feature_drift"].metadata["worst_feature"].value == "amount"
