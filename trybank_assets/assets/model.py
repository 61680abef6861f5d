"""The fraud model: trained on earlier days, judged on later ones, promoted only through a gate."""

import base64
from pathlib import Path

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

from trybank_assets.assets.gold import GOLD_SCHEMA
from trybank_assets.assets.silver import SILVER_SCHEMA
from trybank_assets.automation import AFTER_PARENTS, WEEKLY_RETRAINING
from trybank_assets.lib.spark_tables import day_range, read_days
from trybank_assets.model import registry
from trybank_assets.model.trainer import THRESHOLD_RULES, TrainingSpec, feature_availability, train_fraud_model
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
    validation_days: int = Field(3, ge=1, description="Days of each prequential validation fold.")
    validation_folds: int = Field(
        3, ge=1, description="Consecutive validation folds inside the training window, each after the delay."
    )
    gbt_max_iter: int = Field(30, ge=1)
    card_precision_k: int = Field(100, ge=1)
    threshold_rule: str = Field(
        "best_f1", description=f"Which threshold decides: one of {THRESHOLD_RULES}; both are in metrics.json."
    )
    missed_fraud_cost_share: float = Field(
        1.0, ge=0, description="Expected-cost threshold: a missed fraud costs this share of its amount."
    )
    review_cost: float = Field(5.0, ge=0, description="Expected-cost threshold: what reviewing one alert costs.")

    check_days = field_validator("train_start", "train_end")(check_iso_day)


def _png_markdown(path: Path) -> str:
    return f"![{path.stem}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"


@asset(
    deps=["gold_transaction_features"],
    group_name="model",
    automation_condition=WEEKLY_RETRAINING,
    code_version="2",
    owners=["team:fraud-data-science"],
    tags={"domain": "fraud", "layer": "model"},
    kinds={"spark", "mllib"},
    description=(
        "Spark MLlib fraud model: logistic regression and gradient-boosted trees compared by prequential "
        "validation inside the training window; the best of each family is refitted, calibrated (Platt) and "
        "judged on a later test window after a label delay, under the literature's protocol (known "
        "compromised cards left out). Written to `models/fraud_model/VERSION/` with a Spark-free scorer.json, "
        "every finalist under finalists/, feature_spec.json, metrics.json, curves, and baseline.json (the "
        "test window's score and feature distributions, which prediction monitoring compares with)."
    ),
)
def fraud_model(
    context: AssetExecutionContext, config: FraudModelConfig, spark: LazyPySparkResource, lake: LakeResource
) -> MaterializeResult:
    session = spark.spark_session
    gold_days = day_range(session, lake.transaction_features)
    trained = train_fraud_model(
        session,
        read_gold=lambda days: read_days(session, lake.transaction_features, days, GOLD_SCHEMA),
        gold_days=gold_days,
        registry_root=lake.fraud_model_registry,
        spec=TrainingSpec(**config.model_dump()),
        feature_spec=lambda window: feature_availability(
            read_days(session, lake.silver_transactions, window.train_days, SILVER_SCHEMA)
        ),
        log=context.log.info,
    )
    metrics = trained.metrics
    context.log.info(
        f"fraud_model {trained.version}: {metrics['candidate']}, protocol AP {metrics['average_precision']:.3f}"
    )
    return MaterializeResult(
        metadata={
            "version": trained.version,
            "path": MetadataValue.path(str(trained.path)),
            "algorithm": metrics["candidate"],
            "roc_auc": metrics["roc_auc"],
            "average_precision": metrics["average_precision"],
            "card_precision_at_100": metrics["card_precision_at_100"],
            "recall_at_1pct_fpr": metrics["recall_at_1pct_fpr"],
            "all_rows_average_precision": metrics["all_rows"]["average_precision"],
            "threshold": metrics["threshold"],
            "threshold_rule": metrics["threshold_rule"],
            "train_window": " .. ".join(metrics["train_window"]),
            "test_window": " .. ".join(metrics["test_window"]),
            "by_algorithm": MetadataValue.json(
                {a: {"candidate": m["candidate"], **m["protocol"]} for a, m in metrics["by_algorithm"].items()}
            ),
            "stage_seconds": MetadataValue.json({k: round(v, 1) for k, v in trained.stage_seconds.items()}),
            "curves": MetadataValue.md(
                _png_markdown(trained.path / "roc.png") + "\n\n" + _png_markdown(trained.path / "pr.png")
            ),
        }
    )


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
    automation_condition=AFTER_PARENTS,
    code_version="1",
    owners=["team:fraud-data-science"],
    tags={"domain": "fraud", "layer": "model"},
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
