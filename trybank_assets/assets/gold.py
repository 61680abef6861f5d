"""Gold: point-in-time features, one row per silver transaction, from events strictly before it."""

from collections.abc import Callable
from datetime import date, timedelta

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
from pyspark.sql import Column, DataFrame, Observation, SparkSession, Window
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
from trybank_assets.assets.velocity import earlier_at_terminal_today, velocity_columns
from trybank_assets.automation import DAILY_CHAIN, DAILY_FRESHNESS
from trybank_assets.features import (
    CUSTOMER_WINDOWS,
    FEATURE_NAMES,
    FEATURES,
    LABEL_DELAY_DAYS,
    LOOKBACK_DAYS,
    TERMINAL_HABIT_DAYS,
    TERMINAL_LOOKBACK_DAYS,
    TERMINAL_WINDOWS,
    VELOCITY_WINDOWS,
    derive_features,
)
from trybank_assets.lake_layout import earliest_day
from trybank_assets.lib.metadata import materialization_metadata, table_schema
from trybank_assets.lib.partition_checks import (
    DailyAssetEvents,
    count_by_day,
    counted_by_day,
    daily_check,
    evaluations_by_day,
    repeated_ids_by_day,
)
from trybank_assets.lib.spark_tables import days_with_rows, read_days, replace_days
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


# An aggregate over a look-back: (function, aggregate column, nearest day back, farthest day back).
LookBack = tuple[Callable[[str], Column], str, int, int]


def _with_lookback(tx: DataFrame, aggregates: DataFrame, key: str, windows: dict[str, LookBack]) -> DataFrame:
    """``tx`` with each output column of ``windows``: its function over the look-back days of ``aggregates``.

    Range windows over the day number, on the transactions and the aggregate rows together: one sort of
    them per key, and no join back (a join would repeat every aggregate row once per day looking back at
    it, or shuffle the transactions again). Transactions hold no aggregate values, so the windows see the
    aggregate rows only; integer sums, a max and per-day lists, so the result is exact whatever the order.
    """
    columns = sorted({column for _, column, _, _ in windows.values()})
    rows = tx.withColumn("_tx", F.lit(True)).unionByName(
        aggregates.select(key, "date", *[F.col(c).alias(f"_agg_{c}") for c in columns], F.lit(False).alias("_tx")),
        allowMissingColumns=True,
    )
    by_day = Window.partitionBy(key).orderBy(F.unix_date("date"))
    looked_back = [
        function(f"_agg_{column}").over(by_day.rangeBetween(-farthest, -nearest)).alias(name)
        for name, (function, column, nearest, farthest) in windows.items()
    ]
    return rows.select(*tx.columns, "_tx", *looked_back).where("_tx").drop("_tx")


def _customer_history(tx: DataFrame, customer_aggregates: DataFrame) -> DataFrame:
    """``tx`` with the customer's sums over each window's previous whole days, and the last event before."""
    windows: dict[str, LookBack] = {}
    for n in CUSTOMER_WINDOWS:
        windows[f"prior_count_{n}"] = (F.sum, "txn_count", 1, n)
        windows[f"prior_cents_{n}"] = (F.sum, "amount_cents_sum", 1, n)
    windows["prior_cents_sq"] = (F.sum, "amount_cents_sq_sum", 1, LOOKBACK_DAYS)
    windows["prior_international"] = (F.sum, "international_count", 1, LOOKBACK_DAYS)
    windows["prior_previous_us"] = (F.max, "last_event_us", 1, LOOKBACK_DAYS)
    windows["prior_terminal_days"] = (F.collect_list, "terminal_ids", 1, TERMINAL_HABIT_DAYS)  # one array a day
    return _with_lookback(tx, customer_aggregates, "customer_id", windows)


def _terminal_history(tx: DataFrame, terminal_aggregates: DataFrame) -> DataFrame:
    """``tx`` with the terminal's counts and labelled fraud over each window, shifted by the label delay; transactions
    and amounts over the previous days the terminal's typical amount is taken from (no label, no delay)."""
    windows: dict[str, LookBack] = {}
    for n in TERMINAL_WINDOWS:
        windows[f"terminal_count_{n}"] = (F.sum, "txn_count", LABEL_DELAY_DAYS + 1, LABEL_DELAY_DAYS + n)
        windows[f"terminal_fraud_{n}"] = (F.sum, "fraud_count", LABEL_DELAY_DAYS + 1, LABEL_DELAY_DAYS + n)
    windows["terminal_recent_count"] = (F.sum, "txn_count", 1, TERMINAL_HABIT_DAYS)
    windows["terminal_recent_cents"] = (F.sum, "amount_cents_sum", 1, TERMINAL_HABIT_DAYS)
    return _with_lookback(tx, terminal_aggregates, "terminal_id", windows)


