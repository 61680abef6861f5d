"""Concurrency against the real app under uvicorn on 127.0.0.1."""

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from trybank_assets.model import registry
from trybank_tests.serving_tests.conftest import HEADERS, LiveServer, serving_settings, transaction

CLIENTS = 32
TRANSACTIONS = 5000


def test_concurrent_clients_lose_no_transaction(tmp_path):
    lake = tmp_path / "lake"
    sent = [transaction(customer_id=f"C{i % 97:07d}", terminal_id=f"T{i % 13:07d}") for i in range(TRANSACTIONS)]

    def post_share(client_index: int) -> list[int]:
        with httpx.Client(headers=HEADERS, timeout=30) as http:
            return [http.post(f"{server.url}/transactions", json=tx).status_code for tx in sent[client_index::CLIENTS]]

    with LiveServer(serving_settings(lake)) as server, ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [s for shares in pool.map(post_share, range(CLIENTS)) for s in shares]
    assert statuses.count(201) == TRANSACTIONS
    stored = [
        json.loads(line)["transaction_id"]
        for f in lake.glob("bronze/transactions/date=*/source=api/*.jsonl")
        for line in f.read_text().splitlines()
    ]
    assert sorted(stored) == sorted(tx["transaction_id"] for tx in sent)


def test_model_swap_under_concurrent_predictions_fails_none(serving_lake):
    models = serving_lake / "models" / "fraud_model"
    first = registry.current_version(models)
    second = f"{first}-retrained"
    shutil.copytree(models / first, models / second)
    statuses, versions, stop = [], set(), threading.Event()
    lock = threading.Lock()

    def predict_until_stopped() -> None:
        with httpx.Client(headers=HEADERS, timeout=30) as http:
            while not stop.is_set():
                response = http.post(f"{server.url}/predict", json=transaction())
                with lock:
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        versions.add(response.json()["model_version"])

    with LiveServer(serving_settings(serving_lake)) as server:
        threads = [threading.Thread(target=predict_until_stopped) for _ in range(8)]
        for t in threads:
            t.start()
        for i in range(10):
            registry.promote(models, second if i % 2 == 0 else first, {"reason": "swap test"})
            time.sleep(0.15)
        stop.set()
        for t in threads:
            t.join()
    assert len(statuses) > 100
    assert set(statuses) == {200}
    assert versions == {first, second}
