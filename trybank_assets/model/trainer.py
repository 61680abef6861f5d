"""One training run, from gold to a registry version: select, refit, calibrate, judge, write.

The candidates are compared by prequential validation inside the training window; the best of
each family is refitted on every training day, calibrated on its latest validation fold, and
judged on the test window under the fraud-detection literature's protocol. Every finalist is
kept in the version (``finalists/<algorithm>/``), so a challenger can be scored without a refit;
the one chosen is also at the version's top level, where serving reads it.
"""

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from trybank_assets.features import FEATURE_NAMES, FEATURES
from trybank_assets.model import drift, registry
from trybank_assets.model.calibration import calibrated_array, fit_platt
from trybank_assets.model.evaluation import (
    best_f1_threshold,
    expected_cost_threshold,
    protocol_metrics,
    protocol_rows,
)
from trybank_assets.model.plots import write_curves
from trybank_assets.model.training import (
    Candidate,
    FoldResult,
    best_of,
    build_pipeline,
    candidates,
    class_weighted,
    export_scorer,
    labelled_rows,
    mean_fold_ap,
    prequential_validation,
    scored_arrays,
)
from trybank_assets.model.windows import TrainingWindow, days_between, prequential_folds

ReadDays = Callable[[Sequence[date]], DataFrame]
THRESHOLD_RULES = ("best_f1", "expected_cost")


@dataclass(frozen=True)
class TrainingSpec:
    """What a run trains on and how; the fields of the asset's run config."""

    train_start: str | None = None
    train_end: str | None = None
    train_days: int = 21
    delay_days: int = 7
    test_days: int = 7
    validation_days: int = 3
    validation_folds: int = 3
    gbt_max_iter: int = 30
    card_precision_k: int = 100
    threshold_rule: str = "best_f1"
    missed_fraud_cost_share: float = 1.0
    review_cost: float = 5.0

    def window(self, latest_gold_day: date | None) -> TrainingWindow:
        return TrainingWindow.resolve(
            latest_day=latest_gold_day,
            train_start=date.fromisoformat(self.train_start) if self.train_start else None,
            train_end=date.fromisoformat(self.train_end) if self.train_end else None,
            train_days=self.train_days,
            delay_days=self.delay_days,
            test_days=self.test_days,
        )


@dataclass(frozen=True)
class TrainedVersion:
    version: str
    path: Path
    metrics: dict
    stage_seconds: dict[str, float]


class _StageClock:
    """Wall seconds per stage of a run, each stage timed from the end of the one before."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._since = time.perf_counter()

    def done(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._since
        self._since = now


@dataclass(frozen=True)
class _Finalist:
    candidate: Candidate
    model: object  # the refitted PipelineModel
    calibration: dict | None
    thresholds: dict[str, float]
    test: dict[str, np.ndarray]
    metrics: dict


def first_fraud_days(gold: DataFrame) -> dict[str, date]:
    """Each defrauded customer's first labelled fraud day in ``gold``."""
    rows = gold.where(F.col("is_fraud")).groupBy("customer_id").agg(F.min("date").alias("first")).collect()
    return {r["customer_id"]: r["first"] for r in rows}


def _thresholds(latest_fold: FoldResult, calibration: dict | None, spec: TrainingSpec, first_fraud: dict) -> dict:
    """Both thresholds on the calibrated scores of the latest fold, a model's unseen days."""
    judged = protocol_rows(latest_fold.scored, first_fraud, spec.delay_days)
    scores = calibrated_array(calibration, judged["margin"])
    labels = judged["label"]
    return {
        "best_f1": best_f1_threshold(scores, labels),
        "expected_cost": expected_cost_threshold(
            scores, labels, judged["amount"], spec.missed_fraud_cost_share, spec.review_cost
        ),
    }


def _calibration(latest_fold: FoldResult, log: Callable[[str], None]) -> dict | None:
    """Platt scaling fitted on the latest fold, or none when that fold cannot support one."""
    try:
        return fit_platt(latest_fold.scored["margin"], latest_fold.scored["label"])
    except ValueError as exc:
        log(f"probabilities left uncalibrated: {exc}")
        return None


