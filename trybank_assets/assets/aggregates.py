"""Daily aggregates per customer and per terminal: what gold windows and the online store sum up."""

from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    asset,
)
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DateType, LongType, StringType, StructField, StructType

from trybank_assets.assets.silver import SILVER_SCHEMA
from trybank_assets.automation import DAILY_CHAIN, DAILY_FRESHNESS
from trybank_assets.lib.metadata import materialization_metadata, table_schema
from trybank_assets.lib.partition_checks import (
    DailyAssetEvents,
    daily_check,
    evaluations_by_day,
    rows_by_day,
)
from trybank_assets.lib.spark_tables import current_version, read_days, replace_days
from trybank_assets.partitions import daily_partitions, run_days
from trybank_assets.resources.lake import LakeResource


def _long(name: str) -> StructField:
    return StructField(name, LongType(), False)


CUSTOMER_AGGREGATES_SCHEMA = StructType(
    [
        StructField("customer_id", StringType(), False),
        _long("txn_count"),
        _long("amount_cents_sum"),
        _long("amount_cents_sq_sum"),
        _long("international_count"),
        _long("fraud_count"),
        StructField("last_event_us", LongType()),
        StructField("terminal_ids", ArrayType(StringType(), False)),
        StructField("date", DateType(), False),
    ]
)
TERMINAL_AGGREGATES_SCHEMA = StructType(
    [
        StructField("terminal_id", StringType(), False),
        _long("txn_count"),
        _long("amount_cents_sum"),
        _long("fraud_count"),
        StructField("date", DateType(), False),
    ]
)
_DESCRIPTIONS = {
    "txn_count": "Transactions that day.",
    "amount_cents_sum": "Sum of amounts in cents (exact).",
    "amount_cents_sq_sum": "Sum of squared amounts in cents (exact), for the amount z-score.",
    "international_count": "Transactions where merchant and customer country are known and differ.",
    "fraud_count": "Transactions labelled fraud (unlabelled ones count as not fraud).",
    "last_event_us": "Latest event time that day, epoch microseconds UTC.",
    "terminal_ids": "The distinct terminals the customer used that day, sorted (for the first-time-at-terminal flag).",
}


def international_flag() -> Column:
    """Spark twin of ``features.is_international``: unknown countries count as domestic."""
    known = F.col("merchant_country").isNotNull() & F.col("customer_country").isNotNull()
    return (known & (F.col("merchant_country") != F.col("customer_country"))).cast(LongType())


def _fraud_count() -> Column:
    return F.sum(F.coalesce(F.col("is_fraud").cast(LongType()), F.lit(0)))


def customer_daily_aggregates_of(silver: DataFrame) -> DataFrame:
    cents = F.col("amount_cents")
    return (
        silver.groupBy("customer_id", "date")
        .agg(
            F.count("*").alias("txn_count"),
            F.sum(cents).alias("amount_cents_sum"),
            F.sum(cents * cents).alias("amount_cents_sq_sum"),
            F.sum(international_flag()).alias("international_count"),
            _fraud_count().alias("fraud_count"),
            F.max(F.unix_micros("event_time")).alias("last_event_us"),
            F.array_sort(F.collect_set("terminal_id")).alias("terminal_ids"),
        )
        .select(*CUSTOMER_AGGREGATES_SCHEMA.names)
    )


def terminal_daily_aggregates_of(silver: DataFrame) -> DataFrame:
    return (
        silver.groupBy("terminal_id", "date")
        .agg(
            F.count("*").alias("txn_count"),
            F.sum("amount_cents").alias("amount_cents_sum"),
            _fraud_count().alias("fraud_count"),
        )
        .select(*TERMINAL_AGGREGATES_SCHEMA.names)
    )


