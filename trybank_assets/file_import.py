"""Import a bank's own transaction history (CSV, JSON lines, Parquet) into bronze.

Columns are mapped onto the bronze contract; timestamps without a zone are UTC; integer ids
become strings. Every row is either written to bronze under ``source=import-<name>``, split by
UTC day, or rejected with its file, line and reason: nothing is dropped silently. A row without
a ``transaction_id`` gets a UUID derived from the import name, its line and its content, so
importing the same file twice writes the same bytes and silver sees no new transaction.
"""

import csv
import hashlib
import json
import math
import os
import re
import shutil
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from trybank_assets.lake_layout import LakePaths
from trybank_assets.schemas import (
    BRONZE_FIELDS,
    CHANNELS,
    CURRENCIES,
    MAX_AMOUNT,
    MERCHANT_CATEGORIES,
)

REQUIRED = ("event_time", "customer_id", "terminal_id", "amount")
OPTIONAL = tuple(f for f in BRONZE_FIELDS if f not in REQUIRED)
FORMATS = ("csv", "jsonl", "parquet")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_TRUE, _FALSE = {"1", "true", "t", "yes", "y"}, {"0", "false", "f", "no", "n"}
_ID_NAMESPACE = uuid.UUID("6f1c9a52-3f7e-4b8e-9a51-6c2d7e0b4a10")
_BATCH_ROWS = 65_536


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
        unknown -= set(BRONZE_FIELDS)
        if unknown:
            raise ImportFileError(
                f"unknown bronze field(s) in the mapping: {sorted(unknown)}; known: {list(BRONZE_FIELDS)}"
            )
        missing = [c for c in self.columns.values() if c not in available]
        if missing:
            raise ImportFileError(f"column(s) {missing} not in the file; it has {available}")
        absent = [f for f in REQUIRED if f not in self.columns and f not in self.defaults]
        if absent:
            raise ImportFileError(f"no column mapped to required field(s) {absent}; use --map FIELD=COLUMN")


@dataclass
class ImportSummary:
    rows_read: int = 0
    accepted: int = 0
    rejected: int = 0
    days: set = field(default_factory=set)
    bronze_files: list[Path] = field(default_factory=list)
    reject_file: Path | None = None
    first_rejects: list[str] = field(default_factory=list)

    def line(self) -> str:
        span = f" ({min(self.days)}..{max(self.days)})" if self.days else ""
        return (
            f"rows read {self.rows_read}, accepted {self.accepted}, rejected {self.rejected}, "
            f"days touched {len(self.days)}{span}"
        )


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    fmt = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "json": "jsonl", "parquet": "parquet", "pq": "parquet"}
    if suffix not in fmt:
        raise ImportFileError(f"{path}: cannot tell the format from '.{suffix}'; pass --format {'|'.join(FORMATS)}")
    return fmt[suffix]


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


def read_rows(path: Path, fmt: str) -> tuple[list[str], Iterator[tuple[int, dict | MalformedRow]]]:
    """Column names, and every row as (line number, {column: text or None}) or a MalformedRow."""
    if fmt == "csv":
        return _csv_rows(path)
    if fmt == "parquet":
        return _parquet_rows(path)
    return _jsonl_rows(path)


def _csv_rows(path: Path):
    with open(path, newline="") as fh:
        names = next(csv.reader(fh), None)
    if not names:
        raise ImportFileError(f"{path}: empty file, no header line")

    def rows():
        with open(path, newline="") as fh:
            reader = csv.reader(fh)
            next(reader)
            line = reader.line_num + 1
            for fields in reader:
                if len(fields) != len(names):
                    yield line, MalformedRow(f"{len(fields)} fields, the header has {len(names)}")
                else:
                    yield line, {n: (v.strip() or None) for n, v in zip(names, fields, strict=True)}
                line = reader.line_num + 1

    return names, rows()


def _parquet_rows(path: Path):
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names

    def rows():
        line = 1
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS):
            columns = [[_as_text(v) for v in batch.column(n).to_pylist()] for n in names]
            for values in zip(*columns, strict=True):
                yield line, dict(zip(names, values, strict=True))
                line += 1

    return names, rows()


