"""The fraud model: trained on earlier days, judged on later ones, promoted only through a gate."""

import base64
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster_pyspark import LazyPySparkResource
from pydantic import Field, field_validator
from pyspark.sql import functions as F

from trybank_assets.assets.gold import GOLD_SCHEMA
from trybank_assets.assets.silver import SILVER_SCHEMA
from trybank_assets.features import FEATURE_NAMES, FEATURES
from trybank_assets.lake_layout import latest_day
from trybank_assets.lib.spark_tables import read_days
from trybank_assets.model import drift, registry
from trybank_assets.model.evaluation import (
    average_precision,
    best_f1_threshold,
    card_precision_at_k,
    recall_at_fpr,
    roc_auc,
)
from trybank_assets.model.plots import write_curves
from trybank_assets.model.training import (
    TrainingWindow,
    build_pipeline,
    candidates,
    export_scorer,
    labelled,
    scored_arrays,
    select_candidate,
)
from trybank_assets.partitions import check_iso_day
from trybank_assets.resources.lake import LakeResource


class FraudModelConfig(Config):
    train_start: str | None = Field(
        None, description="First training day (YYYY-MM-DD); default: train_days before train_end."
    )
    train_end: str | None = Field(
        None, description="Last training day (YYYY-MM-DD); default: so the test window ends on the latest gold day."
    )
    train_days: int = Field(21, ge=2, description="Training days when train_start/train_end are not given.")
    delay_days: int = Field(7, ge=0, description="Days left out between training and test (labels not yet known).")
    test_days: int = Field(7, ge=1)
    validation_days: int = Field(5, ge=1, description="Last training days used to pick the algorithm.")
    gbt_max_iter: int = Field(30, ge=1)
    card_precision_k: int = Field(100, ge=1)

    check_days = field_validator("train_start", "train_end")(check_iso_day)


def resolve_window(config: FraudModelConfig, lake: LakeResource) -> TrainingWindow:
    if config.train_end is None:
        last = latest_day(lake.transaction_features)
        return TrainingWindow.ending_on(last, config.train_days, config.delay_days, config.test_days)
    end = date.fromisoformat(config.train_end)
    start = (
        date.fromisoformat(config.train_start) if config.train_start else end - timedelta(days=config.train_days - 1)
    )
    test_start = end + timedelta(days=config.delay_days + 1)
    return TrainingWindow(start, end, config.delay_days, test_start, test_start + timedelta(days=config.test_days - 1))


def window_metrics(arrays: dict[str, np.ndarray], threshold: float, k: int) -> dict:
    scores, labels = arrays["probability"], arrays["label"].astype(bool)
    flagged = scores >= threshold
    per_scenario = {}
    for scenario in sorted(set(arrays["fraud_scenario"]) - {""}):
        mine = arrays["fraud_scenario"] == scenario
        per_scenario[scenario] = {"frauds": int(mine.sum()), "recall": float(flagged[mine].mean())}
    return {
        "roc_auc": roc_auc(scores, labels),
        "average_precision": average_precision(scores, labels),
        "card_precision_at_100": card_precision_at_k(arrays["date"], arrays["customer_id"], scores, labels, k),
        # A perfect ranking's value: few customers are newly defrauded per day, so this caps the metric.
        "card_precision_at_100_best_possible": card_precision_at_k(
            arrays["date"], arrays["customer_id"], labels.astype(float), labels, k
        ),
        "recall_at_1pct_fpr": recall_at_fpr(scores, labels, 0.01),
        "recall_at_threshold": float(flagged[labels].mean()) if labels.any() else float("nan"),
        "precision_at_threshold": float(labels[flagged].mean()) if flagged.any() else float("nan"),
        "recall_by_scenario": per_scenario,
    }


def _png_markdown(path: Path) -> str:
    return f"![{path.stem}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"


