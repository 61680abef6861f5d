"""Gold: point-in-time features, one row per silver transaction, from events strictly before it."""

from datetime import date, timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import Column, DataFrame, Window
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
from trybank_assets.assets.silver import SILVER_SCHEMA
from trybank_assets.features import (
    CUSTOMER_WINDOWS,
    FEATURE_NAMES,
    FEATURES,
    LABEL_DELAY_DAYS,
    LOOKBACK_DAYS,
    TERMINAL_LOOKBACK_DAYS,
    TERMINAL_WINDOWS,
    derive_features,
)
from trybank_assets.lake_layout import day_dir, earliest_day
from trybank_assets.lib.metadata import materialization_metadata, table_schema
from trybank_assets.lib.spark_tables import overwrite_days, read_days
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


def _as_column(x) -> Column:
    return x if isinstance(x, Column) else F.lit(x)


class SparkFeatureOps:
    """``features.FeatureOps`` over Spark Columns: the same IEEE operations as the Python twin."""

    def div(self, num, den, default, min_den=0.0):
        num, den = _as_column(num), _as_column(den)
        return F.when(den > min_den, num.cast(DoubleType()) / den.cast(DoubleType())).otherwise(F.lit(default))

    def flag(self, cond):
        return cond.cast(DoubleType())

    def sqrt_pos(self, x):
        return F.when(x > 0, F.sqrt(x)).otherwise(F.lit(0.0))

    def floordiv(self, x, m):
        # x - pmod(x, m) is an exact multiple of m, so the division is exact (epoch micros < 2**53).
        return ((x - F.pmod(x, F.lit(m))) / F.lit(m)).cast("long")

    def mod(self, x, m):
        return F.pmod(x, F.lit(m))

    def to_double(self, x):
        return _as_column(x).cast(DoubleType())

    def elapsed_seconds(self, now_us, previous_us, cap):
        elapsed = (now_us - previous_us).cast(DoubleType()) / F.lit(1e6)
        return F.when(previous_us.isNull(), F.lit(cap)).otherwise(F.least(elapsed, F.lit(cap)))


def _lookback(tx: DataFrame, aggregates: DataFrame, key: str, nearest: int, farthest: int, aggs) -> DataFrame:
    """Per (key, day) of ``tx``: ``aggs`` over the aggregate days ``nearest``..``farthest`` days back.

    ``aggs`` maps ``back`` (days back, a Column) to the aggregate Columns over the ``a.`` rows.
    """
    keys = tx.select(key, "date").distinct().alias("k")
    joined = keys.join(
        aggregates.alias("a"),
        (F.col(f"k.{key}") == F.col(f"a.{key}"))
        & (F.col("a.date") >= F.date_sub(F.col("k.date"), farthest))
        & (F.col("a.date") <= F.date_sub(F.col("k.date"), nearest)),
    )
    back = F.datediff(F.col("k.date"), F.col("a.date"))
    return joined.groupBy(F.col(f"k.{key}").alias(key), F.col("k.date").alias("date")).agg(*aggs(back))


def _sum_within(back: Column, days: int, column: str) -> Column:
    return F.sum(F.when(back <= days, F.col(f"a.{column}")).otherwise(F.lit(0)))


def _customer_history(tx: DataFrame, customer_aggregates: DataFrame) -> DataFrame:
    """Per (customer, day): sums over each window's previous whole days."""

    def aggs(back: Column) -> list[Column]:
        out = []
        for n in CUSTOMER_WINDOWS:
            out += [
                _sum_within(back, n, "txn_count").alias(f"prior_count_{n}"),
                _sum_within(back, n, "amount_cents_sum").alias(f"prior_cents_{n}"),
            ]
        return [
            *out,
            _sum_within(back, LOOKBACK_DAYS, "amount_cents_sq_sum").alias("prior_cents_sq"),
            _sum_within(back, LOOKBACK_DAYS, "international_count").alias("prior_international"),
            F.max("a.last_event_us").alias("prior_previous_us"),
        ]

    return _lookback(tx, customer_aggregates, "customer_id", 1, LOOKBACK_DAYS, aggs)


