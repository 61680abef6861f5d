"""A model or online store that fails its checks is refused: the last good one keeps serving, and
/ready, /model, the metrics and the log (once) say so."""

import logging
import os
import shutil
import sqlite3
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from trybank_assets.model import registry
from trybank_assets.online_store import write_store
from trybank_serving import metrics
from trybank_serving.app import create_app
from trybank_tests.serving_tests.conftest import HEADERS, serving_settings, transaction

STORE_AS_OF = "2026-03-15"


def _refused(artefact: str) -> float:
    return metrics.registry.get_sample_value("trybank_refused_loads_total", {"artefact": artefact}) or 0


def _wait_for(condition, seconds: float = 5.0):
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


def _promote_copy(models, breaks) -> str:
    """A copy of the champion under a new version, broken by ``breaks(folder)``, promoted."""
    champion = registry.current_version(models)
    version = f"{champion}-broken-{time.monotonic_ns()}"
    shutil.copytree(models / champion, models / version)
    breaks(models / version)
    registry.promote(models, version, {"reason": "test"})
    return version


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


BROKEN_MODELS = {
    "truncated scorer": (lambda f: _truncate(f / "scorer.json"), "scorer.json is unreadable"),
    "empty scorer": (lambda f: (f / "scorer.json").write_text(""), "scorer.json is unreadable"),
    "scorer without kind": (lambda f: (f / "scorer.json").write_text('{"features": []}'), "scorer.json has no"),
    "metrics without threshold": (lambda f: (f / "metrics.json").write_text('{"roc_auc": 0.9}'), "no 'threshold'"),
}


@pytest.mark.parametrize("case", BROKEN_MODELS)
def test_a_broken_model_is_refused_once_and_the_champion_keeps_serving(serving_lake, caplog, case):
    breaks, reason = BROKEN_MODELS[case]
    models = serving_lake / "models" / "fraud_model"
    champion = registry.current_version(models)
    with TestClient(create_app(serving_settings(serving_lake)), headers=HEADERS) as client:
        before = _refused("model")
        with caplog.at_level(logging.ERROR, logger="trybank_serving"):
            version = _promote_copy(models, breaks)
            refused = _wait_for(lambda: client.get("/ready").json()["refused"].get("model"))
            time.sleep(0.3)  # several more polls of the same broken version
        assert refused["source"] == version and reason in refused["reason"]
        ready = client.get("/ready").json()
        assert ready["ready"] and ready["model_version"] == champion
        info = client.get("/model").json()
        assert info["version"] == champion and info["last_load_error"] == refused
        assert client.post("/predict", json=transaction()).json()["model_version"] == champion
        assert _refused("model") - before == 1
        logged = [r for r in caplog.records if "refused the model" in r.getMessage()]
        assert len(logged) == 1 and not any(r.exc_info for r in caplog.records)

        registry.promote(models, champion, {"reason": "rollback"})  # a good load clears the refusal
        _wait_for(lambda: not client.get("/ready").json()["refused"])
        assert client.get("/model").json()["last_load_error"] is None


def _empty_store(path):
    write_store(path, date.fromisoformat(STORE_AS_OF), [], [])


def _store_without_as_of(path):
    write_store(path, date.fromisoformat(STORE_AS_OF), [("C1", 1, 1, 1, 1, 0, 1)], [("T1", 1, 1, 0, 1)])
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM meta")


BROKEN_STORES = {
    "empty": (_empty_store, "holds no customer"),
    "not sqlite": (lambda p: p.write_bytes(b"not a database" * 100), "DatabaseError"),
    "zero bytes": (lambda p: p.write_bytes(b""), "no such table"),
    "no as_of": (_store_without_as_of, "has no as_of"),
}


def _replace(store, breaks):
    tmp = store.with_name("broken.sqlite")
    tmp.unlink(missing_ok=True)
    breaks(tmp)
    os.replace(tmp, store)


@pytest.mark.parametrize("case", BROKEN_STORES)
def test_a_broken_store_is_refused_and_the_loaded_one_keeps_serving(serving_lake, case):
    breaks, reason = BROKEN_STORES[case]
    store = serving_lake / "online" / "customer_state.sqlite"
    with TestClient(create_app(serving_settings(serving_lake)), headers=HEADERS) as client:
        score = client.post("/predict", json=transaction()).json()["fraud_probability"]
        before = _refused("online_store")
        _replace(store, breaks)
        refused = _wait_for(lambda: client.get("/ready").json()["refused"].get("online_store"))
        time.sleep(0.3)
        assert reason in refused["reason"] and refused["source"] == str(store)
        ready = client.get("/ready").json()
        assert ready["ready"] and ready["online_store_as_of"] == STORE_AS_OF
        assert client.post("/predict", json=transaction()).json()["fraud_probability"] == score
        assert _refused("online_store") - before == 1


def test_nothing_good_loaded_is_503_with_the_reason(serving_lake):
    """A store older than TRYBANK_STORE_MAX_AGE_DAYS at start, then a broken model only."""
    age = (datetime.now(UTC).date() - date.fromisoformat(STORE_AS_OF)).days
    with TestClient(create_app(serving_settings(serving_lake, store_max_age_days=age - 1)), headers=HEADERS) as c:
        response = c.get("/ready")
        assert response.status_code == 503
        detail = response.json()["detail"]
        assert detail["reason"].startswith("no online store loaded: the store is as of 2026-03-15")
        assert "TRYBANK_STORE_MAX_AGE_DAYS" in detail["reason"] and detail["model_version"]
        assert c.post("/predict", json=transaction()).status_code == 503
    with TestClient(create_app(serving_settings(serving_lake, store_max_age_days=age + 1)), headers=HEADERS) as c:
        assert c.get("/ready").status_code == 200

    models = serving_lake / "models" / "fraud_model"
    version = registry.current_version(models)
    _truncate(models / version / "scorer.json")
    with TestClient(create_app(serving_settings(serving_lake)), headers=HEADERS) as c:
        detail = c.get("/ready").json()["detail"]
        assert detail["reason"].startswith("no model loaded: scorer.json is unreadable")
        model = c.get("/model")
        assert model.status_code == 503 and model.json()["detail"]["last_load_error"]["source"] == version


def test_stale_store_is_checked_against_the_setting():
    from trybank_assets.online_store import OnlineSnapshot
    from trybank_serving.load_refusals import InvalidArtefact
    from trybank_serving.store_holder import check_snapshot

    today = date(2026, 11, 26)
    snapshot = OnlineSnapshot(today - timedelta(days=3), {"C": [(1, 1, 1, 1, 0, 1)]}, {"T": [(1, 1, 0, 1)]})
    check_snapshot(snapshot, None, today)
    check_snapshot(snapshot, 3, today)
    with pytest.raises(InvalidArtefact, match="3 days old"):
        check_snapshot(snapshot, 2, today)