@asset(
    deps=["gold_transaction_features"],
    group_name="model",
    kinds={"spark", "mllib"},
    description=(
        "Spark MLlib fraud model: logistic regression and gradient-boosted trees are fitted on earlier "
        "training days, the better by average precision on the last training days is refitted and "
        "evaluated on a later test window after a label delay. Written to `models/fraud_model/<version>/` "
        "with a Spark-free scorer.json, feature_spec.json, metrics.json, curves, and baseline.json (the "
        "test window's score and feature distributions, which prediction monitoring compares with)."
    ),
)
def fraud_model(
    context: AssetExecutionContext, config: FraudModelConfig, spark: LazyPySparkResource, lake: LakeResource
) -> MaterializeResult:
    session = spark.spark_session
    window = resolve_window(config, lake)
    train = labelled(read_days(session, lake.transaction_features, window.train_days, GOLD_SCHEMA)).cache()
    test = labelled(read_days(session, lake.transaction_features, window.test_days, GOLD_SCHEMA)).cache()
    leaked = train.where(F.col("date") >= window.test_start).count()
    if leaked:
        raise AssertionError(f"{leaked} training rows fall in or after the test window starting {window.test_start}")
    context.log.info(f"training window {window}")

    pool = candidates(config.gbt_max_iter)
    chosen, validation_ap = select_candidate(train, config.validation_days, pool)
    # The best of each family is refitted on all training days and judged on the test window.
    finalists = {}
    for algorithm in ("logistic_regression", "gradient_boosted_trees"):
        family = [c for c in pool if c.algorithm == algorithm]
        best = max(family, key=lambda c: (np.nan_to_num(validation_ap[c.name], nan=-1.0), c.name))
        model = build_pipeline(best).fit(train)
        finalists[algorithm] = (best, model, scored_arrays(model, test))
    _, model, test_scores = finalists[chosen.algorithm]

    validation = train.where(F.col("date") > window.train_end - timedelta(days=config.validation_days))
    threshold = best_f1_threshold(**_scores_and_labels(scored_arrays(model, validation)))
    by_algorithm = {
        algorithm: {"candidate": c.name, **window_metrics(arrays, threshold, config.card_precision_k)}
        for algorithm, (c, _, arrays) in finalists.items()
    }
    metrics = {
        **{k: v for k, v in by_algorithm[chosen.algorithm].items() if k != "candidate"},
        "algorithm": chosen.algorithm,
        "candidate": chosen.name,
        "params": chosen.params,
        "threshold": threshold,
        "threshold_rule": "best F1 on the validation days of the training window",
        "validation_average_precision": validation_ap,
        "by_algorithm": by_algorithm,
        "train_window": [window.train_start.isoformat(), window.train_end.isoformat()],
        "delay_days": window.delay_days,
        "test_window": [window.test_start.isoformat(), window.test_end.isoformat()],
        "train_rows": train.count(),
        "train_frauds": train.where("label = 1").count(),
        "test_rows": len(test_scores["label"]),
        "test_frauds": int(test_scores["label"].sum()),
    }

    registry_root = lake.fraud_model_registry
    version = registry.new_version(
        {"config": config.model_dump(), "window": str(window), "rows": metrics["train_rows"]}
    )
    staging = registry.staging_dir(registry_root, version)
    model.write().save(str(staging / "spark_model"))
    (staging / "scorer.json").write_text(json.dumps(export_scorer(session, model, staging / "spark_model")))
    (staging / "feature_spec.json").write_text(json.dumps(feature_spec(session, lake, window), indent=2))
    (staging / "metrics.json").write_text(json.dumps({"version": version, **metrics}, indent=2, default=str))
    test_features = test.select(*FEATURE_NAMES).toArrow()
    reference = drift.baseline(
        test_scores["probability"],
        {name: test_features.column(name).to_numpy() for name in FEATURE_NAMES},
        threshold,
        metrics["test_window"],
    )
    (staging / "baseline.json").write_text(json.dumps(reference))
    write_curves(
        {
            f"{a} (AP {by_algorithm[a]['average_precision']:.3f})": (s["probability"], s["label"])
            for a, (_, _, s) in finalists.items()
        },
        staging / "roc.png",
        staging / "pr.png",
    )
    final = registry.publish(registry_root, staging, version)
    train.unpersist()
    test.unpersist()
    context.log.info(f"fraud_model {version}: {chosen.name}, test AP {metrics['average_precision']:.3f}")

    return MaterializeResult(
        metadata={
            "version": version,
            "path": MetadataValue.path(str(final)),
            "algorithm": chosen.name,
            "roc_auc": metrics["roc_auc"],
            "average_precision": metrics["average_precision"],
            "card_precision_at_100": metrics["card_precision_at_100"],
            "recall_at_1pct_fpr": metrics["recall_at_1pct_fpr"],
            "threshold": threshold,
            "train_window": " .. ".join(metrics["train_window"]),
            "test_window": " .. ".join(metrics["test_window"]),
            "by_algorithm": MetadataValue.json(by_algorithm),
            "curves": MetadataValue.md(_png_markdown(final / "roc.png") + "\n\n" + _png_markdown(final / "pr.png")),
        }
    )


