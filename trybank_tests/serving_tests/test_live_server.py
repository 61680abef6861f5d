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


def _stored_ids(lake) -> list[str]:
    return [
        json.loads(line)["transaction_id"]
        for f in lake.glob("bronze/transactions/date=*/source=api/*.jsonl")
        for line in f.read_text().splitlines()
    ]


def test_concurrent_clients_lose_no_transaction(tmp_path):
    lake = tmp_path / "lake"
    sent = [transaction(customer_id=f"C{i % 97:07d}", terminal_id=f"T{i % 13:07d}") for i in range(TRANSACTIONS)]

    def post_share(client_index: int) -> list[int]:
        with httpx.Client(headers=HEADERS, timeout=30) as http:
            return [http.post(f"{server.url}/transactions", json=tx).status_code for tx in sent[client_index::CLIENTS]]

    with LiveServer(serving_settings(lake)) as server, ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [s for shares in pool.map(post_share, range(CLIENTS)) for s in shares]
    assert statuses.count(201) == TRANSACTIONS
    assert sorted(_stored_ids(lake)) == sorted(tx["transaction_id"] for tx in sent)


def test_one_transaction_posted_by_many_clients_at_once_is_written_once(tmp_path):
    """Retries racing each other: one write, one 201, and every other answer the same result."""
    lake = tmp_path / "lake"
    txs = [transaction() for _ in range(20)]
    barrier = threading.Barrier(CLIENTS)

    def post_all(_: int) -> list[tuple[int, dict]]:
        with httpx.Client(headers=HEADERS, timeout=30) as http:
            barrier.wait()
            return [(r.status_code, r.json()) for r in (http.post(f"{server.url}/transactions", json=t) for t in txs)]

    with LiveServer(serving_settings(lake)) as server, ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(post_all, range(CLIENTS)))
    for i in range(len(txs)):
        per_client = [client_answers[i] for client_answers in answers]
        assert sorted(status for status, _ in per_client) == [200] * (CLIENTS - 1) + [201]
        assert len({json.dumps(body, sort_keys=True) for _, body in per_client}) == 1
    assert sorted(_stored_ids(lake)) == sorted(tx["transaction_id"] for tx in txs)


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
