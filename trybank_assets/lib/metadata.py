"""What an asset shows in the Dagster UI: its column schema, a preview of rows, the Delta commit it made."""

import json
from datetime import date, datetime
from decimal import Decimal

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema
from pyspark.sql import DataFrame
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


def preview(df: DataFrame, limit: int = 5) -> MetadataValue:
    rows = df.limit(limit).collect()
    schema = TableSchema(columns=[TableColumn(f.name, f.dataType.simpleString()) for f in df.schema.fields])
    return MetadataValue.table(
        records=[TableRecord({k: _cell(v) for k, v in row.asDict().items()}) for row in rows], schema=schema
    )


def materialization_metadata(df: DataFrame, commit: DeltaCommit, rows: int, **extra) -> dict:
    """``commit`` names the table version a run wrote: every day of a range run shares it (one commit)."""
    maintenance = {"delta_maintenance": MetadataValue.json(commit.maintenance)} if commit.maintenance else {}
    return {
        "dagster/row_count": rows,
        "path": MetadataValue.path(str(commit.table)),
        "delta_version": commit.version,
        "delta_operation": commit.operation,
        "delta_files_added": commit.files_added,
        **maintenance,
        "preview": preview(df),
        **extra,
    }
