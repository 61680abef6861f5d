"""Serving across the nightly rebuild of the online store, over the days where the longest windows reach.

Between midnight and the new store, the API serves with the store as of D-2 while its stream holds
D-1 and D; then `online_store_job` swaps in the store as of D-1 under it. The test replays three
simulated days through the API with the store rebuilt by Dagster mid-way through D (on time) and
mid-way through D+1 (late), and requires every feature to equal gold and every score Spark's.
The bank has 40 days, so the last days' features reach back to the customer window's 30th day, the
terminal window's 37th day and the store's first day.
"""

import json
import math
import shutil
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import RunConfig, materialize
from fastapi.testclient import TestClient
from pyspark.ml import PipelineModel

from trybank_assets.assets.aggregates import CUSTOMER_AGGREGATES_SCHEMA, TERMINAL_AGGREGATES_SCHEMA
from trybank_assets.assets.gold import GOLD_SCHEMA
from trybank_assets.assets.online import OnlineStoreConfig
from trybank_assets.features import FEATURE_NAMES, LOOKBACK_DAYS, TERMINAL_LOOKBACK_DAYS
from trybank_assets.lib.spark_tables import read_days
from trybank_assets.model.training import probabilities
from trybank_assets.online_store import load_snapshot
from trybank_assets.resources import build_resources
from trybank_serving.app import create_app
from trybank_tests.conftest import ONLINE_ASSETS, small_bank_settings
from trybank_tests.serving_tests.conftest import HEADERS, replay, serving_settings, simulated_requests

BEFORE, NIGHT, LATE = date(2026, 3, 14), date(2026, 3, 15), date(2026, 3, 16)  # D-1, D, D+1
DAYS = (BEFORE, NIGHT, LATE)
# "The API picks the new store up within a second": it looks once a second (the default), then loads
# the file, which takes a few ms, or a few hundred on a busy 2-core machine.
PICKUP_SECONDS = 2.0


def assert_close(actual: float, expected: float, what) -> None:
    """Equal to 1e-9, and NaN equals nothing (``abs(a - b) <= tol`` would let a NaN through)."""
    assert math.isclose(actual, expected, rel_tol=0.0, abs_tol=1e-9), (what, actual, expected)


@pytest.fixture
def nightly_lake(trained_bank, tmp_path) -> Path:
    """A lake with the bank's model registry and daily aggregates, and no online store yet."""
    source = Path(trained_bank["settings"].lake_root)
    lake = tmp_path / "nightly_lake"
    for part in ("models", "gold/customer_daily_aggregates", "gold/terminal_daily_aggregates"):
        shutil.copytree(source / part, lake / part, symlinks=True)
    return lake


def _build_store(lake: Path, as_of: date, instance) -> None:
    """What online_store_job does after each night's daily run."""
    assert materialize(
        ONLINE_ASSETS,
        resources=build_resources(small_bank_settings(lake)),
        instance=instance,
        run_config=RunConfig(ops={"online_customer_state": OnlineStoreConfig(as_of=as_of.isoformat())}),
    ).success
    snapshot = load_snapshot(lake / "online" / "customer_state.sqlite")
    first_day = min(d for days in snapshot.terminals.values() for d, *_ in days)
    assert date.fromordinal(first_day) == as_of - timedelta(days=TERMINAL_LOOKBACK_DAYS - 1)  # the 37-day trim


def _rebuild_store_under(client: TestClient, lake: Path, as_of: date, instance) -> float:
    """Rebuild the store while the API runs; seconds from the new file to /ready reporting it, watched
    from another thread while the Dagster run is still finishing."""
    seen = []

    def watch_ready() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if client.get("/ready").json()["online_store_as_of"] == as_of.isoformat():
                seen.append(time.time())
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch_ready)
    watcher.start()
    _build_store(lake, as_of, instance)
    watcher.join()
    assert seen, "the API never picked up the new store"
    return seen[0] - (lake / "online" / "customer_state.sqlite").stat().st_mtime


def _stream_days(client: TestClient, customers: set[str]) -> set[date]:
    stream = client.app.state.serving.stream
    return {date.fromordinal(e[3]) for c in customers for e in stream.customer_events(c)}


