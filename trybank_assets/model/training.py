"""Spark MLlib training: pipelines, time-based splits, model selection and the portable export."""

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier, LogisticRegression, LogisticRegressionModel
from pyspark.ml.feature import StandardScaler, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from trybank_assets.features import FEATURE_NAMES
from trybank_assets.model.evaluation import average_precision


@dataclass(frozen=True)
class TrainingWindow:
    train_start: date
    train_end: date
    delay_days: int
    test_start: date
    test_end: date

    def __post_init__(self) -> None:
        if not self.train_start <= self.train_end < self.test_start <= self.test_end:
            raise ValueError(f"train and test windows overlap or are empty: {self}")
        gap = (self.test_start - self.train_end).days - 1
        if gap < self.delay_days:
            raise ValueError(f"only {gap} day(s) between training and test, {self.delay_days} required")

    @classmethod
    def ending_on(cls, last_day: date, train_days: int, delay_days: int, test_days: int) -> "TrainingWindow":
        test_start = last_day - timedelta(days=test_days - 1)
        train_end = test_start - timedelta(days=delay_days + 1)
        return cls(train_end - timedelta(days=train_days - 1), train_end, delay_days, test_start, last_day)

    @property
    def train_days(self) -> list[date]:
        return _days(self.train_start, self.train_end)

    @property
    def test_days(self) -> list[date]:
        return _days(self.test_start, self.test_end)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


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


def build_pipeline(candidate: Candidate) -> Pipeline:
    assembler = VectorAssembler(inputCols=list(FEATURE_NAMES), outputCol="features")
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


def labelled(gold: DataFrame) -> DataFrame:
    """Rows with a known label, with the label as 0/1 and a class-balancing weight, in a
    deterministic partitioning and order."""
    rows = (
        gold.where(F.col("is_fraud").isNotNull())
        .withColumn("label", F.col("is_fraud").cast("double"))
        .repartition(TRAINING_PARTITIONS, "transaction_id")
        .sortWithinPartitions("transaction_id")
    )
    counts = {r["label"]: r["count"] for r in rows.groupBy("label").count().collect()}
    positives, negatives = counts.get(1.0, 0), counts.get(0.0, 0)
    if not positives or not negatives:
        raise ValueError(f"training needs both classes, found {positives} fraud and {negatives} legitimate rows")
    return rows.withColumn("weight", F.when(F.col("label") == 1.0, negatives / positives).otherwise(1.0))


def probabilities(model: PipelineModel, df: DataFrame, *extra: str) -> DataFrame:
    return model.transform(df).select("transaction_id", *extra, vector_to_array("probability")[1].alias("probability"))


def scored_arrays(model: PipelineModel, df: DataFrame) -> dict[str, np.ndarray]:
    rows = probabilities(model, df, "customer_id", "date", "label", "fraud_scenario").collect()
    return {
        "probability": np.array([r["probability"] for r in rows], dtype=float),
        "label": np.array([r["label"] for r in rows], dtype=float),
        "customer_id": np.array([r["customer_id"] for r in rows]),
        "date": np.array([r["date"] for r in rows]),
        "fraud_scenario": np.array([r["fraud_scenario"] or "" for r in rows]),
    }


def select_candidate(
    train: DataFrame, validation_days: int, pool: list[Candidate]
) -> tuple[Candidate, dict[str, float]]:
    """Fit each candidate on the earlier training days, pick the best average precision on the later ones."""
    last = train.agg(F.max("date")).first()[0]
    split = last - timedelta(days=validation_days - 1)
    fit_part, validation = train.where(F.col("date") < split), train.where(F.col("date") >= split)
    scores = {}
    for candidate in pool:
        model = build_pipeline(candidate).fit(fit_part)
        arrays = scored_arrays(model, validation)
        scores[candidate.name] = average_precision(arrays["probability"], arrays["label"])
    best = max(pool, key=lambda c: (np.nan_to_num(scores[c.name], nan=-1.0), c.name))
    return best, scores


def export_scorer(spark: SparkSession, model: PipelineModel, saved_at: Path) -> dict:
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
    }
