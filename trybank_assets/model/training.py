"""Spark MLlib training: pipelines, prequential model selection and the portable export."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier, LogisticRegression, LogisticRegressionModel
from pyspark.ml.feature import StandardScaler, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from trybank_assets.features import FEATURE_NAMES
from trybank_assets.model.evaluation import average_precision, protocol_rows
from trybank_assets.model.windows import ValidationFold


@dataclass(frozen=True)
class Candidate:
    name: str
    algorithm: str  # "logistic_regression" | "gradient_boosted_trees"
    params: dict


def candidates(gbt_max_iter: int) -> list[Candidate]:
    return [
        Candidate("lr_l2_0.001", "logistic_regression", {"regParam": 0.001}),
        Candidate("lr_l2_0.01", "logistic_regression", {"regParam": 0.01}),
        Candidate("gbt_depth3", "gradient_boosted_trees", {"maxDepth": 3, "maxIter": gbt_max_iter}),
        Candidate("gbt_depth5", "gradient_boosted_trees", {"maxDepth": 5, "maxIter": gbt_max_iter}),
    ]


def build_pipeline(candidate: Candidate, features: Sequence[str] = FEATURE_NAMES) -> Pipeline:
    """``features`` other than all of them are for ablations; the portable export assumes all."""
    assembler = VectorAssembler(inputCols=list(features), outputCol="features")
    if candidate.algorithm == "logistic_regression":
        scaler = StandardScaler(inputCol="features", outputCol="scaled", withMean=False, withStd=True)
        model = LogisticRegression(
            featuresCol="scaled",
            labelCol="label",
            weightCol="weight",
            maxIter=200,
            standardization=False,
            **candidate.params,
        )
        return Pipeline(stages=[assembler, scaler, model])
    model = GBTClassifier(
        featuresCol="features", labelCol="label", weightCol="weight", stepSize=0.1, seed=7, **candidate.params
    )
    return Pipeline(stages=[assembler, model])


# Fixed, so a model depends on its rows only: not on the order Spark happened to write them in,
# nor on the cluster's default parallelism (GBT's split sampling and LR's aggregation follow
# the partitioning).
TRAINING_PARTITIONS = 4


def labelled_rows(gold: DataFrame) -> DataFrame:
    """Rows with a known label, with the label as 0/1, in a deterministic partitioning and order.

    A row's partition depends on its id alone and each partition is sorted, so the rows of some days
    filtered from these are the rows ``labelled_rows`` gives for those days, in the same partitions
    and order: one shuffle serves every fold of a run.
    """
    return (
        gold.where(F.col("is_fraud").isNotNull())
        .withColumn("label", F.col("is_fraud").cast("double"))
        .repartition(TRAINING_PARTITIONS, "transaction_id")
        .sortWithinPartitions("transaction_id")
    )


def labelled(gold: DataFrame) -> DataFrame:
    """``labelled_rows`` of ``gold`` with their class-balancing weight."""
    return class_weighted(labelled_rows(gold))


def class_weighted(rows: DataFrame) -> DataFrame:
    """``labelled_rows`` with a class-balancing weight."""
    counts = {r["label"]: r["count"] for r in rows.groupBy("label").count().collect()}
    positives, negatives = counts.get(1.0, 0), counts.get(0.0, 0)
    if not positives or not negatives:
        raise ValueError(f"training needs both classes, found {positives} fraud and {negatives} legitimate rows")
    return rows.withColumn("weight", F.when(F.col("label") == 1.0, negatives / positives).otherwise(1.0))


def margin_column(model: PipelineModel) -> F.Column:
    """The model's log-odds of fraud: LR's linear term, or twice a logistic-loss GBT's margin."""
    raw = vector_to_array("rawPrediction")[1]
    return raw if isinstance(model.stages[-1], LogisticRegressionModel) else raw * 2.0


def probabilities(model: PipelineModel, df: DataFrame, *extra: str, calibration: dict | None = None) -> DataFrame:
    """Each row's (calibrated) fraud probability, computed as the portable scorer computes it."""
    a, b = (calibration["a"], calibration["b"]) if calibration else (1.0, 0.0)
    margin = margin_column(model)
    return model.transform(df).select(
        "transaction_id",
        *extra,
        margin.alias("margin"),
        (F.lit(1.0) / (F.lit(1.0) + F.exp(-(F.lit(a) * margin + F.lit(b))))).alias("probability"),
    )


