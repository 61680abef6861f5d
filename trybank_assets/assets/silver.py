"""Silver: typed, validated, deduplicated transactions; every rejected row kept with its reason."""

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

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
from pyspark.sql import DataFrame, Observation, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DecimalType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from trybank_assets.automation import DAILY_CHAIN, DAILY_FRESHNESS
from trybank_assets.bronze_contract import (
    BRONZE_FIELDS,
    CENT_TOLERANCE,
    COUNTRY_CODES,
    CURRENCY_CODES,
    LABEL_PATTERN,
    MAX_AMOUNT,
    MAX_ID_LENGTH,
    RULES,
    UUID_PATTERN,
)
from trybank_assets.lib.metadata import materialization_metadata, table_schema
from trybank_assets.lib.partition_checks import (
    DailyAssetEvents,
    collect_days,
    daily_check,
    day_fingerprint,
    evaluations_by_day,
    fingerprint_matches,
    listed_by_day,
    repeats_an_id,
    rows_by_day,
)
from trybank_assets.lib.spark_tables import (
    QUARANTINED,
    DeltaCommit,
    current_version,
    glob_escaped,
    read_days,
    read_quarantine_days,
    replace_silver_days,
)
from trybank_assets.partitions import daily_partitions, run_days
from trybank_assets.resources.lake import LakeResource

# Every field is read as text so that a bad value becomes a quarantine reason, not a null.
BRONZE_READ_SCHEMA = StructType(
    [StructField(name, StringType()) for name in BRONZE_FIELDS] + [StructField("_corrupt_record", StringType())]
)

_BRONZE_WITH_ORIGIN = StructType(
    [*BRONZE_READ_SCHEMA.fields, StructField("source", StringType()), StructField("date", DateType())]
)

SILVER_SCHEMA = StructType(
    [
        StructField("transaction_id", StringType(), False),
        StructField("event_time", TimestampType(), False),
        StructField("customer_id", StringType(), False),
        StructField("terminal_id", StringType(), False),
        StructField("amount", DecimalType(18, 2), False),
        StructField("amount_cents", LongType(), False),
        StructField("currency", StringType(), False),
        StructField("merchant_country", StringType()),
        StructField("customer_country", StringType()),
        StructField("channel", StringType()),
        StructField("merchant_category", StringType()),
        StructField("is_fraud", BooleanType()),
        StructField("fraud_scenario", StringType()),
        StructField("source_transaction_id", StringType()),
        StructField("source", StringType(), False),
        StructField("date", DateType(), False),
    ]
)

QUARANTINE_SCHEMA = StructType(
    [StructField(name, StringType()) for name in BRONZE_FIELDS]
    + [
        StructField("raw_record", StringType()),
        StructField("reason", StringType(), False),
        StructField("reason_text", StringType()),
        StructField("source", StringType()),
        StructField("date", DateType(), False),
    ]
)

# Tested on the text's last 6 characters, which hold any match: searched for along the whole text it cost ~3.5 s
# per 1.8M rows.
_ZONED = r"(Z|[+-]\d{2}:?\d{2})$"
# Wide enough for any amount text a writer may produce (e.g. a float's 17 significant digits).
_EXACT_AMOUNT = DecimalType(38, 18)


def read_bronze(spark: SparkSession, lake: LakeResource, days: list[date]) -> DataFrame:
    """Every line of every source for ``days`` (the ``*.jsonl`` files of ``date=D/source=S/``, as the bronze asset
    counts them), as text, with its day and source from the folders: Spark's partition columns, constant per file,
    where a value extracted from each row's file path cost ~4 s per 1.8M rows."""
    sources = [glob_escaped(s) for d in days for s in sorted(lake.bronze_day(d).glob("source=*")) if s.is_dir()]
    if not sources:
        return spark.createDataFrame([], _BRONZE_WITH_ORIGIN)
    return (
        spark.read.schema(_BRONZE_WITH_ORIGIN)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_corrupt_record")
        .option("basePath", str(lake.bronze_transactions))
        .option("pathGlobFilter", "*.jsonl")
        .json(sources)
        .select(*_BRONZE_WITH_ORIGIN.names)
    )


def _blank(name: str) -> F.Column:
    return F.col(name).isNull() | (F.trim(F.col(name)) == "")


def _too_long(name: str) -> F.Column:
    return F.length(F.trim(F.col(name))) > MAX_ID_LENGTH


def _invalid_optional(name: str, valid: F.Column) -> F.Column:
    return F.col(name).isNotNull() & ~valid


def _code(name: str) -> F.Column:
    return F.upper(F.trim(F.col(name)))