def _materialize(context, spark, lake, build, table: Path, schema: StructType, check: str) -> DailyAssetEvents:
    session = spark.spark_session
    days: list[date] = run_days(context)
    # The silver version read, pinned, so the check counts the very rows the aggregates were built from.
    silver = read_days(
        session, lake.silver_transactions, days, SILVER_SCHEMA, version=current_version(lake.silver_transactions)
    )
    # The check's Spark jobs run on a second thread, beside the write and while Dagster stores the per-day events.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="aggregates-checks") as checks:
        silver_rows_job = checks.submit(rows_by_day, silver)
        commit = replace_days(build(silver), table, days)
        written = read_days(session, table, days, schema, version=commit.version)
        aggregated_job = checks.submit(_transactions_by_day, written)
        silver_rows = silver_rows_job.result()
        yield MaterializeResult(
            metadata=materialization_metadata(context, written, commit, silver_rows=sum(silver_rows.values()))
        )
        aggregated = aggregated_job.result()
    results = {d: [counts_match_silver(check, aggregated.get(d, 0), silver_rows.get(d, 0))] for d in days}
    yield from evaluations_by_day(context, results)


def _transactions_by_day(aggregates: DataFrame) -> dict[date, int]:
    return {r["date"]: r["txns"] for r in aggregates.groupBy("date").agg(F.sum("txn_count").alias("txns")).collect()}


def counts_match_silver(check: str, aggregated: int, silver_rows: int) -> AssetCheckResult:
    """Every silver transaction counted once in the aggregates: pure, so it is seen to fail on bad figures."""
    return AssetCheckResult(
        check_name=check,
        passed=aggregated == silver_rows,
        description=None
        if aggregated == silver_rows
        else f"{aggregated} aggregated transactions, {silver_rows} in silver",
        metadata={"aggregated_transactions": aggregated, "silver_rows": silver_rows},
    )


_SUMS_CHECK = "counts_match_silver"


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=["silver_transactions"],
    group_name="gold",
    automation_condition=DAILY_CHAIN,
    freshness_policy=DAILY_FRESHNESS,
    code_version="2",
    owners=["team:fraud-data-engineering"],
    tags={"domain": "fraud", "layer": "gold"},
    kinds={"spark", "delta"},
    description=(
        "Per customer and UTC day: counts, exact cent sums and the terminals used. Feeds gold features and the "
        "online store."
    ),
    metadata={"dagster/column_schema": table_schema(CUSTOMER_AGGREGATES_SCHEMA, _DESCRIPTIONS)},
    check_specs=[daily_check(_SUMS_CHECK, "customer_daily_aggregates", "the day's sum of txn_count = its silver rows")],
)
def customer_daily_aggregates(
    context: AssetExecutionContext, spark: LazyPySparkResource, lake: LakeResource
) -> DailyAssetEvents:
    yield from _materialize(
        context,
        spark,
        lake,
        customer_daily_aggregates_of,
        lake.customer_daily_aggregates,
        CUSTOMER_AGGREGATES_SCHEMA,
        _SUMS_CHECK,
    )


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=["silver_transactions"],
    group_name="gold",
    automation_condition=DAILY_CHAIN,
    freshness_policy=DAILY_FRESHNESS,
    code_version="1",
    owners=["team:fraud-data-engineering"],
    tags={"domain": "fraud", "layer": "gold"},
    kinds={"spark", "delta"},
    description=(
        "Per terminal and UTC day: transactions, amounts and labelled fraud. Feeds the label-delayed terminal risk."
    ),
    metadata={"dagster/column_schema": table_schema(TERMINAL_AGGREGATES_SCHEMA, _DESCRIPTIONS)},
    check_specs=[daily_check(_SUMS_CHECK, "terminal_daily_aggregates", "the day's sum of txn_count = its silver rows")],
)
def terminal_daily_aggregates(
    context: AssetExecutionContext, spark: LazyPySparkResource, lake: LakeResource
) -> DailyAssetEvents:
    yield from _materialize(
        context,
        spark,
        lake,
        terminal_daily_aggregates_of,
        lake.terminal_daily_aggregates,
        TERMINAL_AGGREGATES_SCHEMA,
        _SUMS_CHECK,
    )
