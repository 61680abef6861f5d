import csv
import gzip
import json
import tracemalloc
import uuid
from datetime import date
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import materialize
from typer.testing import CliRunner

from trybank_assets.assets.silver import SILVER_SCHEMA, silver_transactions
from trybank_assets.bronze_contract import RULES, RecordRejected, format_event_time, parse_event_time
from trybank_assets.cli import app
from trybank_assets.file_import import (
    MAX_LINE_LENGTH,
    ColumnMapping,
    ImportFileError,
    ImportOptions,
    import_file,
)
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
        "amount_negative",
    ),
    (
        {"TX_DATETIME": "yesterday", "CUSTOMER_ID": 7, "TERMINAL_ID": 1, "TX_AMOUNT": 3, "TX_FRAUD": 0},
        "invalid_event_time",
    ),
    (
        {"TX_DATETIME": "2026-03-10 01:00:00", "CUSTOMER_ID": None, "TERMINAL_ID": 1, "TX_AMOUNT": 3, "TX_FRAUD": 0},
        "missing_customer_id",
    ),
    (
        {"TX_DATETIME": "2026-03-10 01:00:00", "CUSTOMER_ID": 7, "TERMINAL_ID": 1, "TX_AMOUNT": 1.234, "TX_FRAUD": 0},
        "amount_sub_cent",
    ),
    (
        {"TX_DATETIME": "2026-03-10 01:00:00", "CUSTOMER_ID": 7, "TERMINAL_ID": 1, "TX_AMOUNT": 3, "TX_FRAUD": "maybe"},
        "invalid_is_fraud",
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
        assert reject["rule"] == reason
        assert reject["reason"].startswith(RULES[reason])
        assert reject["file"] == str(source)

    day = lake.bronze_source_dir(date(2026, 3, 10), "import-partner")
    records = [json.loads(line) for f in day.glob("*.jsonl") for line in f.read_text().splitlines()]
    assert [r["customer_id"] for r in records] == ["596", "2"]  # integer ids become strings
    assert records[0]["event_time"] == "2026-03-10T00:00:31.000000Z"  # naive means UTC
    assert records[1]["event_time"] == "2026-03-10T21:30:00.000000Z"  # offsets converted to UTC
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


def _awkward_file(path, fmt: str, rows: int = 60):
    """``rows`` rows of GOOD and BAD, with what a reader must carry across batches: CSV records over several
    lines, blank lines, rows with a field missing, lines that are not JSON."""
    records = [dict(ROWS[i % len(ROWS)], CUSTOMER_ID=i) for i in range(rows)]
    if fmt == "parquet":
        pq.write_table(pa.table({k: [str(r[k]) for r in records] for k in records[0]}), path, row_group_size=11)
    elif fmt == "csv":
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(list(records[0]))
            for i, r in enumerate(records):
                values = ["" if v is None else v for v in r.values()]
                if i % 5 == 0:
                    values[2] = f"{values[2]}\n"  # a quoted value with a line break: one record, two lines
                if i % 9 == 0:
                    fh.write("\n")
                writer.writerow(values[:3] if i % 13 == 0 else values)
    else:
        lines = [
            ("{not json" if i % 11 == 0 else json.dumps(r)) + ("\n\n" if i % 7 == 0 else "\n")
            for i, r in enumerate(records)
        ]
        path.write_text(json.dumps(records[0]) + "\n" + "".join(lines))
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_converting_in_several_processes_writes_what_one_process_writes(tmp_path, monkeypatch, fmt):
    monkeypatch.setattr("trybank_assets.file_import._BATCH_ROWS", 8)  # many batches from a small file
    source = _awkward_file(tmp_path / f"history.{fmt}", fmt)
    written = {}
    for workers in (1, 2):
        lake = LakeResource(root=str(tmp_path / f"lake-{workers}"))
        summary = import_file(source, lake, "partner", MAPPING, options=ImportOptions(workers=workers))
        files = sorted(p for p in (tmp_path / f"lake-{workers}").rglob("*") if p.is_file())
        written[workers] = (
            summary.line(),
            {p.relative_to(tmp_path / f"lake-{workers}"): p.read_bytes() for p in files},
        )
    assert written[1] == written[2]
    line, files = written[1]
    assert "rejected 0" not in line and "accepted 0" not in line
    assert len(files) == 3  # two days of bronze, the rejects


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_batches_cut_by_size_write_what_one_batch_writes(tmp_path, monkeypatch, fmt):
    source = _awkward_file(tmp_path / f"history.{fmt}", fmt)
    written = []
    for batch_bytes in (32 << 20, 100):  # one batch; a batch every row or two
        monkeypatch.setattr("trybank_assets.file_import._BATCH_BYTES", batch_bytes)
        root = tmp_path / f"lake-{batch_bytes}"
        summary = import_file(
            source, LakeResource(root=str(root)), "partner", MAPPING, options=ImportOptions(workers=2)
        )
        files = sorted(p for p in root.rglob("*") if p.is_file())
        written.append((summary.line(), {p.relative_to(root): p.read_bytes() for p in files}))
    assert written[0] == written[1]


def test_a_json_line_too_long_to_read_is_a_rejected_row_read_past_in_bounded_memory(tmp_path):
    source = tmp_path / "history.jsonl"
    long_value = "x" * (MAX_LINE_LENGTH // 4)
    with open(source, "w") as fh:
        fh.write(json.dumps(GOOD[0]) + "\n")
        fh.write('{"TX_DATETIME": "' + long_value * 96 + '"}\n')  # 24 times the limit
        fh.write(json.dumps(GOOD[2]) + "\n")
        fh.write('{"TX_DATETIME": "' + long_value * 8)  # the last line, without its end
    tracemalloc.start()
    try:
        summary = import_file(source, LakeResource(root=str(tmp_path / "lake")), "partner", MAPPING)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 * MAX_LINE_LENGTH  # the longest line alone is 24 times the limit
    assert (summary.rows_read, summary.accepted, summary.rejected) == (4, 2, 2)
    assert [r.split(": ", 1)[0].rsplit(":", 1)[1] for r in summary.first_rejects] == ["2", "4"]
    assert all(f"a line longer than {MAX_LINE_LENGTH:,} bytes" in r for r in summary.first_rejects)


def test_a_csv_line_too_long_to_read_is_an_error_naming_the_file_and_its_line(tmp_path):
    source = tmp_path / "history.csv"
    source.write_text(f"{','.join(ROWS[0])}\n2026-03-10 07:00:00,1,2,3.5,0\n{'9' * (MAX_LINE_LENGTH + 1)},1,2,3.5,0\n")
    lake = LakeResource(root=str(tmp_path / "lake"))
    with pytest.raises(ImportFileError, match=f"^{source}:3: cannot read on from here .*line 3 is longer than"):
        import_file(source, lake, "partner", MAPPING)
    header_only = tmp_path / "header.csv"
    header_only.write_text("A" * (MAX_LINE_LENGTH + 1))
    with pytest.raises(ImportFileError, match=f"^{header_only}:1: cannot read the header line"):
        import_file(header_only, lake, "partner", MAPPING)


EVENT_TIMES = [
    "2026-03-10 08:00:00",
    "2026-03-10T08:00:00",
    "2026-03-10 08:00:00.123456",
    "2026-03-10T08:00:00Z",
    "2026-03-10T08:00:00.000001Z",
    "2026-03-10 08:00:00Z",
    "2026-03-10T23:30:00+02:00",
    "2026-03-10T08:00:00.5",
    "2026-03-10 08:00",
    "20260310T080000",
    "2026-02-30 08:00:00",
    "2026-03-10 24:00:00",
    "2026-03-10 08:00:60",
    "2026-03-10T08:00:00ZZ",
    "\uff12026-03-10 08:00:00",  # a full-width digit
    "2026-03-10T08:00:00.123Z",
]


@pytest.mark.parametrize("zone", ["UTC", "Europe/Amsterdam"])
def test_event_times_are_written_as_the_contract_formats_them(tmp_path, zone):
    source = tmp_path / "times.csv"
    source.write_text(
        "TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT\n" + "".join(f"{t},1,2,3.5\n" for t in EVENT_TIMES)
    )
    mapping = ColumnMapping({k: v for k, v in MAPPING.columns.items() if k != "is_fraud"})
    lake = LakeResource(root=str(tmp_path / "lake"))
    summary = import_file(source, lake, "partner", mapping, options=ImportOptions(naive_zone=ZoneInfo(zone)))

    expected = {}
    for text in EVENT_TIMES:
        try:
            expected[text] = format_event_time(parse_event_time(text, ZoneInfo(zone)))
        except RecordRejected:
            continue
    assert sorted(r["event_time"] for r in _bronze_records(tmp_path / "lake")) == sorted(expected.values())
    assert summary.rejected == len(EVENT_TIMES) - len(expected) > 0


def test_a_quote_never_closed_is_an_error_naming_the_file_and_its_line(tmp_path):
    source = tmp_path / "history.csv"
    rest = "".join(f"2026-03-10 08:00:{i % 60:02d},1,2,3.5,0\n" for i in range(10_000))
    source.write_text(f'{",".join(ROWS[0])}\n2026-03-10 07:00:00,1,2,3.5,0\n2026-03-10 08:00:00,1,2,"3.5,0\n{rest}')
    lake = LakeResource(root=str(tmp_path / "lake"))
    with pytest.raises(ImportFileError, match=f"^{source}:3: cannot read on from here .*field larger than field limit"):
        import_file(source, lake, "partner", MAPPING)


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
    # 5 of 8 rows rejected: above the default --max-reject-rate of 1%, so the exit code says so,
    # after the accepted rows were written and the summary printed.
    assert result.exit_code == 1, result.output
    assert "rows read 8, accepted 3, rejected 5, days touched 2" in result.output
    assert f"{source}:{2 + len(GOOD)}: amount_negative: amount is negative" in result.output
    assert "above --max-reject-rate" in result.output
    assert len(list((tmp_path / "lake").rglob("part-*.jsonl"))) == 2
    assert bad.exit_code == 2 and "FIELD=COLUMN" in bad.output


BANK_EXPORT_HEADER = [
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "CCY",
    "CHANNEL",
    "TX_FRAUD",
]
# A bank's export as it comes: float64 artefacts, zero amounts, naive local times, its own ids,
# any currency, its own channel names. Only the last three rows are genuinely bad.
BANK_EXPORT = [
    ["A1", "2026-03-10 00:30:00", "596", "3156", "85.64999999999999", "EUR", "pos", "1"],
    ["11919", "2026-03-10 12:00:00", "596", "3156", "0.0", "EUR", "card_verification", "0"],
    ["b2", "2026-03-10 13:00:00", "2", "13", "12.340000001", "JPY", "Contactless", "0"],
    ["5b6f1c1e-8f1e-4a43-9f0c-6f9d2c1b7a10", "2026-03-11 09:00:00", "2", "13", "5e-324", "usd", "ecommerce", "0"],
    ["bad1", "2026-03-10 14:00:00", "3", "13", "12.345", "EUR", "pos", "0"],
    ["bad2", "2026-03-10 15:00:00", "3", "13", "-1.00", "EUR", "pos", "0"],
    ["bad3", "2025-12-31 15:00:00", "3", "13", "1.00", "EUR", "pos", "0"],
]
BANK_MAP = [
    "transaction_id=TRANSACTION_ID",
    "event_time=TX_DATETIME",
    "customer_id=CUSTOMER_ID",
    "terminal_id=TERMINAL_ID",
    "amount=TX_AMOUNT",
    "currency=CCY",
    "channel=CHANNEL",
    "is_fraud=TX_FRAUD",
]


def _bank_export_csv_gz(path):
    with gzip.open(path, "wt", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(BANK_EXPORT_HEADER)
        writer.writerows(BANK_EXPORT)
    return path


def _ingest(lake_root, *args):
    """`trybank ingest` as a user runs it, on a lake whose partitions start 2026-01-01."""
    env = {"TRYBANK_LAKE_ROOT": str(lake_root), "TRYBANK_PARTITIONS_START": "2026-01-01"}
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, ["ingest", *[str(a) for a in args]], env=env)
    finally:
        get_settings.cache_clear()


def _bronze_records(lake_root) -> list[dict]:
    files = sorted((lake_root / "bronze" / "transactions").rglob("part-*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def test_a_bank_export_csv_gz_loses_only_the_genuinely_bad_rows(tmp_path):
    lake_root = tmp_path / "lake"
    source = _bank_export_csv_gz(tmp_path / "history.csv.gz")
    maps = [a for m in BANK_MAP for a in ("--map", m)]
    result = _ingest(lake_root, source, *maps, "--timezone", "Europe/Amsterdam", "--max-reject-rate", "0.5")

    assert result.exit_code == 0, result.output
    assert "rows read 7, accepted 4, rejected 3" in result.output
    assert f"{source}:6: amount_sub_cent" in result.output
    assert f"{source}:7: amount_negative" in result.output
    assert f"{source}:8: event_time_before_partitions_start" in result.output
    by_source_id = {r["source_transaction_id"]: r for r in _bronze_records(lake_root)}
    assert set(by_source_id) == {"A1", "11919", "b2", "5b6f1c1e-8f1e-4a43-9f0c-6f9d2c1b7a10"}
    assert [by_source_id[i]["amount"] for i in ("A1", "11919", "b2")] == [85.65, 0.0, 12.34]
    assert by_source_id["5b6f1c1e-8f1e-4a43-9f0c-6f9d2c1b7a10"]["amount"] == 0.0
    # Naive times are Amsterdam local time (UTC+1 in March): 00:30 local is the previous UTC day.
    assert by_source_id["A1"]["event_time"] == "2026-03-09T23:30:00.000000Z"
    assert (by_source_id["b2"]["currency"], by_source_id["b2"]["channel"]) == ("JPY", "contactless")
    assert by_source_id["11919"]["channel"] == "card_verification"
    # The bank's id is kept; a UUID id is the transaction_id itself, others get a stable UUID.
    assert by_source_id["5b6f1c1e-8f1e-4a43-9f0c-6f9d2c1b7a10"]["transaction_id"] == (
        "5b6f1c1e-8f1e-4a43-9f0c-6f9d2c1b7a10"
    )
    first_ids = {r["transaction_id"] for r in by_source_id.values()}
    assert (
        _ingest(lake_root, source, *maps, "--timezone", "Europe/Amsterdam", "--max-reject-rate", "0.5").exit_code == 0
    )
    assert {r["transaction_id"] for r in _bronze_records(lake_root)} == first_ids


def test_max_reject_rate_fails_the_command_after_writing_what_was_accepted(tmp_path):
    lake_root = tmp_path / "lake"
    source = _bank_export_csv_gz(tmp_path / "history.csv.gz")
    maps = [a for m in BANK_MAP for a in ("--map", m)]
    result = _ingest(lake_root, source, *maps, "--max-reject-rate", "0.4")
    assert result.exit_code == 1
    assert "42.86% of the rows were rejected, above --max-reject-rate 40.00%" in result.output
    assert len(_bronze_records(lake_root)) == 4


@pytest.mark.parametrize("name", ["history.jsonl.gz", "history.export"])
def test_gzip_json_lines_by_suffix_or_with_format(tmp_path, name):
    source = tmp_path / name
    with gzip.open(source, "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in GOOD)
    args = [] if name.endswith(".jsonl.gz") else ["--format", "jsonl"]
    maps = [a for f, c in MAPPING.columns.items() for a in ("--map", f"{f}={c}")]
    result = _ingest(tmp_path / "lake", source, *maps, *args)
    assert result.exit_code == 0, result.output
    assert "rows read 3, accepted 3, rejected 0" in result.output


def test_bytes_that_are_not_utf8_are_a_rejected_line_not_a_traceback(tmp_path):
    source = tmp_path / "history.jsonl"
    source.write_bytes(json.dumps(GOOD[0]).encode() + b"\n" + b'{"TX_DATETIME": "\xff\xfe"}\n')
    summary = import_file(source, LakeResource(root=str(tmp_path / "lake")), "partner", MAPPING)
    assert (summary.accepted, summary.rejected) == (1, 1)
    assert "malformed JSON" in summary.first_rejects[0] and ":2:" in summary.first_rejects[0]


def test_a_source_id_with_a_lone_surrogate_is_imported_not_a_traceback(tmp_path):
    """A JSON escape of half a surrogate pair decodes to text that UTF-8 cannot encode."""
    source = tmp_path / "history.jsonl"
    rows = [GOOD[0] | {"ID": "bank-1"}, GOOD[0] | {"ID": "bank-\ud800"}]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lake = LakeResource(root=str(tmp_path / "lake"))
    mapping = ColumnMapping(columns=MAPPING.columns | {"transaction_id": "ID"})
    summary = import_file(source, lake, "partner", mapping)
    assert (summary.accepted, summary.rejected) == (2, 0)
    day = lake.bronze_source_dir(date(2026, 3, 10), "import-partner")
    records = [json.loads(line) for f in day.glob("*.jsonl") for line in f.read_text().splitlines()]
    assert [r["source_transaction_id"] for r in records] == ["bank-1", "bank-\ud800"]
    assert len({str(uuid.UUID(r["transaction_id"])) for r in records}) == 2


def test_an_unknown_time_zone_is_refused_by_name(tmp_path):
    result = _ingest(tmp_path / "lake", _write(tmp_path / "history.csv", "csv"), "--timezone", "Mars/Olympus")
    assert result.exit_code == 2
    assert "Mars/Olympus" in result.output


def test_time_format_reads_non_iso_timestamps(tmp_path):
    source = tmp_path / "history.csv"
    source.write_text("WHEN,CUSTOMER,TERMINAL,AMOUNT\n10/03/2026 14:05,C1,T1,3.50\n")
    mapping = ColumnMapping(
        columns={"event_time": "WHEN", "customer_id": "CUSTOMER", "terminal_id": "TERMINAL", "amount": "AMOUNT"}
    )
    options = ImportOptions(time_format="%d/%m/%Y %H:%M")
    summary = import_file(source, LakeResource(root=str(tmp_path / "lake")), "partner", mapping, options=options)
    assert summary.accepted == 1
    assert _bronze_records(tmp_path / "lake")[0]["event_time"] == "2026-03-10T14:05:00.000000Z"


def test_transaction_ids_are_those_earlier_versions_gave(tmp_path):
    """The ids are the idempotence key across versions: these are what the import wrote before issue 13."""
    summary = import_file(_write(tmp_path / "history.csv", "csv"), LakeResource(root=str(tmp_path)), "partner", MAPPING)
    records = [json.loads(line) for f in sorted(summary.bronze_files) for line in f.read_text().splitlines()]
    assert [r["transaction_id"] for r in records] == [
        "c9c472b6-d992-586d-9a53-9a52581be385",
        "9889c2c2-b47c-5679-b5af-921f1dfc4c2b",
        "186750ba-647a-53ae-9e42-5439a70760f8",
    ]


ID_NAMESPACE = uuid.UUID("6f1c9a52-3f7e-4b8e-9a51-6c2d7e0b4a10")
AWKWARD_MAPPING = ColumnMapping(
    columns={
        "transaction_id": "ID",
        "event_time": "WHEN",
        "customer_id": "CUSTOMER",
        "terminal_id": "LINE",
        "amount": "AMOUNT",
        "currency": "CCY",
        "merchant_country": "COUNTRY",
        "channel": "CHANNEL",
        "merchant_category": "MCC",
        "is_fraud": "FRAUD",
        "fraud_scenario": "SCENARIO",
    },
    defaults={"merchant_category": "general", "customer_country": "nl"},
)
# Values json.dumps escapes (non-ASCII, quotes, backslashes, control characters, DEL, a lone surrogate),
# source ids of every kind, offsets and fractions of a second; LINE is the row's line, for its id.
AWKWARD_ACCEPTED = [
    {"CUSTOMER": "Zoë Ångström", "FRAUD": 1, "SCENARIO": 'naïve “q” "q" \\ / x', "AMOUNT": "85.64999999999999"},
    {"CUSTOMER": 'tab\there "q" \x7f del', "FRAUD": "true", "SCENARIO": "a\x00\x1f\nb", "AMOUNT": 0.01, "CCY": "jpy"},
    {"CUSTOMER": "\ud800 lone", "FRAUD": 0, "SCENARIO": "not fraud, so dropped", "AMOUNT": 1000000, "COUNTRY": "de"},
    {"CUSTOMER": "rocket 🚀", "AMOUNT": "12", "ID": "A-17", "CHANNEL": "Contactless", "MCC": "Food & drink"},
    {
        "CUSTOMER": "c",
        "AMOUNT": 3.5,
        "ID": "{5B6F1C1E-8F1E-4A43-9F0C-6F9D2C1B7A10}",
        "WHEN": "2026-03-10T10:00:00+05:30",
    },
    {"CUSTOMER": "c", "AMOUNT": "7.10", "ID": "Ünïcode-id", "WHEN": "2026-03-10T10:00:00.123456"},
]
# Each breaks the first rule named and, after it, others: the first one in the contract's order is reported.
AWKWARD_REJECTED = [
    ({"CUSTOMER": None, "AMOUNT": None, "FRAUD": "maybe"}, "missing_customer_id"),
    ({"CUSTOMER": "c", "AMOUNT": "-1", "FRAUD": "maybe"}, "invalid_is_fraud"),
    ({"CUSTOMER": "c" * 65, "AMOUNT": "-1"}, "invalid_customer_id"),
    ({"CUSTOMER": "c", "AMOUNT": "1.001", "CCY": "EURO"}, "amount_sub_cent"),
    ({"CUSTOMER": "c", "AMOUNT": "1", "CCY": "EURO", "CHANNEL": "drop table;"}, "unknown_currency"),
    ({"CUSTOMER": "c", "AMOUNT": "1", "CHANNEL": "drop table;", "ID": "i" * 65}, "invalid_channel"),
    ({"CUSTOMER": "c", "AMOUNT": "1", "ID": "i" * 65}, "invalid_source_transaction_id"),
    ({"CUSTOMER": "c", "AMOUNT": "1", "WHEN": "2126-03-10 10:00:00"}, "event_time_in_future"),
]


def test_bronze_lines_and_ids_are_json_dumps_of_the_record(tmp_path):
    """Whatever the values, a line is json.dumps(record, separators=(",", ":")) and a row without a source id
    gets uuid5 over json.dumps([import name, line, record with an empty id], sort_keys=True): the import
    assembles both texts itself, so this pins them to what earlier versions wrote."""
    columns = dict.fromkeys(AWKWARD_MAPPING.columns.values())  # JSON lines take their columns from the first
    rows = [
        {**columns, "WHEN": "2026-03-10 09:00:00", **r} for r in AWKWARD_ACCEPTED + [r for r, _ in AWKWARD_REJECTED]
    ]
    source = tmp_path / "history.jsonl"
    source.write_text("".join(json.dumps({**row, "LINE": line}) + "\n" for line, row in enumerate(rows, start=1)))
    summary = import_file(source, LakeResource(root=str(tmp_path / "lake")), "partner", AWKWARD_MAPPING)

    assert (summary.accepted, summary.rejected) == (len(AWKWARD_ACCEPTED), len(AWKWARD_REJECTED))
    with open(summary.reject_file) as fh:
        assert [r["rule"] for r in csv.DictReader(fh)] == [rule for _, rule in AWKWARD_REJECTED]
    lines = [line for f in sorted(summary.bronze_files) for line in f.read_bytes().splitlines(keepends=True)]
    records = [json.loads(line) for line in lines]
    for line, record in zip(lines, records, strict=True):
        assert line == json.dumps(record, separators=(",", ":")).encode() + b"\n"
    by_line = {int(r["terminal_id"]): r for r in records}
    for line in (1, 2, 3):
        content = json.dumps(["partner", line, {**by_line[line], "transaction_id": ""}], sort_keys=True, default=str)
        assert by_line[line]["transaction_id"] == str(uuid.uuid5(ID_NAMESPACE, content))
    assert by_line[4]["transaction_id"] == str(uuid.uuid5(ID_NAMESPACE, "partner:A-17"))
    assert by_line[5]["transaction_id"] == "5b6f1c1e-8f1e-4a43-9f0c-6f9d2c1b7a10"
    assert by_line[6]["transaction_id"] == str(uuid.uuid5(ID_NAMESPACE, "partner:Ünïcode-id"))

    assert [by_line[i]["customer_id"] for i in (1, 3, 4)] == ["Zoë Ångström", "\ud800 lone", "rocket 🚀"]
    assert [by_line[i]["fraud_scenario"] for i in (1, 2, 3)] == ['naïve “q” "q" \\ / x', "a\x00\x1f\nb", None]
    assert [by_line[i]["amount"] for i in (1, 2, 3)] == [85.65, 0.01, 1_000_000.0]
    assert [by_line[i]["currency"] for i in (1, 2)] == ["EUR", "JPY"]
    assert (by_line[4]["channel"], by_line[4]["merchant_category"]) == ("contactless", "food & drink")
    assert (by_line[1]["merchant_category"], by_line[1]["customer_country"]) == ("general", "NL")
    assert by_line[5]["event_time"] == "2026-03-10T04:30:00.000000Z"
    assert by_line[6]["event_time"] == "2026-03-10T10:00:00.123456Z"


def test_an_event_time_before_the_year_1000_is_written_with_a_four_digit_year(tmp_path):
    source = tmp_path / "history.csv"
    source.write_text("WHEN,CUSTOMER,TERMINAL,AMOUNT\n0999-05-01 10:00:00,C1,T1,3.50\n")
    mapping = ColumnMapping(
        columns={"event_time": "WHEN", "customer_id": "CUSTOMER", "terminal_id": "TERMINAL", "amount": "AMOUNT"}
    )
    lake = LakeResource(root=str(tmp_path / "lake"))
    summary = import_file(source, lake, "partner", mapping)
    assert summary.days == {"0999-05-01"}
    assert summary.bronze_files == [
        lake.bronze_source_dir(date(999, 5, 1), "import-partner") / summary.bronze_files[0].name
    ]
    assert _bronze_records(tmp_path / "lake")[0]["event_time"] == "0999-05-01T10:00:00.000000Z"
