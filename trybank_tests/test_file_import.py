import csv
import json
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import materialize
from typer.testing import CliRunner

from trybank_assets.assets.silver import SILVER_SCHEMA, silver_transactions
from trybank_assets.cli import app
from trybank_assets.file_import import ColumnMapping, ImportFileError, import_file
from trybank_assets.lib.spark_tables import read_days
from trybank_assets.resources.lake import LakeResource
from trybank_assets.settings import get_settings

MAPPING = ColumnMapping(
    columns={
        "event_time": "TX_DATETIME",
        "customer_id": "CUSTOMER_ID",
        "terminal_id": "TERMINAL_ID",
        "amount": "TX_AMOUNT",
        "is_fraud": "TX_FRAUD",
    }
)
GOOD = [
    {"TX_DATETIME": "2026-03-10 00:00:31", "CUSTOMER_ID": 596, "TERMINAL_ID": 3156, "TX_AMOUNT": 57.16, "TX_FRAUD": 0},
    {
        "TX_DATETIME": "2026-03-10T23:30:00+02:00",
        "CUSTOMER_ID": 2,
        "TERMINAL_ID": 13,
        "TX_AMOUNT": 146.0,
        "TX_FRAUD": 1,
    },
    {"TX_DATETIME": "2026-03-11 08:00:00", "CUSTOMER_ID": 2, "TERMINAL_ID": 13, "TX_AMOUNT": 3.5, "TX_FRAUD": 0},
]
BAD = [
    (
        {"TX_DATETIME": "2026-03-10 01:00:00", "CUSTOMER_ID": 7, "TERMINAL_ID": 1, "TX_AMOUNT": -3, "TX_FRAUD": 0},
        "positive",
    ),
    ({"TX_DATETIME": "yesterday", "CUSTOMER_ID": 7, "TERMINAL_ID": 1, "TX_AMOUNT": 3, "TX_FRAUD": 0}, "ISO-8601"),
    (
        {"TX_DATETIME": "2026-03-10 01:00:00", "CUSTOMER_ID": None, "TERMINAL_ID": 1, "TX_AMOUNT": 3, "TX_FRAUD": 0},
        "missing customer_id",
    ),
    (
        {"TX_DATETIME": "2026-03-10 01:00:00", "CUSTOMER_ID": 7, "TERMINAL_ID": 1, "TX_AMOUNT": 1.234, "TX_FRAUD": 0},
        "two decimals",
    ),
    (
        {"TX_DATETIME": "2026-03-10 01:00:00", "CUSTOMER_ID": 7, "TERMINAL_ID": 1, "TX_AMOUNT": 3, "TX_FRAUD": "maybe"},
        "boolean",
    ),
]
ROWS = GOOD + [row for row, _ in BAD]


def _write(path, fmt: str):
    if fmt == "csv":
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(ROWS[0]))
            writer.writeheader()
            writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in ROWS)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    else:
        columns = {k: [r[k] for r in ROWS] for k in ROWS[0]}
        columns["TX_FRAUD"] = [str(v) for v in columns["TX_FRAUD"]]
        pq.write_table(pa.table(columns), path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_import_maps_splits_by_day_and_rejects_with_line_and_reason(tmp_path, fmt):
    lake = LakeResource(root=str(tmp_path / "lake"))
    source = _write(tmp_path / f"history.{fmt}", fmt)
    summary = import_file(source, lake, "partner", MAPPING)

    assert (summary.rows_read, summary.accepted, summary.rejected) == (8, 3, 5)
    assert summary.days == {"2026-03-10", "2026-03-11"}
    first_line = 2 if fmt == "csv" else 1  # CSV line 1 is the header
    with open(summary.reject_file) as fh:
        rejects = list(csv.DictReader(fh))
    for i, (reject, (_, reason)) in enumerate(zip(rejects, BAD, strict=True)):
        assert reject["line"] == str(first_line + len(GOOD) + i)
        assert reason in reject["reason"]
        assert reject["file"] == str(source)

    day = lake.bronze_source_dir(date(2026, 3, 10), "import-partner")
    records = [json.loads(line) for f in day.glob("*.jsonl") for line in f.read_text().splitlines()]
    assert [r["customer_id"] for r in records] == ["596", "2"]  # integer ids become strings
    assert records[0]["event_time"] == "2026-03-10T00:00:31.000Z"  # naive means UTC
    assert records[1]["event_time"] == "2026-03-10T21:30:00.000Z"  # offsets converted to UTC
    assert [r["is_fraud"] for r in records] == [False, True]
    assert records[0]["merchant_country"] is None and records[0]["currency"] == "EUR"


def test_reimporting_the_same_file_writes_the_same_bytes(tmp_path):
    lake = LakeResource(root=str(tmp_path / "lake"))
    source = _write(tmp_path / "history.csv", "csv")
    first = import_file(source, lake, "partner", MAPPING)
    contents = {f: f.read_bytes() for f in first.bronze_files}
    second = import_file(source, lake, "partner", MAPPING)
    assert {f: f.read_bytes() for f in second.bronze_files} == contents
    assert len(list((tmp_path / "lake").rglob("*.jsonl"))) == 2


def test_a_mapping_naming_a_missing_column_is_refused(tmp_path):
    lake = LakeResource(root=str(tmp_path / "lake"))
    source = _write(tmp_path / "history.csv", "csv")
    bad = ColumnMapping(columns={**MAPPING.columns, "amount": "AMOUNT_EUR"})
    with pytest.raises(ImportFileError, match="AMOUNT_EUR"):
        import_file(source, lake, "partner", bad)
    assert not (tmp_path / "lake").exists()


def test_imported_rows_flow_into_silver(tmp_path, spark, resources, lake_root, instance):
    lake = LakeResource(root=str(lake_root))
    import_file(_write(tmp_path / "history.jsonl", "jsonl"), lake, "partner", MAPPING)
    result = materialize([silver_transactions], resources=resources, partition_key="2026-03-10", instance=instance)
    assert result.success
    silver = read_days(spark, lake.silver_transactions, [date(2026, 3, 10)], SILVER_SCHEMA).collect()
    assert sorted(r["customer_id"] for r in silver) == ["2", "596"]
    assert {r["source"] for r in silver} == {"import-partner"}


def test_cli_ingest_with_a_yaml_mapping(tmp_path, monkeypatch):
    monkeypatch.setenv("TRYBANK_LAKE_ROOT", str(tmp_path / "lake"))
    get_settings.cache_clear()
    source = _write(tmp_path / "history.csv", "csv")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("name: partner\ncolumns:\n" + "".join(f"  {k}: {v}\n" for k, v in MAPPING.columns.items()))
    try:
        result = CliRunner().invoke(app, ["ingest", str(source), "--mapping", str(mapping)])
        bad = CliRunner().invoke(app, ["ingest", str(source), "--map", "amount"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "rows read 8, accepted 3, rejected 5, days touched 2" in result.output
    assert f"{source}:{2 + len(GOOD)}: amount must be positive" in result.output
    assert bad.exit_code == 2 and "FIELD=COLUMN" in bad.output
