import json
import socket
import threading
import time
import uuid
from datetime import date
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from trybank_assets.resources.lake import LakeResource
from trybank_assets.settings import TrybankSettings
from trybank_serving.app import create_app
from trybank_serving.http_protocol import server_options

API_KEY = "test-key-123"
HEADERS = {"X-API-Key": API_KEY}


def serving_settings(lake_root: Path, **overrides) -> TrybankSettings:
    """The API over a test lake; the test bank's days are in the past, so late events are accepted."""
    settings = {"api_max_lateness_days": 3650, "model_poll_seconds": 0.05, **overrides}
    return TrybankSettings(lake_root=lake_root, api_key=API_KEY, **settings)


@pytest.fixture
def client(serving_lake):
    with TestClient(create_app(serving_settings(serving_lake)), headers=HEADERS) as test_client:
        yield test_client


@pytest.fixture
def empty_client(tmp_path):
    """An app on an empty lake: no model, no online store; ingest still works."""
    with TestClient(create_app(serving_settings(tmp_path / "lake")), headers=HEADERS) as test_client:
        yield test_client


def transaction(**overrides) -> dict:
    tx = {
        "transaction_id": str(uuid.uuid4()),
        "event_time": "2026-03-16T10:00:00.000Z",
        "customer_id": "C0000001",
        "terminal_id": "T0000001",
        "amount": 42.5,
        "currency": "EUR",
        "merchant_country": "NL",
        "customer_country": "NL",
        "channel": "pos",
        "merchant_category": "grocery",
    }
    return tx | overrides


def simulated_requests(lake: LakeResource, day: date) -> list[dict]:
    """The simulated transactions of ``day`` in time order, as the bank's switch sends them (no label)."""
    records = [json.loads(line) for line in lake.simulated_bronze_file(day).read_text().splitlines()]
    records.sort(key=lambda r: (r["event_time"], r["transaction_id"]))
    return [
        {k: v for k, v in r.items() if k not in ("is_fraud", "fraud_scenario", "source_transaction_id")}
        for r in records
    ]


def replay(client: TestClient, requests: list[dict]) -> dict[str, dict]:
    """Each transaction scored through /predict, which records it too; the answers by transaction_id."""
    answers = {}
    for request in requests:
        answer = client.post("/predict", json=request)
        assert answer.status_code == 200, answer.text
        answers[request["transaction_id"]] = answer.json()
    return answers


def replay_day(client: TestClient, lake: LakeResource, day: date) -> dict[str, dict]:
    """Every simulated transaction of ``day`` through the API (see ``replay``)."""
    return replay(client, simulated_requests(lake, day))


class LiveServer:
    """The real app under uvicorn on 127.0.0.1, in a thread of the test process."""

    def __init__(self, settings: TrybankSettings) -> None:
        # The socket is bound here and handed to uvicorn: no window in which another process could
        # take a port found free (bind, close, rebind).
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(create_app(settings), log_level="warning", access_log=False, **server_options(settings))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health").status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.socket.close()
        assert not self.thread.is_alive(), "uvicorn did not stop within 20 s"