def _code_in(name: str, codes: frozenset[str]) -> F.Column:
    """Whether the field's code is one of ``codes``, as ``_code(name).isin(*codes)``: written as SQL text, which the
    JVM parses at once, where ``isin`` makes a Py4J call per code (~0.3 s for the rules' 676 codes)."""
    if not all(c.isalnum() for c in codes):
        raise ValueError("codes must be letters and digits only")
    listed = ", ".join(f"'{c}'" for c in sorted(codes))
    return F.expr(f"upper(trim(`{name}`)) IN ({listed})")


def _label(name: str) -> F.Column:
    return F.lower(F.trim(F.col(name)))


def _parsed() -> dict[str, F.Column]:
    """A raw row's values as its rules read them: each parsed once, then tested by several rules."""
    return {
        "_event_time": F.col("event_time").try_cast(TimestampType()),
        "_number": F.col("amount").try_cast("double"),
        "_amount": F.col("amount").try_cast(_EXACT_AMOUNT),
    }


def rejection_reason() -> F.Column:
    """The first rule of ``bronze_contract.RULES`` a raw row (with its ``_parsed`` values) breaks, or null for a
    valid row."""
    event_time, number, amount = F.col("_event_time"), F.col("_number"), F.col("_amount")
    rules = [
        (F.col("_corrupt_record").isNotNull(), "malformed_json"),
        (_blank("transaction_id"), "missing_transaction_id"),
        (~F.col("transaction_id").rlike(UUID_PATTERN), "invalid_transaction_id"),
        (_blank("customer_id"), "missing_customer_id"),
        (_too_long("customer_id"), "invalid_customer_id"),
        (_blank("terminal_id"), "missing_terminal_id"),
        (_too_long("terminal_id"), "invalid_terminal_id"),
        (
            _invalid_optional("source_transaction_id", ~_too_long("source_transaction_id")),
            "invalid_source_transaction_id",
        ),
        (_blank("event_time"), "missing_event_time"),
        (~F.substring("event_time", -6, 6).rlike(_ZONED), "event_time_without_zone"),
        (event_time.isNull(), "invalid_event_time"),
        (F.to_date(event_time) != F.col("date"), "event_time_outside_partition"),
        (_blank("amount"), "missing_amount"),
        (number.isNull() | F.isnan(number), "invalid_amount"),
        (amount < 0, "amount_negative"),
        (number > MAX_AMOUNT + float(CENT_TOLERANCE), "amount_too_large"),
        (amount.isNull(), "invalid_amount"),
        (F.abs(amount - F.round(amount, 2)) > F.lit(CENT_TOLERANCE), "amount_sub_cent"),
        (~_code_in("currency", CURRENCY_CODES) | F.col("currency").isNull(), "unknown_currency"),
        (
            _invalid_optional("merchant_country", _code_in("merchant_country", COUNTRY_CODES)),
            "invalid_merchant_country",
        ),
        (
            _invalid_optional("customer_country", _code_in("customer_country", COUNTRY_CODES)),
            "invalid_customer_country",
        ),
        (_invalid_optional("channel", _label("channel").rlike(LABEL_PATTERN)), "invalid_channel"),
        (
            _invalid_optional("merchant_category", _label("merchant_category").rlike(LABEL_PATTERN)),
            "invalid_merchant_category",
        ),
        (_invalid_optional("is_fraud", F.lower("is_fraud").isin("true", "false")), "invalid_is_fraud"),
    ]
    (first_broken, first_name), *others = rules
    reason = F.when(first_broken, F.lit(first_name))
    for broken, name in others:
        reason = reason.when(broken, F.lit(name))
    return reason


def _reason_text(reason: F.Column) -> F.Column:
    return F.create_map(*[F.lit(v) for item in sorted(RULES.items()) for v in item])[reason]


SILVER, QUARANTINE, DUPLICATE = "silver", "quarantine", "duplicate"
# A silver row of a day outside the run, read only to deduplicate the run's rows against it; never written.
ELSEWHERE = "elsewhere"


def _silver_columns() -> dict[str, F.Column]:
    """A valid raw row's typed silver columns."""
    amount = F.round(F.col("amount").cast(_EXACT_AMOUNT), 2).cast(DecimalType(18, 2))
    return {
        "transaction_id": F.col("transaction_id"),
        "event_time": F.col("event_time").cast(TimestampType()),
        "customer_id": F.trim("customer_id"),
        "terminal_id": F.trim("terminal_id"),
        "amount": amount,
        "amount_cents": (amount * 100).cast(LongType()),
        "currency": _code("currency"),
        "merchant_country": _code("merchant_country"),
        "customer_country": _code("customer_country"),
        "channel": _label("channel"),
        "merchant_category": _label("merchant_category"),
        "is_fraud": F.lower("is_fraud").cast(BooleanType()),
        "fraud_scenario": F.col("fraud_scenario"),
        "source_transaction_id": F.trim("source_transaction_id"),
        "source": F.col("source"),
    }