def _terminal_history(tx: DataFrame, terminal_aggregates: DataFrame) -> DataFrame:
    """Per (terminal, day): counts and labelled fraud over each window, shifted by the label delay."""

    def aggs(back: Column) -> list[Column]:
        out = []
        for n in TERMINAL_WINDOWS:
            out += [
                _sum_within(back, LABEL_DELAY_DAYS + n, "txn_count").alias(f"terminal_count_{n}"),
                _sum_within(back, LABEL_DELAY_DAYS + n, "fraud_count").alias(f"terminal_fraud_{n}"),
            ]
        return out

    return _lookback(tx, terminal_aggregates, "terminal_id", LABEL_DELAY_DAYS + 1, TERMINAL_LOOKBACK_DAYS, aggs)


def transaction_features(
    silver: DataFrame, customer_aggregates: DataFrame, terminal_aggregates: DataFrame
) -> DataFrame:
    """Gold rows for every transaction in ``silver``.

    ``customer_aggregates`` must cover the 30 days before each silver day and
    ``terminal_aggregates`` the 37..8 days before; days they lack count as no activity.
    """
    tx = silver.select(
        "transaction_id",
        "customer_id",
        "terminal_id",
        "event_time",
        "is_fraud",
        "fraud_scenario",
        "date",
        "amount_cents",
        F.unix_micros("event_time").alias("event_us"),
        international_flag().alias("international"),
    )
    earlier_today = (
        Window.partitionBy("customer_id", "date").orderBy("event_us").rangeBetween(Window.unboundedPreceding, -1)
    )
    cents = F.col("amount_cents")
    tx = tx.select(
        "*",
        F.count(F.lit(1)).over(earlier_today).alias("today_count"),
        F.coalesce(F.sum(cents).over(earlier_today), F.lit(0)).alias("today_cents"),
        F.coalesce(F.sum(cents * cents).over(earlier_today), F.lit(0)).alias("today_cents_sq"),
        F.coalesce(F.sum("international").over(earlier_today), F.lit(0)).alias("today_international"),
        F.max("event_us").over(earlier_today).alias("today_previous_us"),
    )
    tx = tx.join(_customer_history(tx, customer_aggregates), ["customer_id", "date"], "left").join(
        _terminal_history(tx, terminal_aggregates), ["terminal_id", "date"], "left"
    )

    def prior(name: str) -> Column:
        return F.coalesce(F.col(name), F.lit(0))

    raw = {"amount_cents": F.col("amount_cents"), "event_us": F.col("event_us")}
    for n in CUSTOMER_WINDOWS:
        raw[f"customer_count_{n}"] = prior(f"prior_count_{n}") + F.col("today_count")
        raw[f"customer_cents_{n}"] = prior(f"prior_cents_{n}") + F.col("today_cents")
    raw["customer_cents_sq_30"] = prior("prior_cents_sq") + F.col("today_cents_sq")
    raw["customer_international_30"] = prior("prior_international") + F.col("today_international")
    raw["customer_previous_us"] = F.coalesce(F.col("today_previous_us"), F.col("prior_previous_us"))
    for n in TERMINAL_WINDOWS:
        raw[f"terminal_count_{n}"] = prior(f"terminal_count_{n}")
        raw[f"terminal_fraud_{n}"] = prior(f"terminal_fraud_{n}")

    features = derive_features(raw, SparkFeatureOps())
    return tx.select(
        "transaction_id",
        "customer_id",
        "terminal_id",
        "event_time",
        "is_fraud",
        "fraud_scenario",
        *[features[name].alias(name) for name in FEATURE_NAMES],
        "date",
    )