def _recall_by_scenario(scored: dict[str, np.ndarray], threshold: float) -> dict:
    flagged = scored["probability"] >= threshold
    return {
        scenario: {"frauds": int(mine.sum()), "recall": float(flagged[mine].mean())}
        for scenario in sorted(set(scored["fraud_scenario"]) - {""})
        if (mine := scored["fraud_scenario"] == scenario).any()
    }


def train_fraud_model(
    session: SparkSession,
    read_gold: ReadDays,
    gold_days: tuple[date | None, date | None],
    registry_root: Path,
    spec: TrainingSpec,
    feature_spec: Callable[[TrainingWindow], dict],
    log: Callable[[str], None],
) -> TrainedVersion:
    if spec.threshold_rule not in THRESHOLD_RULES:
        raise ValueError(f"threshold_rule {spec.threshold_rule!r} is not one of {THRESHOLD_RULES}")
    clock = _StageClock()
    earliest, latest = gold_days
    window = spec.window(latest)
    log(f"training window {window}")
    first_fraud = first_fraud_days(read_gold(days_between(earliest or window.train_start, window.test_end)))
    folds = prequential_folds(window, spec.validation_days, spec.validation_folds, earliest)
    # Every day a fit or a judgement needs, read and shuffled once: folds overlap the training window.
    rows = labelled_rows(read_gold(days_between(min(folds[-1].fit_days[0], window.train_start), window.test_end)))
    rows = rows.cache()

    def labelled_days(days: Sequence[date]) -> DataFrame:
        return rows.where(F.col("date").between(min(days), max(days)))

    train = class_weighted(labelled_days(window.train_days))
    test = class_weighted(labelled_days(window.test_days))
    leaked = train.where(F.col("date") >= window.test_start).count()
    if leaked:
        raise AssertionError(f"{leaked} training rows fall in or after the test window starting {window.test_start}")
    clock.done("read_gold")

    pool = candidates(spec.gbt_max_iter)
    validation = prequential_validation(labelled_days, folds, pool, first_fraud, spec.delay_days)
    if not any(validation.values()):
        raise ValueError(f"no validation fold of {folds} holds both classes: nothing to choose a model by")
    chosen = best_of(pool, validation)
    clock.done("validation")

    algorithms = ("logistic_regression", "gradient_boosted_trees")
    bests = {a: best_of([c for c in pool if c.algorithm == a], validation) for a in algorithms}
    # One fit at a time: over Spark Connect a fit needs the session, which is active only in this thread.
    refitted = {a: build_pipeline(best).fit(train) for a, best in bests.items()}
    clock.done("refit")
    finalists: dict[str, _Finalist] = {}
    for algorithm, best in bests.items():
        latest_fold = validation[best.name][0]
        calibration = _calibration(latest_fold, log)
        thresholds = _thresholds(latest_fold, calibration, spec, first_fraud)
        clock.done("calibration_and_thresholds")
        model = refitted[algorithm]
        scored = scored_arrays(model, test, calibration)
        clock.done("test_scoring")
        threshold = thresholds[spec.threshold_rule]
        metrics = {
            "candidate": best.name,
            "params": best.params,
            **protocol_metrics(scored, threshold, spec.card_precision_k, first_fraud, spec.delay_days),
            "recall_by_scenario": _recall_by_scenario(scored, threshold),
            "threshold": threshold,
            "thresholds": thresholds,
            "calibration": calibration,
        }
        finalists[algorithm] = _Finalist(best, model, calibration, thresholds, scored, metrics)
        clock.done("test_metrics")
    winner = finalists[chosen.algorithm]

    metrics = {
        **{k: winner.metrics["protocol"][k] for k in _HEADLINE},
        "evaluation": (
            f"protocol: on each test day T, customers with a fraud on any day up to T - {spec.delay_days} - 1 "
            "(known compromised by then) are left out; card precision@100 also leaves out customers found "
            "defrauded on earlier test days"
        ),
        "protocol": winner.metrics["protocol"],
        "all_rows": winner.metrics["all_rows"],
        "recall_by_scenario": winner.metrics["recall_by_scenario"],
        "algorithm": chosen.algorithm,
        "candidate": chosen.name,
        "params": chosen.params,
        "threshold": winner.metrics["threshold"],
        "threshold_rule": spec.threshold_rule,
        "thresholds": winner.thresholds,
        "threshold_costs": {"missed_fraud_cost_share": spec.missed_fraud_cost_share, "review_cost": spec.review_cost},
        "calibration": winner.calibration,
        "candidates": {
            c.name: {
                "algorithm": c.algorithm,
                "params": c.params,
                "mean_validation_average_precision": mean_fold_ap(validation[c.name]),
                "folds": [
                    {
                        "fit_days": [str(r.fold.fit_days[0]), str(r.fold.fit_days[-1])],
                        "valid_days": [str(r.fold.valid_days[0]), str(r.fold.valid_days[-1])],
                        "average_precision": r.average_precision,
                    }
                    for r in validation[c.name]
                ],
            }
            for c in pool
        },
        "by_algorithm": {a: f.metrics for a, f in finalists.items()},
        "train_window": [window.train_start.isoformat(), window.train_end.isoformat()],
        "delay_days": window.delay_days,
        "test_window": [window.test_start.isoformat(), window.test_end.isoformat()],
        "train_rows": train.count(),
        "train_frauds": train.where("label = 1").count(),
        "test_rows": len(winner.test["label"]),
        "test_frauds": int(winner.test["label"].sum()),
    }
    clock.done("test_metrics")

    version = registry.new_version({"spec": asdict(spec), "window": str(window), "rows": metrics["train_rows"]})
    staging = registry.staging_dir(registry_root, version)
    for algorithm, finalist in finalists.items():
        folder = staging / registry.FINALISTS / algorithm
        _write_model(session, finalist, folder)
        (folder / "metrics.json").write_text(json.dumps(finalist.metrics, indent=2, default=str))
    _write_model(session, winner, staging)
    (staging / "metrics.json").write_text(json.dumps({"version": version, **metrics}, indent=2, default=str))
    clock.done("model_write_and_export")
    (staging / "feature_spec.json").write_text(json.dumps(feature_spec(window), indent=2))
    clock.done("feature_spec")
    test_features = test.select(*FEATURE_NAMES).toArrow()
    reference = drift.baseline(
        winner.test["probability"],
        {name: test_features.column(name).to_numpy() for name in FEATURE_NAMES},
        winner.metrics["threshold"],
        metrics["test_window"],
    )
    (staging / "baseline.json").write_text(json.dumps(reference))
    clock.done("drift_baseline")
    write_curves(
        {
            f"{a} (AP {f.metrics['protocol']['average_precision']:.3f})": _protocol_scores(f.test, first_fraud, spec)
            for a, f in finalists.items()
        },
        staging / "roc.png",
        staging / "pr.png",
    )
    clock.done("plots")
    final = registry.publish(registry_root, staging, version)
    rows.unpersist()
    clock.done("publish")
    return TrainedVersion(version, final, {"version": version, **metrics}, clock.seconds)


