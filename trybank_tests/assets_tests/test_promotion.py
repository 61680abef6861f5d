"""Promotion end to end through Dagster: a better model replaces the champion, a worse one is blocked,
and serving swaps between two different models under load without mislabelling a single answer.

The worse model is made by its data: trained on the bank's gold with every label before the test
window replaced by a coin flip (1%), so it learns nothing, while the test window keeps the true labels.
"""

import json
import os
import shutil
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from dagster import DagsterInstance, RunConfig, materialize
from pyspark.sql import functions as F

from trybank_assets.assets.gold import GOLD_SCHEMA
from trybank_assets.assets.model import PromotionConfig
from trybank_assets.lib.spark_tables import read_days, replace_days
from trybank_assets.model import registry
from trybank_assets.resources import build_resources
from trybank_tests.conftest import BANK_FIRST, BANK_LAST, MODEL_ASSETS, SMALL_TRAINING, small_bank_settings
from trybank_tests.serving_tests.conftest import HEADERS, LiveServer, serving_settings, transaction

# No floor: these runs are judged against the champion only.
AGAINST_THE_CHAMPION = PromotionConfig(min_roc_auc=0.0)


def _gate(result):
    return next(c for c in result.get_asset_check_evaluations() if c.check_name == "promotion_gate")


def _candidate(result) -> str:
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key.path == ["fraud_model"])
    return event.materialization.metadata["version"].value


def _noisy_labels(spark, source: Path, table: Path) -> None:
    """``table`` (a copy of ``source``) with every day before the test window labelled at random."""
    first = date.fromisoformat(BANK_FIRST)
    test_start = date.fromisoformat(BANK_LAST) - timedelta(days=SMALL_TRAINING.test_days - 1)
    days = [first + timedelta(days=i) for i in range((test_start - first).days)]
    noisy = read_days(spark, source, days, GOLD_SCHEMA).withColumn("is_fraud", F.rand(seed=7) < 0.01)
    replace_days(noisy.select(*GOLD_SCHEMA.names), table, days)


@pytest.fixture(scope="module")
def promotions(spark, trained_bank, tmp_path_factory) -> dict:
    """Two trainings on one lake through Dagster, on noise (the first champion), then on the true labels
    (a better challenger); then the noise-trained candidate put to the gate again, now a worse one."""
    source = Path(trained_bank["settings"].lake_root)
    lake = tmp_path_factory.mktemp("promotion") / "data_lake"
    for part in ("silver/transactions", "gold/transaction_features", "online"):
        shutil.copytree(source / part, lake / part)
    gold = lake / "gold" / "transaction_features"
    true_gold, noisy_gold = lake / "true_features", lake / "noisy_features"
    shutil.copytree(gold, noisy_gold)
    _noisy_labels(spark, trained_bank["lake"].transaction_features, noisy_gold)
    gold.rename(true_gold)
    resources = build_resources(small_bank_settings(lake))
    run_config = RunConfig(ops={"fraud_model": SMALL_TRAINING, "deployed_fraud_model": AGAINST_THE_CHAMPION})

    def train_on(features: Path, instance: DagsterInstance):
        features.rename(gold)
        try:
            return materialize(MODEL_ASSETS, resources=resources, instance=instance, run_config=run_config)
        finally:
            gold.rename(features)

    # Each instance's latest fraud_model materialization is the candidate its gate judges.
    with DagsterInstance.ephemeral() as noise_instance, DagsterInstance.ephemeral() as instance:
        noise = train_on(noisy_gold, noise_instance)
        better = train_on(true_gold, instance)
        worse = materialize(
            [a for a in MODEL_ASSETS if a.key.path == ["deployed_fraud_model"]],
            resources=resources,
            instance=noise_instance,
            run_config=RunConfig(ops={"deployed_fraud_model": AGAINST_THE_CHAMPION}),
            raise_on_error=False,  # the blocking gate fails the run; the test reads the check
        )
    return {
        "lake": lake,
        "runs": {"noise": noise, "better": better, "worse": worse},
        "registry": lake / "models" / "fraud_model",
    }


