"""Reading and replacing days of the lake's Delta tables with Spark: the lake's one module of table I/O.

Every table (silver, the daily aggregates, gold features, the prediction log) is a Delta table partitioned by
``date``. A run replaces its days in ONE Delta commit: ``replaceWhere`` on exactly the run's days, so days of the
range without rows end up empty and days outside it are untouched (Delta refuses a row outside them). Delta writes
the new Parquet files beside the old ones, then commits by creating the next ``_delta_log/NNN.json`` atomically.
A kill before that instant leaves the previous version whole, after it the new one; the files of an aborted write
belong to no commit, so no reader sees them, and VACUUM deletes them once older than the retention. Readers
therefore go through the log (this module), never through the ``date=`` folders.

Silver and its quarantine are one table (``silver/transactions``), partitioned by ``date`` and ``quarantined``:
a silver run replaces both sides of its days in the same commit, so no reader can ever see one side of a run
without the other. Silver rows hold the typed columns; a quarantined row holds its raw bronze fields and reason
in the ``quarantine`` struct. ``read_days`` of the table returns the silver rows, ``read_quarantine_days`` the
quarantined ones: two filters of the same version.

Small files: a write hash-partitions its rows by ``date`` first (unless they come partitioned by day ranges, as
gold's do), so each day is written by one task as one file (per side of silver); Delta's optimized write does the
same with a costlier shuffle. A day is only ever replaced
whole, never appended to, so a run leaves no small files to compact. ``maintain`` runs OPTIMIZE (compacts any
partition still holding several small files, e.g. from another writer; nothing to do costs no commit) and VACUUM
with the retention the session was configured with (``TRYBANK_DELTA_VACUUM_RETENTION_HOURS``): the lake
maintenance job's work (``maintenance.py``), never a write's.
"""

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import unquote

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

QUARANTINED = "quarantined"
QUARANTINE = "quarantine"
# Set by resources/spark.py from the settings: VACUUM keeps files a reader of an older version may still need.
VACUUM_RETENTION_CONF = "spark.trybank.delta.vacuumRetentionHours"


@dataclass(frozen=True)
class DeltaCommit:
    """What one replacement committed: the table version, Delta's operation name and rows per day of the range
    (silver rows for the silver table, whose quarantined rows per day are in ``quarantined_by_day``)."""

    table: Path
    version: int
    operation: str
    files_added: int
    rows_by_day: dict[date, int]
    quarantined_by_day: dict[date, int] = field(default_factory=dict)
    # The Parquet files the commit added per day, absolute paths (silver rows only for the silver table).
    files_by_day: dict[date, list[Path]] = field(default_factory=dict)


def is_table(table: Path) -> bool:
    """A Delta table has at least one commit (``NNN.json``); a kill during the first write leaves none."""
    log = table / "_delta_log"
    return log.is_dir() and any(p.suffix == ".json" for p in log.iterdir())


def _sql_path(table: Path) -> str:
    return f"delta.`{table}`"


def _days_predicate(days: Iterable[date]) -> str:
    # SQL text, parsed once by the JVM: a Column.isin builds each day's literal by its own Py4J call (~0.6 ms).
    return "date IN (" + ", ".join(f"DATE'{d.isoformat()}'" for d in sorted(set(days))) + ")"


def _load(spark: SparkSession, table: Path, version: int | None) -> DataFrame:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(str(table))


def current_version(table: Path) -> int | None:
    """The table's latest committed version, from its log's file names (None before its first commit): reading
    that version, not the latest at each query, gives a write and its checks the same rows."""
    logs = _commit_logs(table)
    return int(logs[0].stem) if logs else None


def _commit_logs(table: Path) -> list[Path]:
    """The table's commit files (``NNN.json`` in ``_delta_log``), newest first."""
    return sorted((p for p in (table / "_delta_log").glob("*.json") if p.stem.isdigit()), reverse=True)