def _quarantine_columns() -> dict[str, F.Column]:
    """A rejected raw row as kept in quarantine: its text fields, the line when it was not JSON, the reason."""
    return {
        **{name: F.col(name) for name in BRONZE_FIELDS},
        "raw_record": F.col("_corrupt_record"),
        "reason": F.col("reason"),
        "reason_text": _reason_text(F.col("reason")),
        "source": F.col("source"),
    }


@dataclass(frozen=True)
class CleanedTransactions:
    """Raw bronze rows, each with its ``kind``: a silver row, a quarantined row (with its ``reason``) or a
    dropped exact duplicate; and silver's rows of nearby days outside the run (``ELSEWHERE``), with
    ``_later_repeat`` set where the run keeps their id on an earlier day. The views below are filters of
    it; the silver table is written from it in one pass (``replace_silver_days``)."""

    classified: DataFrame

    def _of(self, kind: str) -> DataFrame:
        return self.classified.where(F.col("kind") == kind)

    @property
    def silver(self) -> DataFrame:
        return self._of(SILVER).select(*[c.alias(n) for n, c in _silver_columns().items()], "date")

    @property
    def quarantine(self) -> DataFrame:
        return self._of(QUARANTINE).select(*[c.alias(n) for n, c in _quarantine_columns().items()], "date")

    @property
    def duplicates_dropped(self) -> DataFrame:
        return self._of(DUPLICATE)

    def observed(self, observation: Observation) -> "CleanedTransactions":
        """The same rows, fingerprinting the run's bronze rows by day (``bronze``) and listing the days of the
        dropped duplicates (``duplicates``) into ``observation`` as the next action reads them, instead of
        another pass."""
        return CleanedTransactions(
            self.classified.observe(
                observation,
                *day_fingerprint("bronze", F.col("kind") != ELSEWHERE),
                collect_days("duplicates", F.col("kind") == DUPLICATE),
                collect_days("repeated_on_later_days", F.col("_later_repeat")),
            )
        )

    def replace_days(self, table: Path, days: list[date]) -> DeltaCommit:
        """Replace ``days`` of the silver table with the silver and quarantined rows, in one pass and one commit."""
        return replace_silver_days(
            self.classified.where(~F.col("kind").isin(DUPLICATE, ELSEWHERE)),
            _silver_columns(),
            _quarantine_columns(),
            F.col("kind") == QUARANTINE,
            table,
            days,
        )


def clean_transactions(raw: DataFrame, kept_elsewhere: DataFrame | None = None) -> CleanedTransactions:
    """Classify raw bronze rows in one sort by ``transaction_id``.

    Among valid rows sharing a ``transaction_id`` the one on the earliest day is kept, then by
    (source, content), so a re-run keeps the same one; an exact copy of it is a dropped duplicate, a
    row that differs from it is quarantined as ``conflicting_duplicate``. ``kept_elsewhere`` holds
    silver's ``transaction_id`` and ``date`` on days outside the run: a run's row whose id silver keeps
    on an earlier day is quarantined too (a correction that moved a transaction to another day, say),
    and one kept on a later day marks that day's row ``_later_repeat``.
    """
    parsed = _parsed()
    checked = raw.withColumns(parsed).withColumn("reason", rejection_reason()).drop(*parsed)
    elsewhere = F.col("_elsewhere")
    rows = checked.withColumn("_elsewhere", F.lit(False))
    if kept_elsewhere is not None:
        others = kept_elsewhere.select("transaction_id", "date", F.lit(True).alias("_elsewhere"))
        rows = rows.unionByName(others, allowMissingColumns=True)
    # Valid rows sort first, so a valid row's rank and the kept row are among valid rows only. Contents are
    # compared as one struct (null-safe field by field): exact, and cheaper than a hash of every row's JSON (~4 s
    # per 1.8M rows) or a window function per field (~2 s).
    content = [name for name in BRONZE_FIELDS if name != "transaction_id"]
    by_id = Window.partitionBy("transaction_id").orderBy(F.col("reason").isNotNull(), "date", "source", *content)
    invalid, first = F.col("reason").isNotNull(), F.row_number().over(by_id) == 1
    same_as_kept = F.first(F.struct(*content)).over(by_id).eqNullSafe(F.struct(*content))
    kept_elsewhere_row = F.first("_elsewhere").over(by_id)
    kind = (
        F.when(elsewhere, F.lit(ELSEWHERE))
        .when(invalid, F.lit(QUARANTINE))
        .when(first, F.lit(SILVER))
        .when(~kept_elsewhere_row & same_as_kept, F.lit(DUPLICATE))
        .otherwise(F.lit(QUARANTINE))
    )
    classified = (
        rows.withColumn("kind", kind)
        .withColumn("_later_repeat", elsewhere & ~first & ~kept_elsewhere_row)
        .withColumn(
            "reason",
            F.when(invalid, F.col("reason")).when(F.col("kind") == QUARANTINE, F.lit("conflicting_duplicate")),
        )
    )
    return CleanedTransactions(classified.drop("_elsewhere"))