def test_a_better_model_replaces_the_champion_and_previous_is_recorded(promotions):
    runs, root = promotions["runs"], promotions["registry"]
    noise, better = _candidate(runs["noise"]), _candidate(runs["better"])
    assert runs["noise"].success and _gate(runs["noise"]).passed
    assert runs["better"].success and _gate(runs["better"]).passed
    noise_ap = registry.read_metrics(root, noise)["average_precision"]
    better_ap = registry.read_metrics(root, better)["average_precision"]
    assert better_ap > noise_ap + AGAINST_THE_CHAMPION.max_average_precision_drop
    promoted = [json.loads(line) for line in (root / registry.PROMOTIONS).read_text().splitlines()]
    assert [(p["version"], p["previous"]) for p in promoted] == [(noise, None), (better, noise)]
    deployed = next(
        e for e in runs["better"].get_asset_materialization_events() if e.asset_key.path == ["deployed_fraud_model"]
    )
    assert deployed.materialization.metadata["previous_champion"].value == noise


def test_a_worse_model_is_blocked_and_names_the_champion(promotions):
    runs, root = promotions["runs"], promotions["registry"]
    better = _candidate(runs["better"])
    assert not runs["worse"].success
    gate = _gate(runs["worse"])
    assert not gate.passed and gate.metadata["candidate"].value == _candidate(runs["noise"])
    [reason] = gate.metadata["reasons"].value
    assert "average precision" in reason and f"champion {better}" in reason
    assert registry.current_version(root) == better
    assert len((root / registry.PROMOTIONS).read_text().splitlines()) == 2


def test_each_answer_under_a_model_swap_is_scored_by_the_model_it_names(promotions):
    """Two different models swapped back and forth under 8 clients: every answer's probability and
    reasons are those of the version it names."""
    root = promotions["registry"]
    noise, better = _candidate(promotions["runs"]["noise"]), _candidate(promotions["runs"]["better"])

    # A new transaction each time (a retry gets its first answer back), on the store's last day, so the
    # stream does not count it and every request has the same features.
    def tx() -> dict:
        return transaction(amount=912.0, event_time="2026-03-16T02:30:00Z")

    settings = serving_settings(promotions["lake"])
    expected, answers, stop = {}, [], threading.Event()

    with LiveServer(settings) as server, httpx.Client(headers=HEADERS, timeout=30) as http:
        for version in (noise, better):
            registry.promote(root, version, {"reason": "swap test"})
            deadline = time.monotonic() + 5
            while (answer := http.post(f"{server.url}/predict", json=tx()).json())["model_version"] != version:
                assert time.monotonic() < deadline, f"{version} was not picked up"
                time.sleep(0.02)
            expected[version] = (answer["fraud_probability"], answer["reasons"])
        assert expected[noise][0] != expected[better][0]

        def predict_until_stopped() -> None:
            with httpx.Client(headers=HEADERS, timeout=30) as client:
                while not stop.is_set():
                    response = client.post(f"{server.url}/predict", json=tx())
                    answers.append((response.status_code, response.json()))

        threads = [threading.Thread(target=predict_until_stopped) for _ in range(8)]
        for t in threads:
            t.start()
        for i in range(10):
            registry.promote(root, noise if i % 2 == 0 else better, {"reason": "swap test"})
            time.sleep(0.15)
        stop.set()
        for t in threads:
            t.join()

    assert len(answers) > 100
    assert {status for status, _ in answers} == {200}
    assert {body["model_version"] for _, body in answers} == {noise, better}
    for _, body in answers:
        assert (body["fraud_probability"], body["reasons"]) == expected[body["model_version"]]
    assert os.readlink(root / "current") == better