_HEADLINE = (
    "roc_auc",
    "average_precision",
    "card_precision_at_100",
    "card_precision_at_100_best_possible",
    "recall_at_1pct_fpr",
    "recall_at_threshold",
    "precision_at_threshold",
    "fraud_amount_caught",
    "fraud_amount_caught_share",
)


def _write_model(session: SparkSession, finalist: _Finalist, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    finalist.model.write().save(str(folder / "spark_model"))
    scorer = export_scorer(session, finalist.model, folder / "spark_model", finalist.calibration)
    (folder / "scorer.json").write_text(json.dumps(scorer))


def _protocol_scores(scored: dict[str, np.ndarray], first_fraud: dict, spec: TrainingSpec):
    judged = protocol_rows(scored, first_fraud, spec.delay_days)
    return judged["probability"], judged["label"]


def feature_availability(silver: DataFrame) -> dict:
    """Ordered features, and whether the optional bronze fields each one needs were present."""
    optional = sorted({field for f in FEATURES for field in f.needs})
    present = silver.agg(*[F.count(field).alias(field) for field in optional]).first().asDict()
    return {
        "features": [
            {
                "name": f.name,
                "window_days": f.window_days,
                "description": f.description,
                "available": all(present[field] for field in f.needs),
            }
            for f in FEATURES
        ],
        "optional_fields_present": {field: bool(present[field]) for field in optional},
    }
