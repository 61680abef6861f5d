"""Training, evaluation, registry and promotion, end to end through Dagster on a small simulated bank."""

import json
import math
import os
import threading
from datetime import date

import pytest
from dagster import RunConfig, materialize

from trybank_assets.assets.gold import GOLD_SCHEMA
from trybank_assets.assets.model import PromotionConfig, promotion_reasons
from trybank_assets.features import FEATURE_NAMES
from trybank_assets.lib.spark_tables import read_days
from trybank_assets.model import registry
from trybank_assets.model.scorer import load_scorer, scorer_from_dict
from trybank_assets.model.trainer import TrainingSpec
from trybank_assets.model.training import (
    build_pipeline,
    candidates,
    export_scorer,
    labelled,
    probabilities,
)
from trybank_assets.model.windows import TrainingWindow
from trybank_tests.conftest import MODEL_ASSETS, SMALL_TRAINING


def _train(bank, promotion: PromotionConfig):
    # A failed blocking check fails the run; the tests read the check result instead.
    return materialize(
        MODEL_ASSETS,
        resources=bank["resources"],
        instance=bank["instance"],
        run_config=RunConfig(ops={"fraud_model": SMALL_TRAINING, "deployed_fraud_model": promotion}),
        raise_on_error=False,
    )


@pytest.fixture
def bank(trained_bank):
    return trained_bank


def _version(result) -> str:
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key.path == ["fraud_model"])
    return event.materialization.metadata["version"].value


