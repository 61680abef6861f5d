"""What an asset shows in the Dagster UI: its column schema and a preview of rows."""

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema
from pyspark.sql import DataFrame
from pyspark.sql.types import StructType


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


def materialization_metadata(df: DataFrame, table: Path, rows: int, **extra) -> dict:
    return {
        "dagster/row_count": rows,
        "path": MetadataValue.path(str(table)),
        "preview": preview(df),
        **extra,
    }