def _jsonl_rows(path: Path):
    with open(path, "rb") as fh:
        first = fh.readline()
    try:
        names = list(json.loads(first))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ImportFileError(f"{path}:1: not a JSON object; cannot read the column names") from exc

    def rows():
        with open(path, "rb") as fh:
            for line, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                except json.JSONDecodeError as exc:
                    yield line, MalformedRow(f"malformed JSON ({exc.msg})")
                    continue
                if not isinstance(record, dict):
                    yield line, MalformedRow("a JSON line that is not an object")
                    continue
                yield line, {n: _as_text(record.get(n)) for n in names}

    return names, rows()


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _amount(text: str) -> float:
    value = Decimal(text)
    if not value.is_finite():
        raise ValueError("amount is not a finite number")
    if value <= 0:
        raise ValueError("amount must be positive")
    if value > MAX_AMOUNT:
        raise ValueError(f"amount above {MAX_AMOUNT}")
    if value != value.quantize(Decimal("0.01")):
        raise ValueError("amount has more than two decimals")
    return float(value)


def _in(vocabulary, what: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in vocabulary:
            raise ValueError(f"unknown {what} {text!r}")
        return text

    return check


def _country(text: str) -> str:
    text = text.upper()
    if not _COUNTRY.match(text):
        raise ValueError(f"country {text!r} is not an ISO 3166 alpha-2 code")
    return text


def _flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"is_fraud {text!r} is not a boolean")


_FIELD_PARSERS: dict[str, Callable[[str], object]] = {
    "currency": _in(CURRENCIES, "currency"),
    "channel": _in(CHANNELS, "channel"),
    "merchant_category": _in(MERCHANT_CATEGORIES, "merchant_category"),
    "merchant_country": _country,
    "customer_country": _country,
    "is_fraud": _flag,
}


def to_bronze_record(values: dict[str, str | None], import_name: str, line: int) -> dict:
    """One mapped row as a bronze record; raises ValueError with the reason."""
    for name in REQUIRED:
        if values.get(name) is None:
            raise ValueError(f"missing {name}")
    try:
        event_time = _parse_time(values["event_time"])
    except ValueError:
        raise ValueError(f"event_time {values['event_time']!r} is not an ISO-8601 timestamp") from None
    try:
        amount = _amount(values["amount"])
    except InvalidOperation:
        raise ValueError(f"amount {values['amount']!r} is not a number") from None
    record = {
        "transaction_id": values.get("transaction_id"),
        "event_time": event_time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "customer_id": values["customer_id"],
        "terminal_id": values["terminal_id"],
        "amount": amount,
    }
    for name in OPTIONAL:
        if name in record:
            continue
        text = values.get(name)
        record[name] = None if text is None else _FIELD_PARSERS.get(name, str)(text)
    record["currency"] = record["currency"] or "EUR"
    if record["transaction_id"] is None:
        content = json.dumps([import_name, line, record], sort_keys=True, default=str)
        record["transaction_id"] = str(uuid.uuid5(_ID_NAMESPACE, content))
    else:
        try:
            record["transaction_id"] = str(uuid.UUID(record["transaction_id"]))
        except ValueError:
            # Non-UUID source ids are kept stable by hashing them into the import's namespace.
            record["transaction_id"] = str(uuid.uuid5(_ID_NAMESPACE, f"{import_name}:{record['transaction_id']}"))
    if record["is_fraud"] is not True:
        record["fraud_scenario"] = None
    return {name: record[name] for name in BRONZE_FIELDS}


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
        rejects.writerow(["file", "line", "reason", "raw"])

        def reject(line: int, reason: str, raw: str) -> None:
            summary.rejected += 1
            rejects.writerow((str(path), line, reason, raw))
            if len(summary.first_rejects) < 20:
                summary.first_rejects.append(f"{path}:{line}: {reason}")

        for line, row in rows:
            summary.rows_read += 1
            if progress and summary.rows_read % 10_000 == 0:
                progress(10_000)
            if isinstance(row, MalformedRow):
                reject(line, str(row), "")
                continue
            values = {f: row[c] for f, c in mapping.columns.items()}
            for f, default in mapping.defaults.items():
                values[f] = values.get(f) or str(default)
            try:
                record = to_bronze_record(values, import_name, line)
            except ValueError as exc:
                reject(line, str(exc), json.dumps(row))
                continue
            spool.add(record["event_time"][:10], json.dumps(record, separators=(",", ":")).encode() + b"\n")
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