SCORED_COLUMNS = ("customer_id", "date", "label", "fraud_scenario", "amount")


def scored_arrays(model: PipelineModel, df: DataFrame, calibration: dict | None = None) -> dict[str, np.ndarray]:
    table = probabilities(model, df, *SCORED_COLUMNS, calibration=calibration).toArrow()
    arrays = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    arrays["fraud_scenario"] = np.array([s or "" for s in arrays["fraud_scenario"]])
    arrays["date"] = np.array(table.column("date").to_pylist())
    return arrays


@dataclass(frozen=True)
class FoldResult:
    fold: ValidationFold
    average_precision: float  # under the protocol: known compromised customers left out
    scored: dict[str, np.ndarray]


def _judged(
    candidate: Candidate,
    fold: ValidationFold,
    fit_part: DataFrame,
    validation: DataFrame,
    first_fraud_day: dict,
    delay_days: int,
) -> FoldResult:
    scored = scored_arrays(build_pipeline(candidate).fit(fit_part), validation)
    judged = protocol_rows(scored, first_fraud_day, delay_days)
    return FoldResult(fold, average_precision(judged["probability"], judged["label"]), scored)


def prequential_validation(
    labelled_days: Callable[[Sequence[date]], DataFrame],
    folds: list[ValidationFold],
    pool: list[Candidate],
    first_fraud_day: dict,
    delay_days: int,
) -> dict[str, list[FoldResult]]:
    """Every candidate fitted on each fold's earlier days and judged on its validation days;
    ``labelled_days`` gives the ``labelled_rows`` of some days."""
    results: dict[str, list[FoldResult]] = {c.name: [] for c in pool}
    for fold in folds:
        try:
            fit_part = class_weighted(labelled_days(fold.fit_days))
            validation = class_weighted(labelled_days(fold.valid_days))
        except ValueError:
            continue  # a fold without both classes judges nothing
        for candidate in pool:
            results[candidate.name].append(_judged(candidate, fold, fit_part, validation, first_fraud_day, delay_days))
    return results


def mean_fold_ap(results: list[FoldResult]) -> float:
    values = [r.average_precision for r in results if not np.isnan(r.average_precision)]
    return float(np.mean(values)) if values else float("nan")


def best_of(pool: list[Candidate], results: dict[str, list[FoldResult]]) -> Candidate:
    return max(pool, key=lambda c: (np.nan_to_num(mean_fold_ap(results[c.name]), nan=-1.0), c.name))


def export_scorer(spark: SparkSession, model: PipelineModel, saved_at: Path, calibration: dict | None) -> dict:
    """The portable scoring artifact (``scorer.json``) of a fitted pipeline saved at ``saved_at``."""
    final = model.stages[-1]
    if isinstance(final, LogisticRegressionModel):
        std = model.stages[1].std.toArray()
        inverse = np.where(std != 0.0, 1.0 / np.where(std != 0.0, std, 1.0), 0.0)
        return {
            "kind": "logistic_regression",
            "features": list(FEATURE_NAMES),
            "coefficients": (final.coefficients.toArray() * inverse).tolist(),
            "intercept": float(final.intercept),
            "calibration": calibration,
        }
    data = spark.read.parquet(str(saved_at / "stages" / f"1_{final.uid}" / "data"))
    trees = []
    for tree_id in range(final.getNumTrees):
        nodes = sorted((r["nodeData"] for r in data.where(F.col("treeID") == tree_id).collect()), key=lambda n: n["id"])
        leaf = [n["leftChild"] < 0 for n in nodes]
        trees.append(
            {
                "feature": [
                    -1 if is_leaf else n["split"]["featureIndex"] for n, is_leaf in zip(nodes, leaf, strict=True)
                ],
                "threshold": [
                    0.0 if is_leaf else float(n["split"]["leftCategoriesOrThreshold"][0])
                    for n, is_leaf in zip(nodes, leaf, strict=True)
                ],
                "left": [n["leftChild"] for n in nodes],
                "right": [n["rightChild"] for n in nodes],
                "value": [float(n["prediction"]) for n in nodes],
            }
        )
    return {
        "kind": "gradient_boosted_trees",
        "features": list(FEATURE_NAMES),
        "trees": trees,
        "weights": [float(w) for w in final.treeWeights],
        "calibration": calibration,
    }
