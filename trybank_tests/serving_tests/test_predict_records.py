"""POST /predict records the transaction it scores: in bronze with its answer, fsynced before the
answer, in the customer's history for the next request, and once however often it is retried."""

import json
import shutil
import time

from fastapi.testclient import TestClient

from trybank_assets.model import registry
from trybank_serving import metrics
from trybank_serving.app import create_app
from trybank_tests.serving_tests.conftest import HEADERS, serving_settings, transaction


def _bronze(lake) -> list[dict]:
    return [
        json.loads(line)
        for f in sorted(lake.glob("bronze/transactions/date=*/source=api/*.jsonl"))
        for line in f.read_text().splitlines()
    ]


def _logged(lake) -> dict[str, list[dict]]:
    """The prediction log's rows by transaction_id (complete once the app has stopped)."""
    rows: dict[str, list[dict]] = {}
    for f in (lake / "predictions").rglob("*.jsonl"):
        for line in f.read_text().splitlines():
            row = json.loads(line)
            rows.setdefault(row["transaction_id"], []).append(row)
    return rows


def _count_1d(logged: dict[str, list[dict]], tx: dict) -> float:
    [row] = logged[tx["transaction_id"]]
    return row["features"]["customer_txn_count_1d"]


def _ingested() -> float:
    return metrics.registry.get_sample_value("trybank_ingested_transactions_total") or 0


def test_a_scored_transaction_is_in_the_customers_next_request(serving_lake):
    """One /predict, then another for the same customer: the second counts the first, with no
    /transactions call; the first is in bronze with its answer, and /transactions knows it."""
    first = transaction(customer_id="C0000007", event_time="2026-03-16T10:00:00Z")
    second = transaction(customer_id="C0000007", event_time="2026-03-16T10:05:00Z", amount=990.0)
    ingested = _ingested()
    with TestClient(create_app(serving_settings(serving_lake)), headers=HEADERS) as client:
        answer = client.post("/predict", json=first)
        assert answer.status_code == 200, answer.text
        assert client.post("/predict", json=second).status_code == 200
        again = client.post("/transactions", json=first)
    assert again.status_code == 200 and again.headers["Idempotent-Replay"] == "true"
    logged = _logged(serving_lake)
    assert _count_1d(logged, second) == _count_1d(logged, first) + 1
    lines = _bronze(serving_lake)
    assert [line["transaction_id"] for line in lines] == [first["transaction_id"], second["transaction_id"]]
    assert lines[0]["_received"]["answer"] == answer.json()
    assert _ingested() == ingested + 2


def test_a_retried_predict_writes_once_and_answers_the_same(serving_lake):
    """Three retries: the first answer byte for byte, one bronze line, one prediction-log row, the
    customer's history counting it once; other content under the id is a 409 that writes nothing."""
    tx = transaction(event_time="2026-03-16T10:00:00Z")
    later = transaction(event_time="2026-03-16T11:00:00Z")
    ingested = _ingested()
    with TestClient(create_app(serving_settings(serving_lake)), headers=HEADERS) as client:
        first = client.post("/predict", json=tx)
        retries = [client.post("/predict", json=tx) for _ in range(3)]
        assert client.post("/predict", json=later).status_code == 200
        conflict = client.post("/predict", json={**tx, "amount": 99.99})
        ingest_conflict = client.post("/transactions", json={**tx, "amount": 99.99})
    assert first.status_code == 200
    assert [(r.status_code, r.content) for r in retries] == [(200, first.content)] * 3
    assert conflict.status_code == 409 and "other content" in conflict.json()["detail"]
    assert ingest_conflict.status_code == 409
    assert [line["transaction_id"] for line in _bronze(serving_lake)] == [tx["transaction_id"], later["transaction_id"]]
    logged = _logged(serving_lake)
    assert sorted(logged) == sorted([tx["transaction_id"], later["transaction_id"]])
    assert _count_1d(logged, later) == _count_1d(logged, tx) + 1
    assert _ingested() == ingested + 2


def test_a_retry_gets_the_recorded_answer_after_a_model_reload_and_restarts(serving_lake):
    """The answer is stored with the id: a new champion (declining everything) does not change it,
    nor a restart (answered from the index), nor a lost index (rebuilt from bronze's lines)."""
    models = serving_lake / "models" / "fraud_model"
    champion = registry.current_version(models)
    strict = f"{champion}-declines-all"
    shutil.copytree(models / champion, models / strict)
    metrics_file = models / strict / "metrics.json"
    metrics_file.write_text(json.dumps(json.loads(metrics_file.read_text()) | {"threshold": 0.0}))
    tx = transaction(amount=12.0)
    settings = serving_settings(serving_lake)
    with TestClient(create_app(settings), headers=HEADERS) as client:
        answer = client.post("/predict", json=tx)
        assert answer.json()["model_version"] == champion
        registry.promote(models, strict, {"reason": "test"})
        deadline = time.monotonic() + 10
        while client.get("/model").json()["version"] != strict and time.monotonic() < deadline:
            time.sleep(0.02)
        fresh = client.post("/predict", json=transaction(amount=12.0)).json()
        assert (fresh["model_version"], fresh["decision"]) == (strict, "decline")
        assert client.post("/predict", json=tx).content == answer.content
    with TestClient(create_app(settings), headers=HEADERS) as restarted:
        assert restarted.post("/predict", json=tx).content == answer.content
    for f in serving_lake.glob("bronze/api_ingest_index.sqlite*"):
        f.unlink()
    with TestClient(create_app(settings), headers=HEADERS) as rebuilt:
        assert rebuilt.post("/predict", json=tx).content == answer.content
        assert rebuilt.post("/predict", json={**tx, "amount": 13.0}).status_code == 409
    assert [line["transaction_id"] for line in _bronze(serving_lake)].count(tx["transaction_id"]) == 1
    assert len(_logged(serving_lake)[tx["transaction_id"]]) == 1


def test_a_transaction_ingested_unscored_is_scored_once(serving_lake):
    """/transactions first (an event not scored), then /predict: scored once, its answer written
    in a second bronze line (an exact copy for silver), not counted twice in the history."""
    tx = transaction(event_time="2026-03-16T10:00:00Z")
    later = transaction(event_time="2026-03-16T11:00:00Z")
    with TestClient(create_app(serving_settings(serving_lake)), headers=HEADERS) as client:
        ingested = client.post("/transactions", json=tx).json()
        answer = client.post("/predict", json=tx)
        assert answer.status_code == 200
        assert client.post("/predict", json=tx).content == answer.content
        assert client.post("/transactions", json=tx).json() == ingested
        client.post("/predict", json=later)
    lines = [line for line in _bronze(serving_lake) if line["transaction_id"] == tx["transaction_id"]]
    assert [line["_received"].get("answer") for line in lines] == [None, answer.json()]
    assert {line["_received"]["at"] for line in lines} == {ingested["received_at"]}
    assert lines[0] | {"_received": None} == lines[1] | {"_received": None}
    logged = _logged(serving_lake)
    assert _count_1d(logged, later) == _count_1d(logged, tx) + 1