def read_days(
    spark: SparkSession, table: Path, days: Iterable[date], schema: StructType, version: int | None = None
) -> DataFrame:
    """The given days of ``table`` (``schema`` includes ``date``) at its current or a given version.

    Days never materialized, or materialized without rows, are simply absent. Of the silver table this is the
    silver rows only.
    """
    days = list(days)
    if not days or not is_table(table):
        return spark.createDataFrame([], schema)
    df = _load(spark, table, version).where(_days_predicate(days))
    if QUARANTINED in df.columns:
        df = df.where(~F.col(QUARANTINED))
    return df.select(*schema.names)


def read_quarantine_days(
    spark: SparkSession, table: Path, days: Iterable[date], schema: StructType, version: int | None = None
) -> DataFrame:
    """The quarantined rows of the silver ``table`` on the given days, from the same version as its silver rows."""
    days = list(days)
    if not days or not is_table(table):
        return spark.createDataFrame([], schema)
    df = _load(spark, table, version).where(_days_predicate(days)).where(F.col(QUARANTINED))
    return df.select(f"{QUARANTINE}.*", "date").select(*schema.names)


_GLOB_CHARACTER = re.compile(r"[*?\[\]{}\\]")


def glob_escaped(path: Path) -> str:
    """``path`` as Spark's readers take it: they read paths as glob patterns, so a name's own glob characters are
    escaped."""
    return _GLOB_CHARACTER.sub(r"\\\g<0>", str(path))


def read_commit(spark: SparkSession, commit: DeltaCommit, schema: StructType) -> DataFrame:
    """The rows ``commit`` added (``schema`` includes ``date``), read from the Parquet files its add actions list:
    the version's rows of the days it replaced, without computing the table's snapshot at that version as
    ``read_days`` does (~1.2 s of a short run's step). For a table no later step reads."""
    files = [glob_escaped(f) for day_files in commit.files_by_day.values() for f in day_files]
    if not files:
        return spark.createDataFrame([], schema)
    # The partition values are in the files' folder names (date=D), read as Spark's partition columns.
    return spark.read.schema(schema).option("basePath", str(commit.table)).parquet(*files).select(*schema.names)


def days_with_rows(spark: SparkSession, table: Path, among: Iterable[date] | None = None) -> list[date]:
    """The days holding rows in the table's current version (only ``among`` these days if given: a scan of
    their partitions, not of the whole table), oldest first."""
    among = None if among is None else list(among)
    if not is_table(table) or among == []:
        return []
    df = _load(spark, table, None)
    if among is not None:
        df = df.where(_days_predicate(among))
    return sorted(r["date"] for r in df.select("date").distinct().collect())


def day_range(spark: SparkSession, table: Path) -> tuple[date | None, date | None]:
    """The oldest and newest day holding rows in the table's current version (Delta answers from its log)."""
    if not is_table(table):
        return None, None
    first, last = _load(spark, table, None).agg(F.min("date"), F.max("date")).first()
    return first, last


def replace_days(df: DataFrame, table: Path, days: Iterable[date], days_together: bool = False) -> DeltaCommit:
    """Replace exactly ``days`` of ``table`` with ``df`` (rows of those days only) in one Delta commit.
    ``days_together``: each day's rows of ``df`` are in one partition already, so they are written as they are."""
    return _replace(df, table, sorted(set(days)), ["date"], days_together)


def replace_silver_days(
    rows: DataFrame,
    silver: dict[str, Column],
    quarantine: dict[str, Column],
    quarantined: Column,
    table: Path,
    days: Iterable[date],
) -> DeltaCommit:
    """Replace exactly ``days`` of the silver ``table`` in ONE commit with ``rows``, each a silver row (its
    ``silver`` columns) or, where ``quarantined``, a quarantined one (its ``quarantine`` columns): one pass
    over ``rows`` writes both sides."""
    quarantine_struct = F.struct(*[column.alias(name) for name, column in quarantine.items()])
    both = rows.select(
        *[F.when(~quarantined, column).alias(name) for name, column in silver.items()],
        F.when(quarantined, quarantine_struct).alias(QUARANTINE),
        quarantined.alias(QUARANTINED),
        "date",
    )
    return _replace(both, table, sorted(set(days)), ["date", QUARANTINED])


