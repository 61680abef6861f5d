"""Reading and replacing daily partitions of the lake's Parquet tables with Spark.

Every table is partitioned by a ``date`` column (``<table>/date=YYYY-MM-DD/``). Replacing days
uses dynamic partition overwrite: Spark writes into a staging folder and swaps whole day folders
in at commit, so a killed run never leaves a half-written day visible.
"""

import shutil
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from trybank_assets.lake_layout import day_dir


def read_days(spark: SparkSession, table: Path, days: Iterable[date], schema: StructType) -> DataFrame:
    """The given days of ``table`` (``schema`` includes the ``date`` partition column).

    Days never materialized are simply absent.
    """
    paths = [str(day_dir(table, d)) for d in days if day_dir(table, d).is_dir()]
    if not paths:
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).option("basePath", str(table)).parquet(*paths).select(*schema.names)


def overwrite_days(df: DataFrame, table: Path, days: Iterable[date]) -> dict[date, int]:
    """Replace exactly ``days`` of ``table`` with ``df`` (which holds rows of those days only).

    Returns the rows written per day. A day with no rows is removed, since dynamic overwrite
    only touches the days it writes.
    """
    days = sorted(set(days))
    counts = {row["date"]: row["count"] for row in df.groupBy("date").count().collect()}
    stray = set(counts) - set(days)
    if stray:
        raise ValueError(f"rows outside the run's days {days[0]}..{days[-1]}: {sorted(stray)}")
    df.write.mode("overwrite").partitionBy("date").parquet(str(table))
    for d in days:
        if d not in counts and day_dir(table, d).exists():
            shutil.rmtree(day_dir(table, d))
    return {d: counts.get(d, 0) for d in days}
