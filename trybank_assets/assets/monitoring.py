"""Prediction monitoring: the API's prediction log as a table, and alerts when what the model sees
or says drifts from the window it was judged on."""

import math
from collections import defaultdict
from datetime import date

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster_pyspark import LazyPySparkResource
from pydantic import Field
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DoubleType, MapType, StringType, StructField, StructType

from trybank_assets.automation import PREDICTION_MONITORING
from trybank_assets.lake_layout import day_dir
from trybank_assets.lib.metadata import materialization_metadata, table_schema
from trybank_assets.lib.partition_checks import DailyAssetEvents, daily_check, evaluations_by_day
from trybank_assets.lib.spark_tables import read_days, replace_days
from trybank_assets.model import drift, registry
from trybank_assets.partitions import daily_partitions, run_days
from trybank_assets.resources.lake import LakeResource

PREDICTION_LOG_SCHEMA = StructType(
    [
        StructField("transaction_id", StringType()),
        StructField("event_time", StringType()),
        StructField("predicted_at", StringType()),
        StructField("model_version", StringType()),
        StructField("fraud_probability", DoubleType()),
        StructField("threshold", DoubleType()),
        StructField("decision", StringType()),
        StructField("features", MapType(StringType(), DoubleType())),
    ]
)
PREDICTION_TABLE_SCHEMA = StructType([*PREDICTION_LOG_SCHEMA.fields, StructField("date", DateType(), False)])


class PredictionMonitoringConfig(Config):
    max_psi: float = Field(0.25, description="Population stability index above which a score or feature drifts.")
    max_decline_rate_ratio: float = Field(
        3.0, description="How many times above or below the model's test-window decline rate a day may be."
    )
    min_predictions: int = Field(200, description="Days with fewer predictions of a model version are not judged.")


_CHECKS = {
    "score_drift": "the served score distribution stays near the model's test window (PSI)",
    "feature_drift": "each served feature's distribution stays near the model's test window (PSI)",
    "decline_rate": "the share of declines stays within a band around the model's test-window rate",
}


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=["fraud_model"],  # each model version's baseline.json
    group_name="monitoring",
    automation_condition=PREDICTION_MONITORING,
    code_version="1",
    owners=["team:fraud-data-science"],
    tags={"domain": "fraud", "layer": "monitoring"},
    kinds={"spark", "delta"},
    description=(
        "Every prediction the API made (request features, probability, decision, model version), read from "
        "the JSON-lines prediction log under predictions/date=D/ into the Delta table gold/prediction_log, "
        "with the day's score distribution and decline rate per model version, and drift checks against "
        "the baseline each model version recorded from its test window (baseline.json in the registry)."
    ),
    metadata={"dagster/column_schema": table_schema(PREDICTION_TABLE_SCHEMA)},
    check_specs=[daily_check(name, "prediction_log", d) for name, d in _CHECKS.items()],
)
def prediction_log(
    context: AssetExecutionContext, config: PredictionMonitoringConfig, spark: LazyPySparkResource, lake: LakeResource
) -> DailyAssetEvents:
    session = spark.spark_session
    days = run_days(context)
    paths = [str(day_dir(lake.predictions, d)) for d in days if day_dir(lake.predictions, d).is_dir()]
    if paths:
        logged = (
            session.read.schema(PREDICTION_LOG_SCHEMA)
            .option("pathGlobFilter", "*.jsonl")
            .json(paths)
            .withColumn("date", F.to_date(F.col("event_time").try_cast("timestamp")))
            .dropDuplicates(["transaction_id", "model_version", "predicted_at"])
        )
    else:
        logged = session.createDataFrame([], PREDICTION_TABLE_SCHEMA)
    commit = replace_days(logged, lake.prediction_log, days)
    table = read_days(session, lake.prediction_log, days, PREDICTION_TABLE_SCHEMA, version=commit.version)
    by_model = {
        r["model_version"]: {
            "predictions": r["n"],
            "decline_rate": r["declines"] / r["n"],
            "mean_probability": r["mean_p"],
            "p99_probability": r["p99"],
        }
        for r in table.groupBy("model_version")
        .agg(
            F.count("*").alias("n"),
            F.sum((F.col("decision") == "decline").cast("int")).alias("declines"),
            F.mean("fraud_probability").alias("mean_p"),
            F.percentile_approx("fraud_probability", 0.99).alias("p99"),
        )
        .collect()
    }
    groups = day_groups(session, table, lake, config)
    judged = [g for g in groups if g["judged"]]
    worst_score = max((g["score_psi"] for g in judged), default=None)
    yield MaterializeResult(
        metadata=materialization_metadata(
            context,
            table,
            commit,
            by_model_version=MetadataValue.json(by_model),
            drift=MetadataValue.md(drift_table(groups)),
            **({"score_psi": worst_score} if worst_score is not None else {}),
        )
    )
    yield from evaluations_by_day(
        context, {d: drift_checks([g for g in groups if g["date"] == d.isoformat()], config) for d in days}
    )


