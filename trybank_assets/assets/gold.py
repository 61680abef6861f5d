"""Gold: point-in-time features, one row per silver transaction, from events strictly before it."""

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from functools import partial, reduce

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from trybank_assets.assets.aggregates import (
    CUSTOMER_AGGREGATES_SCHEMA,
    TERMINAL_AGGREGATES_SCHEMA,
    international_flag,
)
from trybank_assets.assets.history_arrays import (
    CUSTOMER_AGGREGATE_COLUMNS,
    RANGE,
    TERMINAL_AGGREGATE_COLUMNS,
    range_features,
)
from trybank_assets.assets.silver import SILVER_SCHEMA
from trybank_assets.automation import DAILY_CHAIN, DAILY_FRESHNESS
from trybank_assets.features import (
    FEATURE_NAMES,
    FEATURES,
    LABEL_DELAY_DAYS,
    LOOKBACK_DAYS,
    TERMINAL_HABIT_DAYS,
    TERMINAL_LOOKBACK_DAYS,
)
from trybank_assets.lake_layout import earliest_day
from trybank_assets.lib.metadata import materialization_metadata, table_schema
from trybank_assets.lib.partition_checks import (
    EPOCH,
    DailyAssetEvents,
    daily_check,
    evaluations_by_day,
    repeated_ids_by_day,
    rows_by_day,
)
from trybank_assets.lib.spark_tables import current_version, read_commit, read_days, replace_days
from trybank_assets.partitions import daily_partitions, run_days
from trybank_assets.resources.lake import LakeResource

GOLD_SCHEMA = StructType(
    [
        StructField("transaction_id", StringType(), False),
        StructField("customer_id", StringType(), False),
        StructField("terminal_id", StringType(), False),
        StructField("event_time", TimestampType(), False),
        StructField("is_fraud", BooleanType()),
        StructField("fraud_scenario", StringType()),
        *[StructField(name, DoubleType(), False) for name in FEATURE_NAMES],
        StructField("date", DateType(), False),
    ]
)


# A range of days gets the aggregate rows of its look-back days besides its transactions: more, shorter ranges keep
# more cores busy but copy more look-back rows ((days + 37) / days times the terminals' rows of a range).
MIN_RANGE_DAYS = 7


