import json
import os
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from trybank_serving.app import create_app
from trybank_tests.serving_tests.conftest import HEADERS, serving_settings, transaction


def _bronze_lines(lake_root) -> list[dict]:
    return [
        json.loads(line)
        for f in sorted(lake_root.glob("bronze/transactions/date=*/source=api/*.jsonl"))
        for line in f.read_text().splitlines()
    ]


BAD_INPUTS = [
    ("missing field", {"customer_id": None}, "customer_id"),
    ("wrong type", {"amount": "a lot"}, "amount"),
    ("negative amount", {"amount": -5}, "amount"),
    ("absurd amount", {"amount": 5e12}, "amount"),
    ("fractions of cents", {"amount": 1.005}, "amount"),
    ("no zone", {"event_time": "2026-03-16T10:00:00"}, "event_time"),
    ("far future", {"event_time": (datetime.now(UTC) + timedelta(days=2)).isoformat()}, "event_time"),
    ("an hour ahead", {"event_time": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}, "event_time"),
    ("year 1 east of UTC", {"event_time": "0001-01-01T00:00:00+01:00"}, "event_time"),
    ("year 9999 west of UTC", {"event_time": "9999-12-31T23:59:59-01:00"}, "event_time"),
    ("the epoch", {"event_time": "1970-01-01T00:00:00Z"}, "event_time"),
    ("integer zero", {"event_time": 0}, "event_time"),
    ("before the first partition", {"event_time": "2000-01-01T00:00:00Z"}, "event_time"),
    ("not a uuid", {"transaction_id": "abc"}, "transaction_id"),
    ("unknown currency", {"currency": "EURO"}, "currency"),
    ("overlong channel", {"channel": "x" * 41}, "channel"),
    ("bad country", {"merchant_country": "Netherlands"}, "merchant_country"),
    ("unknown field", {"is_fraud": True}, "is_fraud"),
]


@pytest.mark.parametrize(("case", "change", "field"), BAD_INPUTS, ids=[c for c, _, _ in BAD_INPUTS])
def test_bad_input_is_422_naming_the_field(empty_client, case, change, field):
    body = {k: v for k, v in transaction(**change).items() if v is not None}
    response = empty_client.post("/transactions", json=body)
    assert response.status_code == 422, response.text
    assert any(e["loc"][:2] == ["body", field] for e in response.json()["detail"]), response.json()


