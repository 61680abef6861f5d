from dagster import materialize
from fastapi.testclient import TestClient

from trybank_assets.assets.monitoring import prediction_log
from trybank_assets.resources import build_resources
from trybank_serving.app import create_app
from trybank_tests.conftest import small_bank_settings
from trybank_tests.serving_tests.conftest import HEADERS, serving_settings, transaction


def test_prediction_log_asset_reads_what_the_api_logged(serving_lake, instance):
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
    assert (serving_lake / "gold" / "prediction_log" / "date=2026-03-16").is_dir()
    assert not (serving_lake / "gold" / "prediction_log" / "date=2026-03-17").exists()
