"""Import a bank's own transaction history (CSV, JSON lines, Parquet; CSV and JSON lines may be
gzip-compressed) into bronze.

Columns are mapped onto the bronze record and every value goes through ``bronze_contract``, the
rules every writer shares. Every row is either written to bronze under ``source=import-<name>``,
split by UTC day, or rejected with its file, line, rule and reason: nothing is dropped silently. The
source's own id is kept as ``source_transaction_id``; ``transaction_id`` is that id when it is a UUID,
else a UUID derived from the import name and the id (or, without an id, from the line and content),
so importing the same file twice writes the same bytes and silver sees no new transaction.
"""

import csv
import gzip
import hashlib
import io
import json
import math
import os
import re
import shutil
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache, partial
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from trybank_assets import bronze_contract as contract
from trybank_assets.bronze_contract import BRONZE_FIELDS, RecordRejected
from trybank_assets.lake_layout import LakePaths

REQUIRED = ("event_time", "customer_id", "terminal_id", "amount")
# Mappable fields: the bronze record's, with the source's id under transaction_id.
MAPPABLE = tuple(f for f in BRONZE_FIELDS if f != "source_transaction_id")
FORMATS = ("csv", "jsonl", "parquet")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_ID_NAMESPACE = uuid.UUID("6f1c9a52-3f7e-4b8e-9a51-6c2d7e0b4a10")
_BATCH_ROWS = 65_536
_GZIP_MAGIC = b"\x1f\x8b"
# The content a transaction id is derived from, encoded as json.dumps(..., sort_keys=True, default=str) does.
_CONTENT_JSON = json.JSONEncoder(sort_keys=True, default=str)
# Amounts repeat (25k distinct texts in 1M benchmark rows) and parse as Decimal: a bounded memo.
_amount_cents = lru_cache(maxsize=1 << 16)(contract.amount_cents)
# Optional fields in the order their rules are checked: (mapped field, bronze_record argument, parser).
_OPTIONAL = (
    ("currency", "currency", contract.currency_code),
    ("merchant_country", "merchant_country", partial(contract.country_code, name="merchant_country")),
    ("customer_country", "customer_country", partial(contract.country_code, name="customer_country")),
    ("channel", "channel", partial(contract.label, name="channel")),
    ("merchant_category", "merchant_category", partial(contract.label, name="merchant_category")),
    ("transaction_id", "source_transaction_id", partial(contract.identifier, name="source_transaction_id")),
)


class ImportFileError(ValueError):
    """A problem with the file or the mapping as a whole (not with a row)."""


@dataclass(frozen=True)
class ColumnMapping:
    """Bronze field → source column, plus constant defaults for fields the file lacks."""

    columns: dict[str, str]
    defaults: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path: Path) -> tuple["ColumnMapping", str | None]:
        spec = yaml.safe_load(path.read_text()) or {}
        if not isinstance(spec, dict) or not isinstance(spec.get("columns", {}), dict):
            raise ImportFileError(f"{path}: expected a mapping with 'columns:' (bronze field: source column)")
        return cls(dict(spec.get("columns", {})), dict(spec.get("defaults", {}))), spec.get("name")

    def validate(self, available: list[str]) -> None:
        unknown = set(self.columns) | set(self.defaults)
        unknown -= set(MAPPABLE)
        if unknown:
            raise ImportFileError(f"unknown bronze field(s) in the mapping: {sorted(unknown)}; known: {list(MAPPABLE)}")
        missing = [c for c in self.columns.values() if c not in available]
        if missing:
            raise ImportFileError(f"column(s) {missing} not in the file; it has {available}")
        absent = [f for f in REQUIRED if f not in self.columns and f not in self.defaults]
        if absent:
            raise ImportFileError(f"no column mapped to required field(s) {absent}; use --map FIELD=COLUMN")


@dataclass(frozen=True)
class ImportOptions:
    """How to read values the file does not spell out, and which event times bronze can take."""

    naive_zone: tzinfo = UTC  # the zone of timestamps without an offset
    time_format: str | None = None  # a strptime pattern for non-ISO timestamps
    partitions_start: date = date.min  # no asset reads an earlier day
    max_future: timedelta = timedelta(minutes=5)


@dataclass
class ImportSummary:
    rows_read: int = 0
    accepted: int = 0
    rejected: int = 0
    days: set = field(default_factory=set)
    bronze_files: list[Path] = field(default_factory=list)
    reject_file: Path | None = None
    first_rejects: list[str] = field(default_factory=list)

    @property
    def reject_rate(self) -> float:
        return self.rejected / self.rows_read if self.rows_read else 0.0

    def line(self) -> str:
        span = f" ({min(self.days)}..{max(self.days)})" if self.days else ""
        return (
            f"rows read {self.rows_read}, accepted {self.accepted}, rejected {self.rejected}, "
            f"days touched {len(self.days)}{span}"
        )


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def detect_format(path: Path) -> str:
    """The format from the suffix, looking through a trailing ``.gz``."""
    suffixes = [x.lower().lstrip(".") for x in path.suffixes]
    suffix = suffixes[-2] if suffixes[-1:] == ["gz"] and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    fmt = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "json": "jsonl", "parquet": "parquet", "pq": "parquet"}
    if suffix not in fmt:
        raise ImportFileError(f"{path}: cannot tell the format from '.{suffix}'; pass --format {'|'.join(FORMATS)}")
    return fmt[suffix]