def day_ranges(days: int, parallelism: int) -> int:
    """Into how many ranges a run of ``days`` days is split: one per shuffle partition, none shorter than
    ``MIN_RANGE_DAYS`` days (a short run is one range)."""
    return max(1, min(parallelism, days // MIN_RANGE_DAYS))


def _range_labels(spark: SparkSession, ranges: int) -> list[int]:
    """A label per range such that ``repartition(ranges, label)`` sends each range to a partition of its own: Spark
    hashes the column (Murmur3, as ``F.hash`` does), so consecutive numbers would often share one."""
    candidates = spark.range(64 * ranges).select(F.col("id").cast("int").alias("label"))
    labels: dict[int, int] = {}
    for row in candidates.select("label", F.pmod(F.hash("label"), F.lit(ranges)).alias("partition")).collect():
        labels.setdefault(row["partition"], row["label"])
    # Should no candidate reach a partition, its range gets a negative label: still its own, in a shared partition.
    return [labels.get(i, -1 - i) for i in range(ranges)]


def transaction_features(
    silver: DataFrame,
    customer_aggregates: DataFrame,
    terminal_aggregates: DataFrame,
    days: list[date],
    ranges: int | None = None,
) -> DataFrame:
    """Gold rows for every transaction in ``silver``, of the consecutive ``days``.

    ``customer_aggregates`` must cover the 30 days before each silver day and ``terminal_aggregates`` the 37 days
    before; days they lack count as no activity. The days are split into ``ranges`` consecutive ranges (by default
    ``day_ranges``): one shuffle sends each range's transactions, the aggregate rows of its look-back days and the
    terminals its customers used before it to one partition, whose figures numpy computes at once
    (``history_arrays``). Each day's gold rows come out of one partition, ready to be written as they are.
    """
    spark = silver.sparkSession
    ranges = ranges or day_ranges(len(days), int(spark.conf.get("spark.sql.shuffle.partitions")))
    per_range = -(-len(days) // ranges)
    ranges = -(-len(days) // per_range)
    first = (days[0] - date(1970, 1, 1)).days
    labels = F.array(*[F.lit(label) for label in _range_labels(spark, ranges)])

    def range_of(day: Column) -> Column:
        return F.floor((F.unix_date(day) - F.lit(first)) / F.lit(per_range))

    def label(index: Column) -> Column:
        return F.element_at(labels, index.cast("int") + 1)

    def to_ranges(rows: DataFrame, first_range: Column, last_range: Column) -> DataFrame:
        """Each row once for each range from ``first_range`` to ``last_range`` of the run's (none when empty)."""
        first_range, last_range = F.greatest(first_range, F.lit(0)), F.least(last_range, F.lit(ranges - 1))
        # The range indexes exploded, then labelled: a lambda (F.transform) inside the explode has no generated
        # code, which took the whole explode out of Spark's code generation (~9% of gold's task time on 183 days).
        indexes = rows.where(first_range <= last_range).withColumn(
            RANGE, F.explode(F.sequence(first_range, last_range))
        )
        return indexes.withColumn(RANGE, label(F.col(RANGE)))

    def after(n: int) -> Column:
        return F.date_add("date", n)

    tx = silver.select(
        "transaction_id",
        "customer_id",
        "terminal_id",
        "is_fraud",
        "fraud_scenario",
        "date",
        "amount_cents",
        F.unix_micros("event_time").alias("event_us"),
        international_flag().alias("international"),
        label(range_of(F.col("date"))).alias(RANGE),
    )
    terminal = to_ranges(
        terminal_aggregates.select("terminal_id", "date", *TERMINAL_AGGREGATE_COLUMNS),
        range_of(after(1)),
        range_of(after(TERMINAL_LOOKBACK_DAYS)),
    )
    customer = to_ranges(
        customer_aggregates.select("customer_id", "date", *CUSTOMER_AGGREGATE_COLUMNS),
        range_of(after(1)),
        range_of(after(LOOKBACK_DAYS)),
    )
    # The terminals a customer used before a range, for the ranges starting within TERMINAL_HABIT_DAYS after the
    # day: narrow rows, not the aggregates' arrays (Spark's Arrow writer is slow on arrays). Within the range the
    # transactions themselves tell.
    terminals_used = to_ranges(
        customer_aggregates.select("customer_id", "date", "terminal_ids"),
        range_of(F.col("date")) + 1,
        range_of(after(TERMINAL_HABIT_DAYS)),
    ).select("customer_id", F.explode("terminal_ids").alias("terminal_id"), "date", RANGE)
    rows = reduce(
        lambda rows, more: rows.unionByName(more, allowMissingColumns=True), (terminal, customer, terminals_used), tx
    )
    return rows.repartition(ranges, RANGE).mapInArrow(partial(range_features, names=GOLD_SCHEMA.names), GOLD_SCHEMA)


def not_finite(feature: str) -> Column:
    return F.isnan(feature) | F.col(feature).isNull()


def non_finite_by_day(gold: DataFrame) -> dict[date, dict[str, int]]:
    """Per day, the features holding null or NaN values and how many: only days and features that have some."""
    counts = gold.groupBy("date").agg(*[F.count_if(not_finite(n)).alias(n) for n in FEATURE_NAMES]).collect()
    by_day = {r["date"]: {n: r[n] for n in FEATURE_NAMES if r[n]} for r in counts}
    return {d: bad for d, bad in by_day.items() if bad}


def gold_check_results(
    rows: int, repeated_ids: int, silver_rows: int, bad_features: dict[str, int], missing: list[date]
) -> list[AssetCheckResult]:
    """One day's checks from its figures: pure, so each is seen to fail on bad ones."""
    one_row = rows == silver_rows and not repeated_ids
    return [
        AssetCheckResult(
            check_name="one_row_per_silver_transaction",
            passed=one_row,
            description=None
            if one_row
            else f"{rows} gold rows ({repeated_ids} repeating a transaction_id), {silver_rows} silver rows",
            metadata={"gold_rows": rows, "repeated_ids": repeated_ids, "silver_rows": silver_rows},
        ),
        AssetCheckResult(
            check_name="features_finite",
            passed=not bad_features,
            description=f"null or NaN values: {bad_features}" if bad_features else None,
            metadata={"null_or_nan": MetadataValue.json(bad_features)},
        ),
        AssetCheckResult(
            check_name="history_complete",
            passed=not missing,
            severity=AssetCheckSeverity.WARN,
            description=f"{len(missing)} look-back days without daily aggregates" if missing else None,
            metadata={
                "missing_days": MetadataValue.json([d.isoformat() for d in missing]),
                "why": "look-back aggregates of these days are absent, so features see no activity there",
            },
        ),
    ]


def history_days(days: list[date]) -> list[date]:
    """The days whose aggregates gold reads for ``days``: the terminals' look-back (the longer one, which the history
    check covers for both aggregates) before the first, and every day of the run but the last."""
    return [days[0] - timedelta(days=TERMINAL_LOOKBACK_DAYS - i) for i in range(TERMINAL_LOOKBACK_DAYS + len(days) - 1)]


def days_present() -> Column:
    """An Observation aggregate: the days of the rows read, which ``observed_days`` reads."""
    return F.collect_set(F.unix_date("date")).alias("days")


def observed_days(observation: Observation) -> set[date]:
    return {EPOCH + timedelta(days=n) for n in observation.get["days"]}


def missing_history_days(
    lake: LakeResource, days: list[date], partitions_start: date, present: set[date]
) -> list[date]:
    """Look-back days of ``days`` not ``present`` among the aggregates read, counted from the first partition or the
    lake's first day of data, whichever is later: before it there is no history to miss."""
    first_data = earliest_day(lake.bronze_transactions) or days[0]
    first = max(days[0] - timedelta(days=TERMINAL_LOOKBACK_DAYS), partitions_start, first_data)
    return [d for d in (first + timedelta(days=i) for i in range((days[0] - first).days)) if d not in present]


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    # Same-day lineage edges on purpose: Dagster runs a child with its parents in one backfill run
    # only across identity mappings, and a multi-day range must stay one run (one JVM). The
    # look-back days D-37..D-1 are read from the lake and guarded by the history_complete check.
    deps=["silver_transactions", "customer_daily_aggregates", "terminal_daily_aggregates"],
    group_name="gold",
    automation_condition=DAILY_CHAIN,
    freshness_policy=DAILY_FRESHNESS,
    code_version="3",
    owners=["team:fraud-data-engineering"],
    tags={"domain": "fraud", "layer": "gold"},
    kinds={"spark", "delta"},
    description=(
        "Point-in-time behavioural features, one row per silver transaction, computed only from events "
        "strictly before it; windows are calendar-day aligned and terminal risk is label-delayed "
        f"by {LABEL_DELAY_DAYS} days. Delta table gold/transaction_features, partitioned by date."
    ),
    metadata={
        "dagster/column_schema": table_schema(GOLD_SCHEMA, {f.name: f.description for f in FEATURES}),
    },
    check_specs=[
        daily_check(
            "one_row_per_silver_transaction",
            "gold_transaction_features",
            "the day's gold rows = its silver rows, and no transaction_id repeats one of the run's days",
        ),
        daily_check("features_finite", "gold_transaction_features", "no feature of the day is null or NaN"),
        daily_check(
            "history_complete",
            "gold_transaction_features",
            "every look-back day of the day since the first partition and the lake's first day of data has its "
            "daily aggregates",
        ),
    ],
)
def gold_transaction_features(
    context: AssetExecutionContext, spark: LazyPySparkResource, lake: LakeResource
) -> DailyAssetEvents:
    session = spark.spark_session
    days = run_days(context)
    # The silver version read, pinned, so the check counts the very rows gold was computed from.
    silver = read_days(
        session, lake.silver_transactions, days, SILVER_SCHEMA, version=current_version(lake.silver_transactions)
    )
    # The days holding aggregate rows are observed as the write reads them, for the history check: the very rows
    # the features saw, where a scan of each table's look-back days cost Spark jobs beside the write.
    customer_days, terminal_days = Observation("gold_customer_days"), Observation("gold_terminal_days")
    customer = read_days(
        session, lake.customer_daily_aggregates, history_days(days), CUSTOMER_AGGREGATES_SCHEMA
    ).observe(customer_days, days_present())
    terminal = read_days(
        session, lake.terminal_daily_aggregates, history_days(days), TERMINAL_AGGREGATES_SCHEMA
    ).observe(terminal_days, days_present())
    finite = Observation("gold_features_finite")
    features = transaction_features(silver, customer, terminal, days).observe(
        finite, F.count_if(F.greatest(*[not_finite(n) for n in FEATURE_NAMES])).alias("rows")
    )
    # The checks' own Spark jobs run on a second thread: beside the write (whose last tasks leave a core idle) and
    # while this thread has Dagster store the run's per-day events, which uses no Spark.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gold-checks") as checks:
        silver_rows_job = checks.submit(rows_by_day, silver)
        commit = replace_days(features, lake.transaction_features, days, days_together=True)
        gold = read_commit(session, commit, GOLD_SCHEMA)
        repeated_job = checks.submit(repeated_ids_by_day, gold)
        # The write counted the rows with a null or NaN feature; they are broken down by day only when there are
        # some.
        bad_features = non_finite_by_day(gold) if finite.get["rows"] else {}
        silver_rows = silver_rows_job.result()
        yield MaterializeResult(
            metadata=materialization_metadata(context, gold, commit, silver_rows=sum(silver_rows.values()))
        )
        repeated = repeated_job.result()
    missing = missing_history_days(
        lake, days, daily_partitions.start.date(), observed_days(customer_days) & observed_days(terminal_days)
    )
    results = {
        d: gold_check_results(
            commit.rows_by_day.get(d, 0),
            repeated.get(d, 0),
            silver_rows.get(d, 0),
            bad_features.get(d, {}),
            [m for m in missing if d - timedelta(days=TERMINAL_LOOKBACK_DAYS) <= m < d],
        )
        for d in days
    }
    yield from evaluations_by_day(context, results)