def missing_history_days(lake: LakeResource, days: list[date], partitions_start: date) -> list[date]:
    """Look-back days whose aggregates were never materialized, counted from the first partition or
    the lake's first day of data, whichever is later: before it there is no history to miss."""
    first_data = earliest_day(lake.bronze_transactions) or days[0]
    first = max(days[0] - timedelta(days=TERMINAL_LOOKBACK_DAYS), partitions_start, first_data)
    needed = [first + timedelta(days=i) for i in range((days[0] - first).days)]
    return [
        d
        for d in needed
        if not day_dir(lake.customer_daily_aggregates, d).is_dir()
        or not day_dir(lake.terminal_daily_aggregates, d).is_dir()
    ]


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    # Same-day lineage edges on purpose: Dagster runs a child with its parents in one backfill run
    # only across identity mappings, and a multi-day range must stay one run (one JVM). The
    # look-back days D-37..D-1 are read from the lake and guarded by the history_complete check.
    deps=["silver_transactions", "customer_daily_aggregates", "terminal_daily_aggregates"],
    group_name="gold",
    kinds={"spark", "parquet"},
    description=(
        "Point-in-time behavioural features, one row per silver transaction, computed only from events "
        "strictly before it; windows are calendar-day aligned and terminal risk is label-delayed "
        f"by {LABEL_DELAY_DAYS} days. Parquet under gold/transaction_features/date=D/."
    ),
    metadata={
        "dagster/column_schema": table_schema(GOLD_SCHEMA, {f.name: f.description for f in FEATURES}),
    },
    check_specs=[
        AssetCheckSpec("one_row_per_silver_transaction", asset="gold_transaction_features"),
        AssetCheckSpec("features_finite", asset="gold_transaction_features"),
        AssetCheckSpec(
            "history_complete",
            asset="gold_transaction_features",
            description=(
                "every look-back day since the first partition and the lake's first day of data has its daily "
                "aggregates"
            ),
        ),
    ],
)
def gold_transaction_features(
    context: AssetExecutionContext, spark: LazyPySparkResource, lake: LakeResource
) -> MaterializeResult:
    session = spark.spark_session
    days = run_days(context)
    silver = read_days(session, lake.silver_transactions, days, SILVER_SCHEMA)
    customer = read_days(
        session,
        lake.customer_daily_aggregates,
        [days[0] - timedelta(days=LOOKBACK_DAYS - i) for i in range(LOOKBACK_DAYS + len(days) - 1)],
        CUSTOMER_AGGREGATES_SCHEMA,
    )
    terminal = read_days(
        session,
        lake.terminal_daily_aggregates,
        [days[0] - timedelta(days=TERMINAL_LOOKBACK_DAYS - i) for i in range(TERMINAL_LOOKBACK_DAYS + len(days) - 1)],
        TERMINAL_AGGREGATES_SCHEMA,
    )
    overwrite_days(transaction_features(silver, customer, terminal), lake.transaction_features, days)

    gold = read_days(session, lake.transaction_features, days, GOLD_SCHEMA)
    stats = gold.agg(
        F.count("*").alias("rows"),
        F.countDistinct("transaction_id").alias("ids"),
        *[F.sum((F.isnan(n) | F.col(n).isNull()).cast("int")).alias(n) for n in FEATURE_NAMES],
    ).first()
    silver_rows = silver.count()
    bad_features = {n: stats[n] for n in FEATURE_NAMES if stats[n]}
    partitions_start = daily_partitions.start.date()
    missing = missing_history_days(lake, days, partitions_start)
    return MaterializeResult(
        metadata=materialization_metadata(gold, lake.transaction_features, stats["rows"], silver_rows=silver_rows),
        check_results=[
            AssetCheckResult(
                check_name="one_row_per_silver_transaction",
                passed=stats["rows"] == silver_rows == stats["ids"],
                metadata={
                    "gold_rows": stats["rows"],
                    "distinct_ids": stats["ids"],
                    "silver_rows": silver_rows,
                },
            ),
            AssetCheckResult(
                check_name="features_finite",
                passed=not bad_features,
                metadata={"null_or_nan": MetadataValue.json(bad_features)},
            ),
            AssetCheckResult(
                check_name="history_complete",
                passed=not missing,
                severity=AssetCheckSeverity.WARN,
                metadata={
                    "missing_days": MetadataValue.json([d.isoformat() for d in missing]),
                    "why": "look-back aggregates of these days are absent, so features see no activity there",
                },
            ),
        ],
    )
