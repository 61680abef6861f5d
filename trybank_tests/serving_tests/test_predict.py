import json
from datetime import date

from fastapi.testclient import TestClient
from pyspark.ml import PipelineModel

from trybank_assets.assets.gold import GOLD_SCHEMA
from trybank_assets.features import FEATURE_NAMES
from trybank_assets.lib.spark_tables import read_days
from trybank_assets.model import registry
from trybank_assets.model.training import probabilities
from trybank_serving import metrics
from trybank_serving.app import create_app
from trybank_tests.serving_tests.conftest import HEADERS, replay_day, serving_settings, transaction

REPLAY_DAY = date(2026, 3, 16)


def test_predict_scores_with_reasons_and_model_version(client, serving_lake):
    response = client.post("/predict", json=transaction())
    assert response.status_code == 200, response.text
    body = response.json()
    assert 0.0 <= body["fraud_probability"] <= 1.0
    assert body["decision"] == ("decline" if body["fraud_probability"] >= body["threshold"] else "approve")
    assert body["model_version"] == registry.current_version(serving_lake / "models" / "fraud_model")
    assert len(body["reasons"]) == 3
    assert all(r["feature"] in FEATURE_NAMES and r["description"] for r in body["reasons"])


def test_unknown_customer_gets_cold_start_values(client):
    response = client.post("/predict", json=transaction(customer_id="NEVER-SEEN", terminal_id="NEW-TERMINAL"))
    assert response.status_code == 200
    assert 0.0 <= response.json()["fraud_probability"] <= 1.0


def test_ops_endpoints(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready").json()
    assert ready["ready"] and ready["online_store_as_of"] == "2026-03-15"
    info = client.get("/model").json()
    assert {"roc_auc", "average_precision", "card_precision_at_100"} <= set(info["metrics"])
    assert info["train_window"] and info["test_window"]
    client.post("/predict", json=transaction())
    metrics = client.get("/metrics").text
    assert 'trybank_http_requests_total{method="POST",route="/predict",status="200"}' in metrics
    assert "trybank_fraud_probability_bucket" in metrics
    docs = client.get("/openapi.json").json()
    assert {"/transactions", "/predict", "/health", "/ready", "/model", "/metrics"} <= set(docs["paths"])


def test_predict_refuses_like_every_other_route(client):
    """/predict is served below FastAPI's request handling; its errors must still be the app's."""
    bad = client.post("/predict", json=transaction(amount=-3))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "amount"]
    assert (
        client.post("/predict", content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 422
    )
    assert client.post("/predict", json=transaction(), headers={"X-API-Key": "wrong"}).status_code == 401
    huge = b'{"customer_id": "' + b"x" * 1_100_000 + b'"}'
    too_big = client.post("/predict", content=huge, headers={"Content-Type": "application/json"})
    assert too_big.status_code == 422 and too_big.json()["detail"][0]["loc"] == ["body"]
    assert client.get("/predict").status_code == 405
    assert client.get("/predict").headers["allow"] == "POST"


def test_fast_path_answers_exactly_as_the_full_stack(serving_lake):
    """With OpenTelemetry on, /predict takes Starlette's whole middleware stack; off (the default), it
    is served ahead of it. Both must give the same statuses, bodies and metrics."""
    tx = transaction()
    requests = [
        {"json": tx},
        {"json": transaction(amount=-3)},
        {"json": transaction(event_time="2026-03-16T10:00:00")},
        {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        {"json": tx, "headers": {"X-API-Key": "wrong"}},
        {"content": b'{"customer_id": "' + b"x" * 1_100_000 + b'"}', "headers": {"Content-Type": "application/json"}},
    ]
    statuses = ("200", "401", "422")

    def counted() -> list[float]:
        labels = {"route": "/predict", "method": "POST"}
        return [
            metrics.registry.get_sample_value("trybank_http_requests_total", labels | {"status": s}) or 0
            for s in statuses
        ]

    answers = {}
    for traced in (False, True):
        with TestClient(create_app(serving_settings(serving_lake, api_opentelemetry=traced)), headers=HEADERS) as c:
            assert bool(c.app.fast_routes) is not traced
            before = counted()
            responses = [c.post("/predict", **r) for r in requests]
            assert [n - b for n, b in zip(counted(), before, strict=True)] == [1, 1, 4]
        answers[traced] = [(r.status_code, r.headers["content-type"], r.content) for r in responses]
        assert [r.status_code for r in responses] == [200, 422, 422, 422, 401, 422]
    assert answers[False] == answers[True]


def test_not_ready_without_a_model(empty_client):
    assert empty_client.get("/ready").status_code == 503
    assert empty_client.post("/predict", json=transaction()).status_code == 503


def test_every_prediction_is_logged_on_shutdown(serving_lake):
    with TestClient(create_app(serving_settings(serving_lake, prediction_flush_seconds=60)), headers=HEADERS) as c:
        ids = [c.post("/predict", json=transaction()).json()["transaction_id"] for _ in range(7)]
    rows = [
        json.loads(line) for f in (serving_lake / "predictions").rglob("*.jsonl") for line in f.read_text().splitlines()
    ]
    assert sorted(r["transaction_id"] for r in rows) == sorted(ids)
    assert set(rows[0]) >= {"request", "features", "fraud_probability", "model_version", "predicted_at"}


def test_serving_equals_gold_features_and_spark_scores(spark, trained_bank, serving_lake):
    """Replay a whole day through the API: each /predict sees the store (as of the day before) plus the
    day's earlier transactions; its features must equal gold and its score Spark's, to 1e-9."""
    lake = trained_bank["lake"]
    gold = read_days(spark, lake.transaction_features, [REPLAY_DAY], GOLD_SCHEMA)
    model = PipelineModel.load(str(lake.fraud_model_registry / "current" / "spark_model"))
    spark_scores = {r["transaction_id"]: r["probability"] for r in probabilities(model, gold).collect()}
    gold_features = {r["transaction_id"]: {n: r[n] for n in FEATURE_NAMES} for r in gold.collect()}

    with TestClient(create_app(serving_settings(serving_lake)), headers=HEADERS) as c:
        served = {t: answer["fraud_probability"] for t, answer in replay_day(c, lake, REPLAY_DAY).items()}
    assert len(served) == len(gold_features) > 300
    logged = {
        row["transaction_id"]: row["features"]
        for f in (serving_lake / "predictions" / f"date={REPLAY_DAY}").glob("*.jsonl")
        for row in map(json.loads, f.read_text().splitlines())
    }
    assert logged.keys() == gold_features.keys()
    worst_feature = max(abs(logged[t][n] - gold_features[t][n]) for t in logged for n in FEATURE_NAMES)
    worst_score = max(abs(served[t] - spark_scores[t]) for t in served)
    assert worst_feature <= 1e-9, worst_feature
    assert worst_score <= 1e-9, worst_score
    # the day's history matters: many transactions see earlier ones of the same day
    assert sum(1 for t in logged if logged[t]["customer_txn_count_1d"] > 0) > 100
