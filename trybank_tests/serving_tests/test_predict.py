import json

from fastapi.testclient import TestClient

from trybank_assets.features import FEATURE_NAMES, FEATURES
from trybank_assets.model import registry
from trybank_assets.model.scorer import load_scorer
from trybank_serving import metrics
from trybank_serving.app import create_app
from trybank_serving.model_holder import MIN_REASON_CONTRIBUTION
from trybank_tests.serving_tests.conftest import HEADERS, serving_settings, transaction


def test_predict_scores_with_reasons_and_model_version(client, serving_lake):
    response = client.post("/predict", json=transaction())
    assert response.status_code == 200, response.text
    body = response.json()
    assert 0.0 <= body["fraud_probability"] <= 1.0
    assert body["decision"] == ("decline" if body["fraud_probability"] >= body["threshold"] else "approve")
    assert body["model_version"] == registry.current_version(serving_lake / "models" / "fraud_model")
    assert len(body["reasons"]) == 3
    codes = {f.name: f.code for f in FEATURES}
    assert all(r["code"] == codes[r["feature"]] and r["text"] for r in body["reasons"])


def _logged(lake) -> list[dict]:
    return [json.loads(line) for f in (lake / "predictions").rglob("*.jsonl") for line in f.read_text().splitlines()]


def test_unknown_customer_gets_cold_start_values(serving_lake):
    """A customer and a terminal never seen, on a Saturday: no history in any window."""
    tx = transaction(customer_id="NEVER-SEEN", terminal_id="NEW-TERMINAL", event_time="2026-03-14T10:00:00Z")
    with TestClient(create_app(serving_settings(serving_lake)), headers=HEADERS) as c:
        response = c.post("/predict", json=tx)
    assert response.status_code == 200
    assert 0.0 <= response.json()["fraud_probability"] <= 1.0
    [row] = _logged(serving_lake)
    assert row["features"] == dict.fromkeys(FEATURE_NAMES, 0.0) | {
        "amount": 42.5,
        "amount_to_mean_ratio_30d": 1.0,
        "seconds_since_previous": 30 * 86_400.0,
        "hour_of_day": 10.0,
        "is_weekend": 1.0,
        "new_terminal_30d": 1.0,
        "amount_to_terminal_mean_ratio_30d": 1.0,
    }


def test_reasons_are_the_largest_contributions_to_the_score(serving_lake):
    """The three reasons are the features whose contributions (the scorer's own explanation of this
    score) are largest, largest first."""
    txs = [
        transaction(customer_id=f"C{i:07d}", terminal_id=f"T{i:07d}", amount=amount, event_time=when)
        for i, (amount, when) in enumerate(
            [(12.0, "2026-03-16T10:00:00Z"), (4_800.0, "2026-03-16T02:30:00Z"), (250.0, "2026-03-15T23:59:00Z")]
        )
    ]
    with TestClient(create_app(serving_settings(serving_lake)), headers=HEADERS) as c:
        answers = {tx["transaction_id"]: c.post("/predict", json=tx).json() for tx in txs}
    scorer = load_scorer(serving_lake / "models" / "fraud_model" / "current" / "scorer.json")
    for row in _logged(serving_lake):
        probability, contributions = scorer.explain([row["features"][n] for n in FEATURE_NAMES])
        ranked = sorted(zip(contributions, FEATURE_NAMES, strict=True), key=lambda c: -c[0])
        answer = answers[row["transaction_id"]]
        assert answer["fraud_probability"] == probability
        worth_saying = [(c, f) for c, f in ranked[:3] if c >= MIN_REASON_CONTRIBUTION]
        assert [(r["contribution"], r["feature"]) for r in answer["reasons"]] == worth_saying
        assert all(r["value"] == row["features"][r["feature"]] for r in answer["reasons"])


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
