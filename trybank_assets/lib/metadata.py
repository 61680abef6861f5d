"""What an asset shows in the Dagster UI: its column schema, a preview of rows, the Delta commit it made."""

import json
from datetime import date, datetime
from decimal import Decimal

from dagster import AssetExecutionContext, MetadataValue, TableColumn, TableRecord, TableSchema
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from trybank_assets.lib.spark_tables import DeltaCommit


def table_schema(schema: StructType, descriptions: dict[str, str] | None = None) -> TableSchema:
    descriptions = descriptions or {}
    return TableSchema(
        columns=[
            TableColumn(f.name, f.dataType.simpleString(), description=descriptions.get(f.name)) for f in schema.fields
        ]
    )


def _cell(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)[:200]
    return value


def previews_by_day(df: DataFrame, rows_by_day: dict[date, int], limit: int = 5) -> dict[date, MetadataValue]:
    """Up to ``limit`` rows of each day in one Spark job: a hash sample thin enough to keep the sort
    small on a long range, thick enough that the smallest day still shows rows."""
    busy = [n for n in rows_by_day.values() if n]
    if not busy:
        return {}
    keep_one_in = max(1, min(busy) // (limit * 4))
    first = df.columns[0]
    by_day = Window.partitionBy("date").orderBy(first)
    sample = (
        df.where(F.pmod(F.xxhash64(first), F.lit(keep_one_in)) == 0)
        .withColumn("_n", F.row_number().over(by_day))
        .where(F.col("_n") <= limit)
        .drop("_n")
        .collect()
    )
    schema = TableSchema(columns=[TableColumn(f.name, f.dataType.simpleString()) for f in df.schema.fields])
    records: dict[date, list[TableRecord]] = {}
    for row in sample:
        records.setdefault(row["date"], []).append(TableRecord({k: _cell(v) for k, v in row.asDict().items()}))
    return {day: MetadataValue.table(records=rows, schema=schema) for day, rows in records.items()}


def materialization_metadata(context: AssetExecutionContext, df: DataFrame, commit: DeltaCommit, **extra) -> dict:
    """Each day of the run gets its own materialization metadata (row count, preview, where it is), and
    the returned run-level metadata is shared by every day: ``commit`` names the table version the run
    wrote (a range run is one commit), ``run_rows`` the run's total, never labelled a day's row count."""
    previews = previews_by_day(df, commit.rows_by_day)
    for day, rows in commit.rows_by_day.items():
        context.add_asset_metadata(
            {
                "dagster/row_count": rows,
                "partition_filter": f"date = '{day.isoformat()}'",
                **({"preview": previews[day]} if day in previews else {}),
            },
            partition_key=day.isoformat(),
        )
    maintenance = {"delta_maintenance": MetadataValue.json(commit.maintenance)} if commit.maintenance else {}
    return {
        "run_rows": sum(commit.rows_by_day.values()),
        "path": MetadataValue.path(str(commit.table)),
        "delta_version": commit.version,
        "delta_operation": commit.operation,
        "delta_files_added": commit.files_added,
        **maintenance,
        **extra,
    }