def _open_binary(path: Path):
    """The file's bytes, decompressed when it is gzip (told by its first bytes, not its name)."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def _as_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value).strip()
    return text or None


class MalformedRow(ValueError):
    """A line that is not a row of the file's format (bad JSON, wrong number of CSV fields)."""


def read_rows(path: Path, fmt: str) -> tuple[list[str], Iterator[tuple[int, Sequence | MalformedRow]]]:
    """Column names, and every row as (line number, text or None per column) or a MalformedRow."""
    if fmt == "csv":
        return _csv_rows(path)
    if fmt == "parquet":
        return _parquet_rows(path)
    return _jsonl_rows(path)


def _open_text(path: Path):
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8", newline="")


def _csv_rows(path: Path):
    try:
        with _open_text(path) as fh:
            names = next(csv.reader(fh), None)
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise ImportFileError(f"{path}:1: cannot read the header line ({exc})") from exc
    if not names:
        raise ImportFileError(f"{path}: empty file, no header line")

    def rows():
        with _open_text(path) as fh:
            reader = csv.reader(fh)
            next(reader)
            line = reader.line_num + 1
            try:
                for fields in reader:
                    if len(fields) != len(names):
                        yield line, MalformedRow(f"{len(fields)} fields, the header has {len(names)}")
                    else:
                        yield line, [v.strip() or None for v in fields]
                    line = reader.line_num + 1
            except (UnicodeDecodeError, OSError, EOFError) as exc:
                raise ImportFileError(f"{path}:{line}: cannot read on from here ({exc})") from exc

    return names, rows()


def _column_text(column: pa.Array) -> list[str | None]:
    """A column's values as _as_text gives them, with its type checked once instead of per value."""
    values = column.to_pylist()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return [None if v is None else (v.strip() or None) for v in values]
    if pa.types.is_integer(column.type):
        return [None if v is None else str(v) for v in values]
    return [_as_text(v) for v in values]


def _parquet_rows(path: Path):
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names

    def rows():
        line = 1
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS):
            for values in zip(*(_column_text(batch.column(n)) for n in names), strict=True):
                yield line, values
                line += 1

    return names, rows()


def _jsonl_rows(path: Path):
    try:
        with _open_binary(path) as fh:
            first = fh.readline()
        names = list(json.loads(first))
    except (ValueError, TypeError, OSError, EOFError) as exc:
        raise ImportFileError(f"{path}:1: not a JSON object; cannot read the column names ({exc})") from exc

    def rows():
        line = 0
        try:
            with _open_binary(path) as fh:
                for line, raw in enumerate(fh, start=1):
                    if not raw.strip():
                        continue
                    try:
                        record = json.loads(raw)
                    except ValueError as exc:  # bad JSON or bytes that are not UTF-8
                        yield line, MalformedRow(f"malformed JSON ({getattr(exc, 'msg', None) or exc})")
                        continue
                    if not isinstance(record, dict):
                        yield line, MalformedRow("a JSON line that is not an object")
                        continue
                    yield line, [_as_text(record.get(n)) for n in names]
        except (OSError, EOFError) as exc:
            raise ImportFileError(f"{path}:{line + 1}: cannot read on from here ({exc})") from exc

    return names, rows()


def to_bronze_record(values: dict[str, str | None], import_name: str, line: int, options: ImportOptions) -> dict:
    """One mapped row as a bronze record; raises RecordRejected with the rule it breaks."""
    for name in REQUIRED:
        if values.get(name) is None:
            raise RecordRejected(f"missing_{name}")
    event_time = contract.parse_event_time(values["event_time"], options.naive_zone, options.time_format)
    if event_time.date() < options.partitions_start:
        raise RecordRejected("event_time_before_partitions_start", f"first partition {options.partitions_start}")
    latest = datetime.now(UTC) + options.max_future
    if event_time > latest:
        raise RecordRejected("event_time_in_future", f"after {contract.format_event_time(latest)}")

    is_fraud = values.get("is_fraud")
    if is_fraud is not None:
        is_fraud = contract.fraud_flag(is_fraud)
    customer_id = contract.identifier(values["customer_id"], "customer_id")
    terminal_id = contract.identifier(values["terminal_id"], "terminal_id")
    amount_cents = _amount_cents(values["amount"])
    optional = {arg: parse(text) for name, arg, parse in _OPTIONAL if (text := values.get(name)) is not None}
    optional["currency"] = optional.get("currency") or "EUR"
    record = contract.bronze_record(
        transaction_id="",
        event_time=event_time,
        customer_id=customer_id,
        terminal_id=terminal_id,
        amount_cents=amount_cents,
        is_fraud=is_fraud,
        fraud_scenario=values.get("fraud_scenario"),
        **optional,
    )
    record["transaction_id"] = _transaction_id(record, import_name, line)
    return record