def test_nan_amount_and_broken_json_are_422(empty_client):
    raw = json.dumps(transaction()).replace("42.5", "NaN")
    response = empty_client.post("/transactions", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    broken = empty_client.post(
        "/transactions", content=b'{"transaction_id": ', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422


def test_oversized_body_and_batch(empty_client):
    big = {"transactions": [transaction() for _ in range(5000)]}  # about 1.6 MB
    refused = empty_client.post("/transactions", json=big)
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body"]
    assert "larger than" in refused.json()["detail"][0]["msg"]
    settings = empty_client.app.state.serving.settings
    too_many = {"transactions": [transaction() for _ in range(settings.api_max_batch + 1)]}
    response = empty_client.post("/transactions", json=too_many)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "transactions"]


def test_rejected_requests_write_nothing(empty_client, tmp_path):
    empty_client.post("/transactions", json=transaction(amount=-1))
    assert _bronze_lines(tmp_path / "lake") == []


def test_accepted_transactions_are_durable_and_retries_are_idempotent(empty_client, tmp_path):
    tx = transaction()
    first = empty_client.post("/transactions", json=tx)
    assert first.status_code == 201
    retry = empty_client.post("/transactions", json=tx)
    assert retry.status_code == 200 and retry.headers["Idempotent-Replay"] == "true"
    assert retry.json() == first.json()
    lines = _bronze_lines(tmp_path / "lake")
    assert [r["transaction_id"] for r in lines] == [tx["transaction_id"]]
    assert lines[0]["is_fraud"] is None and lines[0]["event_time"] == "2026-03-16T10:00:00.000000Z"

    conflict = empty_client.post("/transactions", json={**tx, "amount": 99.99})
    assert conflict.status_code == 409
    assert len(_bronze_lines(tmp_path / "lake")) == 1


def test_batch_with_a_replayed_transaction(empty_client, tmp_path):
    old = transaction()
    empty_client.post("/transactions", json=old)
    batch = {"transactions": [old, transaction(), transaction(event_time="2026-03-17T01:00:00+01:00")]}
    response = empty_client.post("/transactions", json=batch)
    assert response.status_code == 201
    assert [r["bronze_day"] for r in response.json()["results"]] == ["2026-03-16", "2026-03-16", "2026-03-17"]
    assert len(_bronze_lines(tmp_path / "lake")) == 3


def test_a_failed_write_accepts_nothing_and_the_retry_is_written(empty_client, tmp_path):
    """The day's api folder is a file, so bronze cannot be written: 503, and the transaction is not
    remembered as accepted; once the folder can be made, the same request is a fresh 201."""
    blocker = tmp_path / "lake" / "bronze" / "transactions" / "date=2026-03-16" / "source=api"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")
    tx = transaction()
    failed = empty_client.post("/transactions", json=tx)
    assert failed.status_code == 503 and "nothing was accepted" in failed.json()["detail"]
    blocker.unlink()
    retry = empty_client.post("/transactions", json=tx)
    assert retry.status_code == 201 and "Idempotent-Replay" not in retry.headers
    assert [r["transaction_id"] for r in _bronze_lines(tmp_path / "lake")] == [tx["transaction_id"]]


def test_a_line_torn_by_a_crash_is_ended_before_appending(tmp_path):
    from fastapi.testclient import TestClient

    from trybank_serving.app import create_app
    from trybank_tests.serving_tests.conftest import HEADERS, serving_settings

    folder = tmp_path / "lake" / "bronze" / "transactions" / "date=2026-03-16" / "source=api"
    folder.mkdir(parents=True)
    torn = folder / f"part-{socket.gethostname()}-{os.getpid()}.jsonl"  # this process's own file
    torn.write_bytes(b'{"transaction_id": "half-writ')
    tx = transaction()
    with TestClient(create_app(serving_settings(tmp_path / "lake")), headers=HEADERS) as client:
        assert client.post("/transactions", json=tx).status_code == 201
    lines = torn.read_bytes().splitlines()
    assert lines[0] == b'{"transaction_id": "half-writ'
    assert json.loads(lines[1])["transaction_id"] == tx["transaction_id"]


def test_an_unreadable_idempotency_index_refuses_ingest_and_scoring(serving_lake):
    """/predict records what it scores: without the index it could not answer a retry the same."""
    from fastapi.testclient import TestClient

    from trybank_serving.app import create_app
    from trybank_tests.serving_tests.conftest import HEADERS, serving_settings

    # a folder where a bronze file should be: reading it back fails
    (serving_lake / "bronze" / "transactions" / "date=2026-03-16" / "source=api" / "part-x.jsonl").mkdir(parents=True)
    with TestClient(create_app(serving_settings(serving_lake)), headers=HEADERS) as client:
        for path in ("/transactions", "/predict"):
            refused = client.post(path, json=transaction())
            assert refused.status_code == 503 and "idempotency index" in refused.json()["detail"]
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["detail"]["ingest_ready"] is False
        assert "idempotency index" in ready.json()["detail"]["reason"]
    assert not [f for f in (serving_lake / "bronze").rglob("*.jsonl") if f.is_file()]


def test_a_batch_over_more_days_than_open_files_is_all_durable(empty_client, tmp_path):
    days = [f"2026-02-{d:02d}T12:00:00Z" for d in range(1, 13)]  # more days than the writer keeps open
    batch = {"transactions": [transaction(event_time=t) for t in days]}
    assert empty_client.post("/transactions", json=batch).status_code == 201
    assert empty_client.post("/transactions", json=transaction(event_time=days[0])).status_code == 201
    lines = _bronze_lines(tmp_path / "lake")
    assert len(lines) == 13 and len({line["event_time"][:10] for line in lines}) == 12


def test_idempotency_survives_a_restart(tmp_path):
    from fastapi.testclient import TestClient

    from trybank_serving.app import create_app
    from trybank_tests.serving_tests.conftest import HEADERS, serving_settings

    lake = tmp_path / "lake"
    tx = transaction()  # an event day long past: what counts is when the API accepted it
    settings = serving_settings(lake)
    with TestClient(create_app(settings), headers=HEADERS) as first:
        answer = first.post("/transactions", json=tx).json()

    # The index answers, not a re-read of bronze: a file last written 10 days ago is not read back.
    (bronze_file,) = lake.glob("bronze/transactions/date=*/source=api/*.jsonl")
    long_ago = time.time() - 10 * 86_400
    os.utime(bronze_file, (long_ago, long_ago))
    with TestClient(create_app(settings), headers=HEADERS) as second:
        retry = second.post("/transactions", json=tx)
    assert retry.status_code == 200 and retry.json() == answer

    # A lake without the index (lost, or written before it existed) gets it rebuilt from bronze files.
    os.utime(bronze_file)
    for f in lake.glob("bronze/api_ingest_index.sqlite*"):
        f.unlink()
    with TestClient(create_app(settings), headers=HEADERS) as third:
        retry = third.post("/transactions", json=tx)
        conflict = third.post("/transactions", json={**tx, "amount": 1.0})
    assert retry.status_code == 200 and retry.json() == answer
    assert conflict.status_code == 409
    assert len(_bronze_lines(lake)) == 1


def test_api_key_is_enforced(empty_client):
    tx = transaction()
    assert empty_client.post("/transactions", json=tx, headers={"X-API-Key": "wrong"}).status_code == 401
    assert empty_client.post("/predict", json=tx, headers={"X-API-Key": ""}).status_code == 401
    assert empty_client.get("/model", headers={"X-API-Key": "nope"}).status_code == 401
    assert empty_client.get("/health", headers={"X-API-Key": ""}).status_code == 200
    assert empty_client.post("/transactions", json=tx).status_code == 201


@pytest.mark.parametrize("endpoint", ["/transactions", "/predict"])
def test_event_times_older_than_the_lateness_window_are_422(tmp_path, endpoint):
    settings = serving_settings(tmp_path / "lake", api_max_lateness_days=7)
    now = datetime.now(UTC)
    with TestClient(create_app(settings), headers=HEADERS) as client:
        late = client.post(endpoint, json=transaction(event_time=(now - timedelta(days=8)).isoformat()))
        assert late.status_code == 422, late.text
        error = late.json()["detail"][0]
        assert (error["loc"], error["type"]) == (["body", "event_time"], "event_time_too_old")
        if endpoint == "/transactions":
            recent = client.post(endpoint, json=transaction(event_time=(now - timedelta(days=6)).isoformat()))
            assert recent.status_code == 201, recent.text


@pytest.mark.parametrize(
    ("sent", "stored"),
    [(85.64999999999999, 85.65), (12.340000001, 12.34), (5e-324, 0.0), (0, 0.0), (0.1 + 0.2, 0.3)],
)
def test_amounts_within_a_millionth_of_a_cent_are_that_cent(empty_client, sent, stored):
    tx = transaction(amount=sent)
    response = empty_client.post("/transactions", json=tx)
    assert response.status_code == 201, response.text
    assert [line["amount"] for line in _bronze_lines(empty_client.app.state.serving.settings.lake_root)] == [stored]


def test_any_iso_currency_and_new_labels_are_accepted_and_normalized(empty_client):
    tx = transaction(currency="jpy", channel="Contactless", merchant_category="bnpl", customer_country="nl")
    assert empty_client.post("/transactions", json=tx).status_code == 201
    line = _bronze_lines(empty_client.app.state.serving.settings.lake_root)[0]
    assert (line["currency"], line["channel"], line["merchant_category"], line["customer_country"]) == (
        "JPY",
        "contactless",
        "bnpl",
        "NL",
    )