def transaction_features(
    silver: DataFrame, customer_aggregates: DataFrame, terminal_aggregates: DataFrame
) -> DataFrame:
    """Gold rows for every transaction in ``silver``.

    ``customer_aggregates`` must cover the 30 days before each silver day and
    ``terminal_aggregates`` the 37 days before; days they lack count as no activity.
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
    # Each key's windows right after its look-back, whose shuffle by the key also clusters every window
    # partitioned by the key and more: the transactions are shuffled once per key, not once per window.
    tx = _customer_history(tx, customer_aggregates)
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
        earlier_at_terminal_today().alias("today_at_terminal"),
        *velocity_columns("customer"),
    )
    tx = _terminal_history(tx, terminal_aggregates)
    tx = tx.select("*", *velocity_columns("terminal"))

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
    for who in ("customer", "terminal"):
        for suffix, _, _ in VELOCITY_WINDOWS:
            raw[f"{who}_count_{suffix}"] = F.col(f"{who}_count_{suffix}")
            raw[f"{who}_cents_{suffix}"] = F.col(f"{who}_cents_{suffix}")
    seen_before = F.coalesce(F.array_contains(F.flatten("prior_terminal_days"), F.col("terminal_id")), F.lit(False))
    raw["customer_terminal_seen"] = (seen_before | (F.col("today_at_terminal") > 0)).cast("long")
    raw["terminal_recent_count"] = prior("terminal_recent_count")
    raw["terminal_recent_cents"] = prior("terminal_recent_cents")

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


def missing_history_days(
    session: SparkSession, lake: LakeResource, days: list[date], partitions_start: date
) -> list[date]:
    """Look-back days without committed aggregates, counted from the first partition or the lake's first
    day of data, whichever is later: before it there is no history to miss."""
    first_data = earliest_day(lake.bronze_transactions) or days[0]
    first = max(days[0] - timedelta(days=TERMINAL_LOOKBACK_DAYS), partitions_start, first_data)
    needed = [first + timedelta(days=i) for i in range((days[0] - first).days)]
    present = set(days_with_rows(session, lake.customer_daily_aggregates)) & set(
        days_with_rows(session, lake.terminal_daily_aggregates)
    )
    return [d for d in needed if d not in present]


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
    observed = Observation("gold_input")  # silver's rows per day, counted as the write reads them
    silver = read_days(session, lake.silver_transactions, days, SILVER_SCHEMA).observe(
        observed, *count_by_day(days, "silver_rows")
    )
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
    commit = replace_days(transaction_features(silver, customer, terminal), lake.transaction_features, days)

    gold = read_days(session, lake.transaction_features, days, GOLD_SCHEMA, version=commit.version)
    stats = {
        r["date"]: r
        for r in gold.groupBy("date")
        .agg(
            F.count("*").alias("_rows"),
            *[F.sum((F.isnan(n) | F.col(n).isNull()).cast("int")).alias(n) for n in FEATURE_NAMES],
        )
        .collect()
    }
    repeated = repeated_ids_by_day(gold)
    silver_rows = counted_by_day(observed.get, days, "silver_rows")
    missing = missing_history_days(session, lake, days, daily_partitions.start.date())
    yield MaterializeResult(
        metadata=materialization_metadata(context, gold, commit, silver_rows=sum(silver_rows.values()))
    )
    results = {}
    for d in days:
        day = stats.get(d)
        results[d] = gold_check_results(
            day["_rows"] if day else 0,
            repeated.get(d, 0),
            silver_rows[d],
            {n: day[n] for n in FEATURE_NAMES if day[n]} if day else {},
            [m for m in missing if d - timedelta(days=TERMINAL_LOOKBACK_DAYS) <= m < d],
        )
    yield from evaluations_by_day(context, results)