def _eventually(condition, seconds: float = 5.0) -> bool:
    """The store swap and the stream's trim follow each other in the watcher thread."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _active_days_back(spark, day: date, gold: Path, aggregates: Path, schema, key: str, days_back: int) -> int:
    """Transactions of ``day`` whose customer or terminal was active exactly ``days_back`` days before."""
    edge = read_days(spark, aggregates, [day - timedelta(days=days_back)], schema).select(key).distinct()
    return read_days(spark, gold, [day], GOLD_SCHEMA).join(edge, key).count()


def test_three_days_across_store_refreshes_equal_gold_and_spark(spark, trained_bank, nightly_lake, instance):
    bank = trained_bank["lake"]
    gold_table = bank.transaction_features
    for day in DAYS:  # the windows' farthest days hold activity of the replayed transactions' keys
        customers, terminals = bank.customer_daily_aggregates, bank.terminal_daily_aggregates
        schema = CUSTOMER_AGGREGATES_SCHEMA
        assert _active_days_back(spark, day, gold_table, customers, schema, "customer_id", LOOKBACK_DAYS), day
        schema = TERMINAL_AGGREGATES_SCHEMA
        assert _active_days_back(spark, day, gold_table, terminals, schema, "terminal_id", TERMINAL_LOOKBACK_DAYS)
    gold = read_days(spark, bank.transaction_features, DAYS, GOLD_SCHEMA)
    current = nightly_lake / "models" / "fraud_model" / "current"
    model = PipelineModel.load(str(current / "spark_model"))
    calibration = json.loads((current / "scorer.json").read_text())["calibration"]  # the version's Platt scaling
    scored = probabilities(model, gold, calibration=calibration).collect()
    spark_scores = {r["transaction_id"]: r["probability"] for r in scored}
    gold_features = {r["transaction_id"]: {n: r[n] for n in FEATURE_NAMES} for r in gold.collect()}
    requests = {day: simulated_requests(bank, day) for day in DAYS}
    half, third = len(requests[NIGHT]) // 2, len(requests[LATE]) // 3

    _build_store(nightly_lake, BEFORE - timedelta(days=1), instance)
    served = {}
    with TestClient(create_app(serving_settings(nightly_lake, model_poll_seconds=1.0)), headers=HEADERS) as client:
        served |= replay(client, requests[BEFORE])
        served |= replay(client, requests[NIGHT][:half])  # past midnight, on the store as of D-2
        customers = {r["customer_id"] for r in requests[BEFORE] + requests[NIGHT][:half]}
        assert _stream_days(client, customers) == {BEFORE, NIGHT}

        assert _rebuild_store_under(client, nightly_lake, BEFORE, instance) <= PICKUP_SECONDS
        assert _eventually(lambda: _stream_days(client, customers) == {NIGHT})  # D-1 is in the store now
        served |= replay(client, requests[NIGHT][half:])

        served |= replay(client, requests[LATE][:third])  # the next night's store is late
        assert _stream_days(client, customers) == {NIGHT, LATE}
        assert _rebuild_store_under(client, nightly_lake, NIGHT, instance) <= PICKUP_SECONDS
        assert _eventually(lambda: _stream_days(client, customers) == {LATE})
        served |= replay(client, requests[LATE][third:])

    logged = {
        row["transaction_id"]: row["features"]
        for f in (nightly_lake / "predictions").rglob("*.jsonl")
        for row in map(json.loads, f.read_text().splitlines())
    }
    assert served.keys() == logged.keys() == gold_features.keys() == spark_scores.keys()
    assert len(served) > 1500
    for tx_id, features in logged.items():
        assert features.keys() == set(FEATURE_NAMES)
        for name in FEATURE_NAMES:
            assert_close(features[name], gold_features[tx_id][name], (tx_id, name))
        assert_close(served[tx_id]["fraud_probability"], spark_scores[tx_id], tx_id)
    # the stream matters: many transactions see earlier ones of their own day
    assert sum(1 for features in logged.values() if features["customer_txn_count_1d"] > 0) > 300
    # and the velocity windows and the customer's terminal habits take both sides
    assert sum(1 for features in logged.values() if features["customer_txn_count_1h"] > 0) > 10
    assert {features["new_terminal_30d"] for features in logged.values()} == {0.0, 1.0}