KEY_COLUMNS = ("transaction_id", "customer_id", "terminal_id", "event_time", "amount")


@dataclass(frozen=True)
class WrittenFigures:
    """What the checks need of the rows a run wrote, counted in one pass over that table version: silver and
    quarantined rows, silver rows repeating an id and null keys, per day; quarantined rows per reason."""

    silver_rows: dict[date, int]
    quarantined_rows: dict[date, int]
    repeated_ids: dict[date, int]
    nulls: dict[date, dict[str, int]]
    reasons: dict[str, int]

    @classmethod
    def of(cls, silver: DataFrame, quarantine: DataFrame, days: list[date]) -> "WrittenFigures":
        null = {k: f"_null_{k}" for k in KEY_COLUMNS}
        both = silver.select(
            "date",
            "transaction_id",
            F.lit(None).cast(StringType()).alias("reason"),
            *[F.col(k).isNull().alias(null[k]) for k in KEY_COLUMNS],
            F.lit(False).alias(QUARANTINED),
        ).unionByName(
            quarantine.select(
                "date",
                "transaction_id",
                "reason",
                *[F.lit(False).alias(null[k]) for k in KEY_COLUMNS],
                F.lit(True).alias(QUARANTINED),
            )
        )
        figures = (
            both.withColumn("_repeat", ~F.col(QUARANTINED) & repeats_an_id(QUARANTINED))
            .groupBy("date", QUARANTINED, "reason")
            .agg(
                F.count("*").alias("_rows"),
                F.count_if("_repeat").alias("_repeats"),
                *[F.count_if(null[k]).alias(null[k]) for k in KEY_COLUMNS],
            )
            .collect()
        )
        silver_rows, quarantined_rows, repeated_ids, reasons = {}, {}, {}, {}
        nulls = {d: dict.fromkeys(KEY_COLUMNS, 0) for d in days}
        for r in figures:
            day = r["date"]
            if r[QUARANTINED]:
                quarantined_rows[day] = quarantined_rows.get(day, 0) + r["_rows"]
                reasons[r["reason"]] = reasons.get(r["reason"], 0) + r["_rows"]
            else:
                silver_rows[day], repeated_ids[day] = r["_rows"], r["_repeats"]
                nulls[day] = {k: r[null[k]] for k in KEY_COLUMNS}
        return cls(silver_rows, quarantined_rows, repeated_ids, nulls, dict(sorted(reasons.items())))


# A run's rows are deduplicated against silver's rows of the days this close before and after it, as the API's
# idempotency index remembers ids for a week; reading every other day instead costs seconds per daily run.
DEDUP_DAYS = 7


def dedup_neighbours(days: list[date]) -> list[date]:
    """The days outside the run, within ``DEDUP_DAYS`` of one of its days, whose silver ids the run's rows are
    deduplicated against."""
    run = set(days)
    return sorted({d + timedelta(days=k) for d in days for k in range(-DEDUP_DAYS, DEDUP_DAYS + 1)} - run)


def _by_iso_day(counts: dict[date, int]) -> dict[str, int]:
    return {d.isoformat(): n for d, n in sorted(counts.items())}