def _replace(
    df: DataFrame, table: Path, days: list[date], partition_by: list[str], days_together: bool = False
) -> DeltaCommit:
    spark = df.sparkSession
    # The commit is found again in the history by this tag, even if another run committed other days meanwhile.
    tag = json.dumps({"replaced": f"{days[0]}..{days[-1]}", "write": uuid.uuid4().hex})
    (
        (df if days_together else df.repartition("date"))
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", _days_predicate(days))
        .option("mergeSchema", "true")  # an added column is allowed; a changed type still fails the run
        .option("userMetadata", tag)
        .partitionBy(*partition_by)
        .save(str(table))
    )
    version, info, added = _find_commit(table, tag)
    counts = _rows_added(added)
    if counts is None:  # no row counts in the log (statistics turned off): count the version written
        side = F.col(QUARANTINED) if QUARANTINED in partition_by else F.lit(False)
        written = _load(spark, table, version).where(_days_predicate(days))
        counts = {(r["date"], r["q"]): r["count"] for r in written.groupBy("date", side.alias("q")).count().collect()}
    return DeltaCommit(
        table=table,
        version=version,
        operation=info["operation"],
        files_added=int(info.get("operationMetrics", {}).get("numFiles", 0)),
        rows_by_day={d: counts.get((d, False), 0) for d in days},
        quarantined_by_day={d: counts.get((d, True), 0) for d in days} if QUARANTINED in partition_by else {},
        files_by_day=_files_added(table, added),
    )


def _find_commit(table: Path, tag: str) -> tuple[int, dict, list[dict]]:
    """The version, commitInfo and add actions of the commit tagged ``tag``, read from the log's JSON files
    (the Delta protocol's own record of it) instead of a DESCRIBE HISTORY and a count, which cost Spark jobs."""
    for path in _commit_logs(table)[:50]:
        actions = [json.loads(line) for line in path.read_text().splitlines() if line]
        info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
        if info.get("userMetadata") == tag:
            return int(path.stem), info, [a["add"] for a in actions if "add" in a]
    raise RuntimeError(f"the commit tagged {tag} is not among the last 50 of {table}")


def _rows_added(added: list[dict]) -> dict[tuple[date, bool], int] | None:
    """Rows per (day, quarantined) from the files a replacement added, or None when a file has no row count.
    A replacement rewrites its days whole, so the files it added are all their rows."""
    counts: dict[tuple[date, bool], int] = {}
    for add in added:
        records = json.loads(add.get("stats") or "{}").get("numRecords")
        if records is None:
            return None
        partition = add["partitionValues"]
        key = (date.fromisoformat(partition["date"]), partition.get(QUARANTINED) == "true")
        counts[key] = counts.get(key, 0) + records
    return counts


def _files_added(table: Path, added: list[dict]) -> dict[date, list[Path]]:
    files: dict[date, list[Path]] = {}
    for add in added:
        partition = add["partitionValues"]
        if partition.get(QUARANTINED) != "true":
            # Add actions hold paths relative to the table, URL-encoded.
            files.setdefault(date.fromisoformat(partition["date"]), []).append(table / unquote(add["path"]))
    return files


def maintain(spark: SparkSession, table: Path) -> dict[str, int]:
    """OPTIMIZE, then VACUUM with the session's retention; what each did."""
    optimized = spark.sql(f"OPTIMIZE {_sql_path(table)}").first()["metrics"]
    hours = int(spark.conf.get(VACUUM_RETENTION_CONF, "168"))
    spark.sql(f"VACUUM {_sql_path(table)} RETAIN {hours} HOURS").collect()
    history = spark.sql(f"DESCRIBE HISTORY {_sql_path(table)} LIMIT 5").collect()
    vacuumed = next((h["operationMetrics"] for h in history if h["operation"] == "VACUUM END"), {})
    return {
        "optimize_files_removed": optimized["numFilesRemoved"],
        "optimize_files_added": optimized["numFilesAdded"],
        "vacuum_files_deleted": int(vacuumed.get("numDeletedFiles", 0)),
    }