def _scores_and_labels(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"scores": arrays["probability"], "labels": arrays["label"]}


def feature_spec(session, lake: LakeResource, window: TrainingWindow) -> dict:
    """Ordered features, and whether the optional bronze fields each one needs were present."""
    silver = read_days(session, lake.silver_transactions, window.train_days, SILVER_SCHEMA)
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


class PromotionConfig(Config):
    min_roc_auc: float = Field(0.8, description="A candidate below this test ROC AUC is never promoted.")
    max_average_precision_drop: float = Field(
        0.02, description="How much worse than the champion's test average precision a candidate may be."
    )


def promotion_reasons(candidate: dict, champion: dict | None, config: PromotionConfig) -> list[str]:
    """Why ``candidate`` may not replace ``champion``; empty when it may."""
    reasons = []
    if not candidate["roc_auc"] >= config.min_roc_auc:
        reasons.append(f"ROC AUC {candidate['roc_auc']:.4f} is below the floor {config.min_roc_auc}")
    if champion is not None:
        floor = champion["average_precision"] - config.max_average_precision_drop
        if not candidate["average_precision"] >= floor:
            reasons.append(
                f"average precision {candidate['average_precision']:.4f} is worse than champion "
                f"{champion['version']} ({champion['average_precision']:.4f}) by more than "
                f"{config.max_average_precision_drop}"
            )
    return reasons


@asset(
    deps=["fraud_model"],
    group_name="model",
    kinds={"python"},
    description=(
        "The champion serving uses: models/fraud_model/current, switched atomically to the latest "
        "fraud_model version only when the promotion gate passes."
    ),
    check_specs=[
        AssetCheckSpec(
            "promotion_gate",
            asset="deployed_fraud_model",
            blocking=True,
            description="ROC AUC above the floor and average precision not worse than the champion's beyond tolerance",
        )
    ],
)
def deployed_fraud_model(
    context: AssetExecutionContext, config: PromotionConfig, lake: LakeResource
) -> MaterializeResult:
    event = context.instance.get_latest_materialization_event(AssetKey("fraud_model"))
    if event is None:
        raise ValueError("fraud_model has never been materialized")
    candidate_version = event.asset_materialization.metadata["version"].value
    root = lake.fraud_model_registry
    candidate = registry.read_metrics(root, candidate_version)
    champion_version = registry.current_version(root)
    champion = registry.read_metrics(root, champion_version) if champion_version else None
    if champion_version == candidate_version:
        champion = None  # re-running the same candidate compares it with nothing but the floor
    reasons = promotion_reasons(candidate, champion, config)
    previous = champion_version
    if not reasons:
        previous = registry.promote(root, candidate_version, {"average_precision": candidate["average_precision"]})
        context.log.info(f"promoted {candidate_version} (previous champion: {previous})")
    else:
        context.log.warning(f"kept {champion_version}: " + "; ".join(reasons))
    return MaterializeResult(
        metadata={
            "current": registry.current_version(root) or "none",
            "candidate": candidate_version,
            "promoted": not reasons,
            "previous_champion": previous or "none",
        },
        check_results=[
            AssetCheckResult(
                check_name="promotion_gate",
                passed=not reasons,
                metadata={
                    "candidate": candidate_version,
                    "champion": champion_version or "none",
                    "reasons": MetadataValue.json(reasons),
                    "candidate_roc_auc": candidate["roc_auc"],
                    "candidate_average_precision": candidate["average_precision"],
                },
            )
        ],
    )