def day_groups(
    session: SparkSession, table: DataFrame, lake: LakeResource, config: PredictionMonitoringConfig
) -> list[dict]:
    """Per day and model version: predictions, declines, and PSI of the score and each feature
    against that version's baseline. Bins are counted in Spark, so only counts reach the driver."""
    totals = (
        table.groupBy("date", "model_version")
        .agg(F.count("*").alias("n"), F.sum((F.col("decision") == "decline").cast("int")).alias("declines"))
        .collect()
    )
    versions = {r["model_version"] for r in totals}
    baselines = {v: b for v in versions if (b := registry.read_baseline(lake.fraud_model_registry, v))}
    counts: dict[tuple[date, str, str], dict[int, int]] = defaultdict(dict)
    if baselines:
        edges = session.createDataFrame(
            [(v, name, bins["edges"]) for v, b in baselines.items() for name, bins in b["series"].items()],
            "model_version string, series string, edges array<double>",
        )
        values = F.map_concat("features", F.create_map(F.lit(drift.SCORE), F.col("fraud_probability")))
        long = table.select("date", "model_version", F.explode(values).alias("series", "value"))
        binned = long.join(F.broadcast(edges), ["model_version", "series"]).withColumn(
            "bin", F.size(F.filter("edges", lambda e: e < F.col("value")))
        )
        for r in binned.groupBy("date", "model_version", "series", "bin").count().collect():
            counts[(r["date"], r["model_version"], r["series"])][r["bin"]] = r["count"]

    groups = []
    for r in sorted(totals, key=lambda r: (r["date"], r["model_version"])):
        version, baseline = r["model_version"], baselines.get(r["model_version"])
        group = {
            "date": r["date"].isoformat(),
            "model_version": version,
            "predictions": r["n"],
            "declines": r["declines"],
            "decline_rate": r["declines"] / r["n"],
            "judged": baseline is not None and r["n"] >= config.min_predictions,
        }
        if baseline is not None:
            psi = {
                name: drift.population_stability(bins["shares"], counts[(r["date"], version, name)])
                for name, bins in baseline["series"].items()
                if counts[(r["date"], version, name)]
            }
            group["baseline_decline_rate"] = baseline["decline_rate"]
            group["baseline_rows"] = baseline["rows"]
            group["score_psi"] = psi.pop(drift.SCORE)
            group["feature_psi"] = dict(sorted(psi.items(), key=lambda kv: -kv[1]))
        groups.append(group)
    return groups


def decline_rate_band(baseline_rate: float, baseline_rows: int, n: int, ratio: float) -> tuple[float, float]:
    """``ratio`` times below or above the baseline rate, widened by three binomial standard errors of
    a day of ``n`` predictions. A test window without declines only says the rate is under about
    one in ``baseline_rows``, so that is the rate the band is built on."""
    rate = max(baseline_rate, 1 / baseline_rows)
    slack = 3 * math.sqrt(rate * (1 - rate) / n)
    return max(rate / ratio - slack, 0.0), min(rate * ratio + slack, 1.0)


def drift_checks(groups: list[dict], config: PredictionMonitoringConfig) -> list[AssetCheckResult]:
    """One result per check over every judged (day, model version); the metadata holds the worst
    figure, which the UI plots across materializations."""
    judged = [g for g in groups if g["judged"]]
    unjudged = [
        f"{g['date']} {g['model_version']} ("
        + (f"{g['predictions']} predictions" if "score_psi" in g else "no baseline.json")
        + ")"
        for g in groups
        if not g["judged"]
    ]
    scores, features, declines = [], [], []
    for g in judged:
        where = f"{g['date']} model {g['model_version']}"
        if g["score_psi"] > config.max_psi:
            scores.append(f"{where}: score PSI {g['score_psi']:.3f}")
        drifted = [f"{name} {v:.3f}" for name, v in g["feature_psi"].items() if v > config.max_psi]
        if drifted:
            features.append(f"{where}: {', '.join(drifted)}")
        low, high = decline_rate_band(
            g["baseline_decline_rate"], g["baseline_rows"], g["predictions"], config.max_decline_rate_ratio
        )
        if not low <= g["decline_rate"] <= high:
            declines.append(
                f"{where}: {g['decline_rate']:.2%} declined, expected {low:.2%}..{high:.2%} "
                f"(test window {g['baseline_decline_rate']:.2%})"
            )
    note = f"; not judged: {', '.join(unjudged)}" if unjudged else ""

    def result(name: str, problems: list[str], ok: str, **figures) -> AssetCheckResult:
        return AssetCheckResult(
            check_name=name,
            passed=not problems,
            severity=AssetCheckSeverity.WARN,
            description=("; ".join(problems) if problems else ok) + note,
            metadata={"judged": len(judged), **figures},
        )

    if not judged:
        return [result(name, [], "no day with enough predictions of a model version") for name in _CHECKS]
    worst_score = max(g["score_psi"] for g in judged)
    worst_feature, worst_feature_psi = max(
        ((name, v) for g in judged for name, v in g["feature_psi"].items()),
        key=lambda item: item[1],
        default=("none logged", 0.0),
    )
    rates = [g["decline_rate"] for g in judged]
    limit = f"(limit {config.max_psi}) on {len(judged)} day(s) and model version(s)"
    return [
        result("score_drift", scores, f"score PSI {worst_score:.3f} {limit}", worst_score_psi=worst_score),
        result(
            "feature_drift",
            features,
            f"largest feature PSI {worst_feature_psi:.3f}, {worst_feature} {limit}",
            worst_feature_psi=worst_feature_psi,
            worst_feature=worst_feature,
        ),
        result(
            "decline_rate",
            declines,
            f"decline rate {min(rates):.2%}..{max(rates):.2%}, within its band",
            max_decline_rate=max(rates),
            min_decline_rate=min(rates),
        ),
    ]


def drift_table(groups: list[dict]) -> str:
    lines = [
        "| day | model version | predictions | decline rate | score PSI | top feature PSI |",
        "|---|---|---|---|---|---|",
    ]
    for g in groups:
        top = ", ".join(f"{n} {v:.3f}" for n, v in list(g.get("feature_psi", {}).items())[:3]) or "no baseline"
        score = f"{g['score_psi']:.3f}" if "score_psi" in g else "-"
        lines.append(
            f"| {g['date']} | {g['model_version']} | {g['predictions']} | {g['decline_rate']:.2%} | {score} | {top} |"
        )
    return "\n".join(lines)