def test_training_writes_a_complete_version_with_honest_windows(bank):
    root = bank["lake"].fraud_model_registry
    version = _version(bank["first_run"])
    folder = root / version
    assert {p.name for p in folder.iterdir()} >= {
        "spark_model",
        "scorer.json",
        "feature_spec.json",
        "metrics.json",
        "roc.png",
        "pr.png",
        "baseline.json",
    }
    metrics = json.loads((folder / "metrics.json").read_text())
    for key in ("roc_auc", "average_precision", "card_precision_at_100", "recall_at_1pct_fpr", "threshold"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["train_window"] == ["2026-02-16", "2026-03-07"]
    assert metrics["test_window"] == ["2026-03-10", "2026-03-16"]
    assert set(metrics["by_algorithm"]) == {"logistic_regression", "gradient_boosted_trees"}
    assert metrics["train_frauds"] > 0 and metrics["test_frauds"] > 0
    assert metrics["recall_by_scenario"]
    # The headline is the protocol's, and every candidate's validation folds are listed.
    assert {k: metrics[k] for k in ("roc_auc", "average_precision")} == {
        k: metrics["protocol"][k] for k in ("roc_auc", "average_precision")
    }
    assert metrics["all_rows"]["rows"] == metrics["test_rows"] >= metrics["protocol"]["rows"]
    assert set(metrics["candidates"]) == {c.name for c in candidates(5)}
    assert all(c["folds"] for c in metrics["candidates"].values())
    assert metrics["threshold"] == metrics["thresholds"][metrics["threshold_rule"]]
    # Every finalist can be scored without a refit.
    for algorithm in ("logistic_regression", "gradient_boosted_trees"):
        finalist = folder / "finalists" / algorithm
        assert load_scorer(finalist / "scorer.json").features == FEATURE_NAMES
        assert (finalist / "spark_model").is_dir()
        assert json.loads((finalist / "metrics.json").read_text())["protocol"]["rows"] > 0
    spec = json.loads((folder / "feature_spec.json").read_text())
    assert [f["name"] for f in spec["features"]] == list(FEATURE_NAMES)
    assert all(f["available"] for f in spec["features"])
    assert not any(p.name.startswith(".staging") for p in root.iterdir())
    reference = registry.read_baseline(root, version)
    assert reference["window"] == metrics["test_window"] and reference["rows"] == metrics["test_rows"]
    assert set(reference["series"]) == {"fraud_probability", *FEATURE_NAMES} - {"is_weekend"}
    for name, bins in reference["series"].items():
        assert len(bins["shares"]) == len(bins["edges"]) + 1 and sum(bins["shares"]) == pytest.approx(1.0), name


def test_training_window_refuses_leakage():
    with pytest.raises(ValueError, match="overlap"):
        TrainingWindow(date(2026, 3, 1), date(2026, 3, 10), 0, date(2026, 3, 10), date(2026, 3, 12))
    with pytest.raises(ValueError, match="7 required"):
        TrainingWindow(date(2026, 3, 1), date(2026, 3, 10), 7, date(2026, 3, 15), date(2026, 3, 20))
    window = TrainingWindow.ending_on(date(2026, 3, 31), train_days=21, delay_days=7, test_days=7)
    assert (window.train_end, window.test_start) == (date(2026, 3, 17), date(2026, 3, 25))
    assert max(window.train_days) < min(window.test_days)


def test_first_model_is_promoted(bank):
    root = bank["lake"].fraud_model_registry
    assert registry.current_version(root) == _version(bank["first_run"])
    gate = next(c for c in bank["first_run"].get_asset_check_evaluations() if c.check_name == "promotion_gate")
    assert gate.passed
    assert load_scorer(root / "current" / "scorer.json").features == FEATURE_NAMES


def test_a_model_below_the_floor_is_blocked_and_current_is_untouched(bank):
    root = bank["lake"].fraud_model_registry
    before = registry.current_version(root)
    result = _train(bank, PromotionConfig(min_roc_auc=1.01))
    assert not result.success
    gate = next(c for c in result.get_asset_check_evaluations() if c.check_name == "promotion_gate")
    assert not gate.passed
    assert "below the floor" in gate.metadata["reasons"].value[0]
    assert registry.current_version(root) == before != _version(result)


def test_promotion_compares_average_precision_with_the_champion():
    champion = {"version": "v1", "roc_auc": 0.9, "average_precision": 0.60}
    config = PromotionConfig(min_roc_auc=0.8, max_average_precision_drop=0.02)
    assert promotion_reasons({"roc_auc": 0.9, "average_precision": 0.59}, champion, config) == []
    [reason] = promotion_reasons({"roc_auc": 0.9, "average_precision": 0.55}, champion, config)
    assert "worse than champion v1" in reason
    assert promotion_reasons({"roc_auc": float("nan"), "average_precision": 0.9}, None, config)


def test_pointer_switch_is_atomic_for_readers(tmp_path):
    for version in ("v1", "v2"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "scorer.json").write_text(json.dumps({"version": version}))
    registry.promote(tmp_path, "v1", {})
    errors, stop = [], threading.Event()

    def read_forever():
        while not stop.is_set():
            try:
                json.loads((tmp_path / "current" / "scorer.json").read_text())
            except Exception as exc:  # any failed read is a torn pointer
                errors.append(exc)

    reader = threading.Thread(target=read_forever)
    reader.start()
    for i in range(300):
        registry.promote(tmp_path, "v2" if i % 2 == 0 else "v1", {})
    stop.set()
    reader.join()
    assert errors == []
    assert os.readlink(tmp_path / "current") == "v1"
    assert len((tmp_path / "promotions.jsonl").read_text().splitlines()) == 301


@pytest.mark.parametrize("candidate_name", ["lr_l2_0.01", "gbt_depth5"])
def test_portable_scorer_equals_spark_transform(spark, bank, tmp_path, candidate_name):
    days = [date(2026, 3, d) for d in range(1, 17)]
    gold = labelled(read_days(spark, bank["lake"].transaction_features, days, GOLD_SCHEMA))
    candidate = next(c for c in candidates(gbt_max_iter=10) if c.name == candidate_name)
    model = build_pipeline(candidate).fit(gold)
    model.write().save(str(tmp_path / "spark_model"))
    calibration = {"kind": "platt", "a": 0.7, "b": -1.3}
    spec = export_scorer(spark, model, tmp_path / "spark_model", calibration)
    scorer = scorer_from_dict(json.loads(json.dumps(spec)))

    rows = probabilities(model, gold, *FEATURE_NAMES, calibration=calibration).collect()
    assert len(rows) >= 1000
    gaps = [abs(scorer.probability([r[n] for n in FEATURE_NAMES]) - r["probability"]) for r in rows]
    assert all(gap <= 1e-9 for gap in gaps), max(gaps)  # a NaN gap fails too
    assert len({round(r["probability"], 6) for r in rows}) > 20  # a model that says something

    # The reasons' contributions add up to the score: they split the calibrated log-odds.
    bias = (
        scorer.intercept
        if candidate_name.startswith("lr")
        else sum(w * t[0][4] for w, t in zip(scorer.weights, scorer.trees, strict=True))
    )
    scale = 0.7 if candidate_name.startswith("lr") else 2.0 * 0.7
    for r in rows[:500]:
        x = [r[n] for n in FEATURE_NAMES]
        probability, contributions = scorer.explain(x)
        assert probability == scorer.probability(x)
        log_odds = scale * bias + sum(contributions) - 1.3
        assert math.isclose(probability, 1 / (1 + math.exp(-log_odds)), abs_tol=1e-12)


def test_explicit_training_window_from_run_config():
    from trybank_assets.assets.model import FraudModelConfig

    config = FraudModelConfig(train_end="2026-03-11", train_days=6, delay_days=2, test_days=3)
    window = TrainingSpec(**config.model_dump()).window(latest_gold_day=None)
    assert (window.train_start, window.test_start, window.test_end) == (
        date(2026, 3, 6),
        date(2026, 3, 14),
        date(2026, 3, 16),
    )
    with pytest.raises(ValueError, match="train_end"):
        FraudModelConfig(train_end="2026-13-01")


def test_training_does_not_depend_on_row_order(spark, bank):
    from pyspark.sql import functions as F

    days = [date(2026, 3, d) for d in range(1, 17)]
    gold = read_days(spark, bank["lake"].transaction_features, days, GOLD_SCHEMA)
    shuffled = gold.orderBy(F.rand(seed=11)).repartition(3)
    candidate = next(c for c in candidates(gbt_max_iter=5) if c.name == "gbt_depth5")
    first = build_pipeline(candidate).fit(labelled(gold))
    second = build_pipeline(candidate).fit(labelled(shuffled))

    def scores(model):
        return {r["transaction_id"]: r["probability"] for r in probabilities(model, labelled(gold)).collect()}

    assert scores(first) == scores(second)
