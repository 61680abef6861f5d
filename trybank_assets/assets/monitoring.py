"""Prediction monitoring: the API's prediction log as a table, with score and decision figures."""

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DoubleType, MapType, StringType, StructField, StructType

from trybank_assets.lake_layout import day_dir
from trybank_assets.lib.metadata import materialization_metadata, table_schema
from trybank_assets.lib.spark_tables import overwrite_days
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


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="monitoring",
    kinds={"spark", "parquet"},
    description=(
        "Every prediction the API made (request features, probability, decision, model version), read from "
        "the JSON-lines prediction log under predictions/date=D/ into Parquet under gold/prediction_log/, "
        "with the day's score distribution and decline rate per model version."
    ),
    metadata={"dagster/column_schema": table_schema(PREDICTION_TABLE_SCHEMA)},
)
def prediction_log(context: AssetExecutionContext, spark: LazyPySparkResource, lake: LakeResource) -> MaterializeResult:
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
    written = overwrite_days(logged, lake.prediction_log, days)
    by_model = {
        r["model_version"]: {
            "predictions": r["n"],
            "decline_rate": r["declines"] / r["n"],
            "mean_probability": r["mean_p"],
            "p99_probability": r["p99"],
        }
        for r in logged.groupBy("model_version")
        .agg(
            F.count("*").alias("n"),
            F.sum((F.col("decision") == "decline").cast("int")).alias("declines"),
            F.mean("fraud_probability").alias("mean_p"),
            F.percentile_approx("fraud_probability", 0.99).alias("p99"),
        )
        .collect()
    }
    return MaterializeResult(
        metadata=materialization_metadata(
            logged, lake.prediction_log, sum(written.values()), by_model_version=MetadataValue.json(by_model)
        )
    )