def silver_check_results(repeated_ids: int, nulls: dict[str, int], balance: dict[str, int]) -> list[AssetCheckResult]:
    """One day's checks from its figures: a pure function, so each check is seen to fail on bad ones."""
    null_keys = {k: n for k, n in nulls.items() if n}
    accounted = balance["silver_rows"] + balance["quarantined_rows"] + balance["duplicates_dropped"]
    return [
        AssetCheckResult(
            check_name="transaction_id_unique",
            passed=repeated_ids == 0,
            description=f"{repeated_ids} silver rows repeat a transaction_id" if repeated_ids else None,
            metadata={"duplicate_ids": repeated_ids},
        ),
        AssetCheckResult(
            check_name="keys_not_null",
            passed=not null_keys,
            description=f"null keys: {null_keys}" if null_keys else None,
            metadata=nulls,
        ),
        AssetCheckResult(
            check_name="reconciles_with_bronze",
            passed=balance["bronze_rows"] == accounted,
            severity=AssetCheckSeverity.ERROR,
            description=(
                None
                if balance["bronze_rows"] == accounted
                else f"{balance['bronze_rows']} bronze rows but {accounted} silver + quarantined + duplicates"
            ),
            metadata=balance,
        ),
    ]


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=["bronze_transactions"],
    group_name="silver",
    automation_condition=DAILY_CHAIN,
    freshness_policy=DAILY_FRESHNESS,
    code_version="3",
    owners=["team:fraud-data-engineering"],
    tags={"domain": "fraud", "layer": "silver"},
    kinds={"spark", "delta"},
    description=(
        "Typed, validated transactions deduplicated on transaction_id: the Delta table silver/transactions, "
        "partitioned by date. Rows that break a rule are kept in the same table (quarantined, with a reason), "
        "replaced in the same commit as the silver rows of their day."
    ),
    metadata={"dagster/column_schema": table_schema(SILVER_SCHEMA)},
    check_specs=[
        daily_check(
            "transaction_id_unique",
            "silver_transactions",
            "no transaction_id appears twice in silver, on the same day or an earlier day of the run",
        ),
        daily_check(
            "keys_not_null",
            "silver_transactions",
            "transaction_id, customer_id, terminal_id, event_time and amount are never null",
        ),
        daily_check(
            "reconciles_with_bronze",
            "silver_transactions",
            "the day's bronze rows = its silver rows + quarantined rows + duplicates dropped",
        ),
    ],
)
def silver_transactions(
    context: AssetExecutionContext, spark: LazyPySparkResource, lake: LakeResource
) -> DailyAssetEvents:
    session = spark.spark_session
    days = run_days(context)
    # Observed while the write reads bronze, not by reading it again: the rows in by day and the copies dropped.
    observed = Observation("silver_input")
    kept_elsewhere = read_days(
        session,
        lake.silver_transactions,
        dedup_neighbours(days),
        SILVER_SCHEMA,
        version=current_version(lake.silver_transactions),
    )
    cleaned = clean_transactions(read_bronze(session, lake, days), kept_elsewhere).observed(observed)
    commit = cleaned.replace_days(lake.silver_transactions, days)
    seen = observed.get  # one read of the observed figures (each .get converts them again)
    duplicates = listed_by_day(seen, days, "duplicates")
    later_repeats = listed_by_day(seen, [], "repeated_on_later_days")
    if later_repeats:
        context.log.warning(
            f"silver keeps, on an earlier day, ids that these later days outside the run hold too; materialize them "
            f"again to quarantine their copies: {_by_iso_day(later_repeats)}"
        )

    silver = read_days(session, lake.silver_transactions, days, SILVER_SCHEMA, version=commit.version)
    quarantine = read_quarantine_days(session, lake.silver_transactions, days, QUARANTINE_SCHEMA, commit.version)
    written = WrittenFigures.of(silver, quarantine, days)
    accounted = {d: written.silver_rows.get(d, 0) + written.quarantined_rows.get(d, 0) + duplicates[d] for d in days}
    if fingerprint_matches(seen, "bronze", accounted):
        bronze_rows = accounted
    else:
        context.log.error(
            f"silver read {seen['bronze_rows']} bronze rows of its days and accounts for "
            f"{sum(accounted.values())} by day; counting bronze per day again (with any line appended since)"
        )
        bronze_rows = dict.fromkeys(days, 0) | rows_by_day(read_bronze(session, lake, days))
    balance = {
        d: {
            "bronze_rows": bronze_rows[d],
            "silver_rows": written.silver_rows.get(d, 0),
            "quarantined_rows": written.quarantined_rows.get(d, 0),
            "duplicates_dropped": duplicates[d],
        }
        for d in days
    }
    totals = {k: sum(b[k] for b in balance.values()) for k in balance[days[0]]}
    context.log.info(f"silver {days[0]}..{days[-1]}: {totals}")
    yield MaterializeResult(
        metadata=materialization_metadata(
            context,
            silver,
            commit,
            **totals,
            quarantine_reasons=MetadataValue.json(written.reasons),
            repeated_on_later_days=MetadataValue.json(_by_iso_day(later_repeats)),
        )
    )
    yield from evaluations_by_day(
        context,
        {d: silver_check_results(written.repeated_ids.get(d, 0), written.nulls[d], balance[d]) for d in days},
    )