def _transaction_id(record: dict, import_name: str, line: int) -> str:
    source_id = record["source_transaction_id"]
    if source_id is None:
        return str(uuid.uuid5(_ID_NAMESPACE, _CONTENT_JSON.encode([import_name, line, record])))
    try:
        return str(uuid.UUID(source_id))
    except ValueError:
        # Non-UUID source ids are kept stable by hashing them into the import's namespace.
        return str(uuid.uuid5(_ID_NAMESPACE, f"{import_name}:{source_id}"))


def _bronze_line(record: dict) -> bytes:
    """The record as json.dumps(record, separators=(",", ":")) writes it, plus a newline. orjson writes the
    same bytes fifteen times faster, unless a string holds a character json.dumps escapes and orjson does not
    (non-ASCII, DEL) or cannot encode (a lone surrogate from a JSON line's escape)."""
    try:
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        if line.isascii() and b"\x7f" not in line:
            return line
    except orjson.JSONEncodeError:
        pass
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


class _DaySpool:
    """Accepted rows per UTC day, spilled to staging files so memory stays bounded."""

    def __init__(self, staging: Path, spill_bytes: int = 64 << 20) -> None:
        self.staging = staging
        self.spill_bytes = spill_bytes
        self._buffers: dict[str, list[bytes]] = defaultdict(list)
        self._buffered = 0
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, day: str, line: bytes) -> None:
        self._buffers[day].append(line)
        self.counts[day] += 1
        self._buffered += len(line)
        if self._buffered >= self.spill_bytes:
            self.spill()

    def spill(self) -> None:
        for day, lines in self._buffers.items():
            with open(self.staging / f"{day}.jsonl", "ab") as fh:
                fh.write(b"".join(lines))
        self._buffers.clear()
        self._buffered = 0

    def publish(self, target_of: Callable[[str], Path]) -> list[Path]:
        """Make every day's file durable and move it into bronze (one rename per day)."""
        self.spill()
        targets = []
        for day in sorted(self.counts):
            staged, target = self.staging / f"{day}.jsonl", target_of(day)
            with open(staged, "rb+") as fh:
                os.fsync(fh.fileno())
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
            targets.append(target)
        return targets


def import_file(
    path: Path,
    lake: LakePaths,
    import_name: str,
    mapping: ColumnMapping,
    fmt: str | None = None,
    options: ImportOptions = ImportOptions(),
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Map, validate and write ``path`` to bronze; returns what happened to every row."""
    if not _NAME.match(import_name):
        raise ImportFileError(f"import name {import_name!r}: use lowercase letters, digits, '-' and '_'")
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    fmt = fmt or detect_format(path)
    names, rows = read_rows(path, fmt)
    mapping.validate(names)

    digest = _file_digest(path)
    source = f"import-{import_name}"
    staging = lake.path / "bronze" / ".import-staging" / f"{source}-{digest}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    spool = _DaySpool(staging)
    reject_file = lake.path / "bronze" / "import_rejects" / source / f"{path.name}-{digest}.csv"
    reject_file.parent.mkdir(parents=True, exist_ok=True)

    summary = ImportSummary()
    with open(reject_file, "w", newline="") as rejects_fh:
        rejects = csv.writer(rejects_fh)
        rejects.writerow(["file", "line", "rule", "reason", "raw"])

        def reject(line: int, rule: str, reason: str, raw: str) -> None:
            summary.rejected += 1
            rejects.writerow((str(path), line, rule, reason, raw))
            if len(summary.first_rejects) < 20:
                summary.first_rejects.append(f"{path}:{line}: {rule}: {reason}")

        fields = list(mapping.columns)
        column_index = {n: i for i, n in enumerate(names)}  # a repeated CSV header name: its last column
        positions = [column_index[c] for c in mapping.columns.values()]
        defaults = {f: str(default) for f, default in mapping.defaults.items()}
        for line, row in rows:
            summary.rows_read += 1
            if progress and summary.rows_read % 10_000 == 0:
                progress(10_000)
            if isinstance(row, MalformedRow):
                reject(line, "malformed_row", str(row), "")
                continue
            values = dict(zip(fields, [row[i] for i in positions], strict=True))
            for f, default in defaults.items():
                values[f] = values.get(f) or default
            try:
                record = to_bronze_record(values, import_name, line, options)
            except RecordRejected as exc:
                reject(line, exc.rule, exc.text, json.dumps(dict(zip(names, row, strict=True))))
                continue
            spool.add(record["event_time"][:10], _bronze_line(record))
    if progress:
        progress(summary.rows_read % 10_000)

    summary.bronze_files = spool.publish(
        lambda day: lake.bronze_source_dir(datetime.fromisoformat(day).date(), source) / f"part-{digest}.jsonl"
    )
    shutil.rmtree(staging)
    summary.accepted = sum(spool.counts.values())
    summary.days = set(spool.counts)
    if summary.rejected:
        summary.reject_file = reject_file
    else:
        reject_file.unlink()
    assert summary.rows_read == summary.accepted + summary.rejected
    return summary
