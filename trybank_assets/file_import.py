"""Import a bank's own transaction history (CSV, JSON lines, Parquet; CSV and JSON lines may be
gzip-compressed) into bronze.

Columns are mapped onto the bronze record and every value goes through ``bronze_contract``, the
rules every writer shares. Every row is either written to bronze under ``source=import-<name>``,
split by UTC day, or rejected with its file, line, rule and reason: nothing is dropped silently. The
source's own id is kept as ``source_transaction_id``; ``transaction_id`` is that id when it is a UUID,
else a UUID derived from the import name and the id (or, without an id, from the line and content),
so importing the same file twice writes the same bytes and silver sees no new transaction.

The file is read in batches of rows in this process and converted in one process per core
(``ImportOptions.workers``, ``TRYBANK_IMPORT_WORKERS``), the batches' lines written in file order: the
bytes are those of a conversion in one process.
"""

import csv
import gc
import gzip
import hashlib
import io
import json
import math
import os
import re
import shutil
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache, partial
from itertools import chain, count, islice, repeat
from multiprocessing import get_context
from pathlib import Path

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
# A batch of CSV or JSON lines is also handed over once its text reaches this size, so that a file of long rows
# does not hold 65,536 of them at once in each of the buffers in flight.
_BATCH_BYTES = 32 << 20
# The longest line read (bytes of a JSON line, characters of a CSV line), so that a file without line breaks is
# never held whole: a longer JSON line is a malformed row, read past in pieces of this size; a longer CSV line
# stops the import (a record's end cannot be told without reading it).
MAX_LINE_LENGTH = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_ID_NAMESPACE_BYTES = _ID_NAMESPACE.bytes
# A UUID's variant bits (10xx) set in its 17th hex digit.
_UUID_VARIANT = {f"{n:x}": f"{n & 0b11 | 0b1000:x}" for n in range(16)}
# The string encoder json.dumps uses (ensure_ascii): a str as its quoted, escaped JSON text.
_JSON_STRING = json.encoder.encode_basestring_ascii
# The event time layouts most files use, UTC (with Z) or naive: their bronze text is the text rearranged.
_UTC_LAYOUT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{6})?(Z?)")


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
    workers: int | None = None  # processes converting rows; None: one per core


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


def read_rows(path: Path, fmt: str) -> tuple[list[str], Iterator["RawBatch"]]:
    """Column names, and the rows in batches of up to ``_BATCH_ROWS`` as read, each row's text values decoded
    from them by ``RawBatch.decode`` (in the process that converts the batch)."""
    if fmt == "csv":
        return _csv_rows(path)
    if fmt == "parquet":
        return _parquet_rows(path)
    return _jsonl_rows(path)


@dataclass(frozen=True)
class RawBatch:
    """Consecutive rows of the file as read, from line ``first_line``: a Parquet record batch, the text of whole CSV
    records, or JSON lines as bytes. Decoding them is left to the process that converts them, so the reading
    process does no per-value work and hands over one buffer, not a Python object per value."""

    fmt: str
    first_line: int
    data: pa.RecordBatch | str | bytes
    # JSON lines over MAX_LINE_LENGTH, each an empty line in ``data``.
    overlong_lines: tuple[int, ...] = ()

    def decode(self, names: list[str]) -> tuple[list[int], list[Sequence[str | None]], list[tuple[int, str]]]:
        """The well-formed rows' line numbers and text values column by column (as ``_as_text`` gives them, None
        for empty), and (line, why) for each row that is not a row of the file's format."""
        if self.fmt == "parquet":
            lines = range(self.first_line, self.first_line + self.data.num_rows)
            return list(lines), [_column_text(column) for column in self.data.columns], []
        if self.fmt == "csv":
            return _csv_values(self.data, self.first_line, len(names))
        return _json_values(self.data, self.first_line, names, self.overlong_lines)


def _csv_values(text: str, first_line: int, width: int):
    lines, rows, malformed = [], [], []
    reader = csv.reader(io.StringIO(text, newline=""))
    line = first_line
    for fields in reader:
        if len(fields) == width:
            lines.append(line)
            rows.append(fields)
        else:
            malformed.append((line, f"{len(fields)} fields, the header has {width}"))
        line = first_line + reader.line_num
    columns = zip(*rows, strict=True) if rows else [()] * width
    return lines, [[v or None for v in map(str.strip, column)] for column in columns], malformed


def _json_values(data: bytes, first_line: int, names: list[str], overlong_lines: tuple[int, ...]):
    lines, rows = [], []
    malformed = [(line, f"a line longer than {MAX_LINE_LENGTH:,} bytes") for line in overlong_lines]
    for line, raw in enumerate(io.BytesIO(data), start=first_line):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError as exc:  # bad JSON or bytes that are not UTF-8
            malformed.append((line, f"malformed JSON ({getattr(exc, 'msg', None) or exc})"))
            continue
        if not isinstance(record, dict):
            malformed.append((line, "a JSON line that is not an object"))
            continue
        lines.append(line)
        rows.append([_as_text(record.get(n)) for n in names])
    return lines, list(zip(*rows, strict=True)) if rows else [()] * len(names), malformed


def _open_text(path: Path):
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8", newline="")


def _csv_lines(fh: io.TextIOWrapper) -> Iterator[str]:
    """The file's lines (ends kept), up to a line longer than ``MAX_LINE_LENGTH`` characters: ``csv.Error`` there."""
    for number in count(1):
        # +2: a line of the longest length still fits with its "\r\n".
        if not (text := fh.readline(MAX_LINE_LENGTH + 2)):
            return
        if len(text) > MAX_LINE_LENGTH and not text.endswith(("\n", "\r")):
            raise csv.Error(f"line {number} is longer than {MAX_LINE_LENGTH:,} characters")
        yield text


def _csv_rows(path: Path):
    try:
        with _open_text(path) as fh:
            names = next(csv.reader(_csv_lines(fh)), None)
    except (UnicodeDecodeError, OSError, EOFError, csv.Error) as exc:
        raise ImportFileError(f"{path}:1: cannot read the header line ({exc})") from exc
    if not names:
        raise ImportFileError(f"{path}: empty file, no header line")

    def batches():
        """The text of up to ``_BATCH_ROWS`` records (or about ``_BATCH_BYTES`` characters) at a time: the csv module
        reads the lines of one record at a time, so the lines it took between two records are exactly theirs."""
        with _open_text(path) as fh:
            taken: list[str] = []
            size = 0

            def lines():
                nonlocal size
                for text in _csv_lines(fh):
                    taken.append(text)
                    size += len(text)
                    yield text

            reader = csv.reader(lines())
            next(reader)
            taken.clear()
            first_line = line = reader.line_num + 1
            rows = size = 0
            try:
                for _ in reader:
                    rows += 1
                    line = reader.line_num + 1
                    if rows == _BATCH_ROWS or size >= _BATCH_BYTES:
                        yield RawBatch("csv", first_line, "".join(taken))
                        taken.clear()
                        first_line, rows, size = line, 0, 0
            except (UnicodeDecodeError, OSError, EOFError, csv.Error) as exc:
                # csv.Error: a quote opened and never closed, so one field swallows the rest of the file.
                raise ImportFileError(f"{path}:{line}: cannot read on from here ({exc})") from exc
            if rows:
                yield RawBatch("csv", first_line, "".join(taken))

    return names, batches()


def _column_text(column: pa.Array) -> list[str | None]:
    """A column's values as _as_text gives them, with its type checked once instead of per value."""
    values = column.to_pylist()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return [None if v is None else (v.strip() or None) for v in values]
    if pa.types.is_integer(column.type):
        return [None if v is None else str(v) for v in values]
    if pa.types.is_floating(column.type):  # is_integer() is False for inf and NaN, as _as_text requires
        return [None if v is None else (str(int(v)) if v.is_integer() and abs(v) < 2**53 else str(v)) for v in values]
    if pa.types.is_timestamp(column.type):
        return [None if v is None else v.isoformat() for v in values]
    return [_as_text(v) for v in values]


def _parquet_rows(path: Path):
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names

    def batches():
        line = 1
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS):
            yield RawBatch("parquet", line, batch)
            line += batch.num_rows

    return names, batches()


def _json_lines(fh) -> Iterator[bytes | None]:
    """The file's lines, None for each one longer than ``MAX_LINE_LENGTH`` (read past in pieces of that size)."""
    while raw := fh.readline(MAX_LINE_LENGTH + 1):
        if len(raw) <= MAX_LINE_LENGTH or raw.endswith(b"\n"):
            yield raw
            continue
        while (rest := fh.readline(MAX_LINE_LENGTH)) and not rest.endswith(b"\n"):
            pass
        yield None


def _jsonl_rows(path: Path):
    try:
        with _open_binary(path) as fh:
            first = next(_json_lines(fh), b"")
        if first is None:
            raise ValueError(f"its first line is longer than {MAX_LINE_LENGTH:,} bytes")
        names = list(json.loads(first))
    except (ValueError, TypeError, OSError, EOFError) as exc:
        raise ImportFileError(f"{path}:1: not a JSON object; cannot read the column names ({exc})") from exc

    def batches():
        line, taken, size, overlong = 0, [], 0, []
        try:
            with _open_binary(path) as fh:
                for line, raw in enumerate(_json_lines(fh), start=1):
                    if raw is None:
                        overlong.append(line)
                        raw = b"\n"
                    taken.append(raw)
                    size += len(raw)
                    if len(taken) == _BATCH_ROWS or size >= _BATCH_BYTES:
                        yield RawBatch("jsonl", line - len(taken) + 1, b"".join(taken), tuple(overlong))
                        taken, size, overlong = [], 0, []
        except (OSError, EOFError) as exc:
            raise ImportFileError(f"{path}:{line + 1}: cannot read on from here ({exc})") from exc
        if taken:
            yield RawBatch("jsonl", line - len(taken) + 1, b"".join(taken), tuple(overlong))

    return names, batches()


def _utc_event_time(text: str, naive_is_utc: bool) -> tuple[datetime, str] | None:
    """The moment (naive, UTC) and the bronze text of an event time in ``_UTC_LAYOUT``, UTC or naive in a UTC
    import, without formatting the moment again (``format_event_time`` of the moment gives the same text); None
    for any other text, which ``bronze_contract`` parses."""
    layout = _UTC_LAYOUT.fullmatch(text)
    if layout is None or not (layout[1] or naive_is_utc):
        return None
    try:
        moment = datetime.fromisoformat(text[:-1] if layout[1] else text)
    except ValueError:
        return None
    return moment, f"{text[:10]}T{text[11:19]}{text[19:26] if len(text) >= 26 else '.000000'}Z"


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(_ID_NAMESPACE, name))`` without building a UUID object: SHA-1 of the namespace and
    the name, with the version (5) and variant (10xx) bits set in the hex text. A lone surrogate (from a JSON
    ``"\\ud800"`` escape), which UTF-8 cannot encode and ``uuid.uuid5`` refuses, is hashed as its surrogatepass
    bytes: accepted like everywhere else in a record, instead of a traceback."""
    digest = hashlib.sha1(_ID_NAMESPACE_BYTES + name.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-{_UUID_VARIANT[digest[16]]}{digest[17:20]}-{digest[20:32]}"


def _source_transaction_id(source_id: str, import_name: str) -> str:
    try:
        return str(uuid.UUID(source_id))
    except ValueError:
        # Non-UUID source ids are kept stable by hashing them into the import's namespace.
        return _uuid5(f"{import_name}:{source_id}")


def _json_of(parse: Callable[[str], str], text: str) -> str:
    return _JSON_STRING(parse(text))


def _amount_json(text: str) -> str:
    return repr(contract.amount_of_cents(contract.amount_cents(text)))


def _fraud_json(text: str) -> str:
    return "true" if contract.fraud_flag(text) else "false"


def _memo(encode: Callable[[str], str]) -> Callable[[str], str]:
    """Values of a column repeat (ids, amounts, codes): each distinct text is checked and encoded once, in a
    bounded memo (a text that breaks a rule raises every time, it is not remembered)."""
    return lru_cache(maxsize=1 << 16)(encode)


class _BronzeLines:
    """Mapped rows → bronze lines, the contract's rules applied in a fixed order (the first rule a row breaks
    is the one reported). A batch is unpacked column by column and every value is written as JSON text once,
    which both the line and the transaction id are assembled from: no dict per row, no JSON encoder call.

    The bytes are those of the earlier per-record code, which tests pin: the line is
    ``json.dumps(record, separators=(",", ":"))`` and, for a row without a source id, the transaction id
    is ``uuid5`` over ``json.dumps([import_name, line, record], sort_keys=True)`` of the record with an
    empty ``transaction_id``. Strings go through the encoder ``json.dumps`` itself uses and floats are
    ``repr``, as in ``json.dumps``; the keys are spelled out below in that order.
    """

    def __init__(self, names: list[str], mapping: ColumnMapping, import_name: str, options: ImportOptions) -> None:
        self.names = names
        column_index = {n: i for i, n in enumerate(names)}  # a repeated CSV header name: its last column
        defaults = {f: str(default) for f, default in mapping.defaults.items()}
        self._sources = [
            (column_index[mapping.columns[f]] if f in mapping.columns else None, defaults.get(f)) for f in MAPPABLE
        ]
        self._import_name = import_name
        self._id_prefix = f"[{_JSON_STRING(import_name)}, "
        self._options = options
        # Moments are compared naive, in UTC.
        self._first_moment = datetime.combine(options.partitions_start, time())
        self._naive_is_utc = options.time_format is None and (
            options.naive_zone is UTC or getattr(options.naive_zone, "key", None) == "UTC"
        )
        self._latest = self._latest_accepted()
        self._customer = _memo(partial(_json_of, partial(contract.identifier, name="customer_id")))
        self._terminal = _memo(partial(_json_of, partial(contract.identifier, name="terminal_id")))
        self._amount = _memo(_amount_json)
        self._fraud = _memo(_fraud_json)
        self._currency = _memo(partial(_json_of, contract.currency_code))
        self._merchant_country = _memo(partial(_json_of, partial(contract.country_code, name="merchant_country")))
        self._customer_country = _memo(partial(_json_of, partial(contract.country_code, name="customer_country")))
        self._channel = _memo(partial(_json_of, partial(contract.label, name="channel")))
        self._merchant_category = _memo(partial(_json_of, partial(contract.label, name="merchant_category")))

    def _columns(self, columns: list[Sequence[str | None]]) -> list[Iterable[str | None]]:
        """The batch's values per field of MAPPABLE, a field's default filling its gaps."""
        picked = []
        for position, default in self._sources:
            if position is None:
                picked.append(repeat(default))
            elif default is None:
                picked.append(columns[position])
            else:
                picked.append([value or default for value in columns[position]])
        return picked

    def _latest_accepted(self) -> datetime:
        """The latest event time accepted now (naive, UTC). Cached between calls: the clock only moves on, so a
        time at or before the cached bound is also before the current one; only a later time re-reads the clock."""
        self._latest = (datetime.now(UTC) + self._options.max_future).replace(tzinfo=None)
        return self._latest

    def convert(self, batch: RawBatch) -> "ConvertedBatch":
        """The batch's accepted rows as bronze lines by UTC day, and every other row as a rejection."""
        line_numbers, columns, malformed = batch.decode(self.names)
        accepted: dict[str, list[str]] = defaultdict(list)
        rejected = [(line, "malformed_row", why, "") for line, why in malformed]
        zone, time_format, naive_is_utc = self._options.naive_zone, self._options.time_format, self._naive_is_utc
        first_moment, id_prefix, import_name = self._first_moment, self._id_prefix, self._import_name
        customer_json, terminal_json, amount_json, fraud_json = (
            self._customer,
            self._terminal,
            self._amount,
            self._fraud,
        )
        for (
            index,
            line,
            source_id,
            event_text,
            customer_id,
            terminal_id,
            amount,
            currency,
            merchant_country,
            customer_country,
            channel,
            merchant_category,
            is_fraud,
            fraud_scenario,
        ) in zip(count(), line_numbers, *self._columns(columns), strict=False):  # repeat() has no end
            try:
                if event_text is None or customer_id is None or terminal_id is None or amount is None:
                    missing = (event_text, customer_id, terminal_id, amount).index(None)
                    raise RecordRejected(f"missing_{REQUIRED[missing]}")
                if (utc := _utc_event_time(event_text, naive_is_utc)) is not None:
                    moment, event_time = utc
                else:
                    aware = contract.parse_event_time(event_text, zone, time_format)
                    moment, event_time = aware.replace(tzinfo=None), contract.format_event_time(aware)
                if moment < first_moment:
                    raise RecordRejected(
                        "event_time_before_partitions_start", f"first partition {self._options.partitions_start}"
                    )
                if moment > self._latest and moment > (latest := self._latest_accepted()):
                    latest_text = contract.format_event_time(latest.replace(tzinfo=UTC))
                    raise RecordRejected("event_time_in_future", f"after {latest_text}")
                is_fraud = "null" if is_fraud is None else fraud_json(is_fraud)
                customer_id = customer_json(customer_id)
                terminal_id = terminal_json(terminal_id)
                amount = amount_json(amount)
                currency = '"EUR"' if currency is None else self._currency(currency)
                merchant_country = "null" if merchant_country is None else self._merchant_country(merchant_country)
                customer_country = "null" if customer_country is None else self._customer_country(customer_country)
                channel = "null" if channel is None else self._channel(channel)
                merchant_category = "null" if merchant_category is None else self._merchant_category(merchant_category)
                if source_id is not None:
                    source_id = contract.identifier(source_id, "source_transaction_id")
            except RecordRejected as exc:
                row = dict(zip(self.names, (column[index] for column in columns), strict=True))
                rejected.append((line, exc.rule, exc.text, json.dumps(row)))
                continue
            fraud_scenario = "null" if is_fraud != "true" or fraud_scenario is None else _JSON_STRING(fraud_scenario)
            if source_id is None:
                source_json = "null"
                transaction_id = _uuid5(
                    f'{id_prefix}{line}, {{"amount": {amount}, "channel": {channel}, "currency": {currency}, '
                    f'"customer_country": {customer_country}, "customer_id": {customer_id}, '
                    f'"event_time": "{event_time}", "fraud_scenario": {fraud_scenario}, "is_fraud": {is_fraud}, '
                    f'"merchant_category": {merchant_category}, "merchant_country": {merchant_country}, '
                    f'"source_transaction_id": null, "terminal_id": {terminal_id}, "transaction_id": ""}}]'
                )
            else:
                source_json = _JSON_STRING(source_id)
                transaction_id = _source_transaction_id(source_id, import_name)
            accepted[event_time[:10]].append(
                f'{{"transaction_id":"{transaction_id}","event_time":"{event_time}","customer_id":{customer_id},'
                f'"terminal_id":{terminal_id},"amount":{amount},"currency":{currency},'
                f'"merchant_country":{merchant_country},"customer_country":{customer_country},'
                f'"channel":{channel},"merchant_category":{merchant_category},"is_fraud":{is_fraud},'
                f'"fraud_scenario":{fraud_scenario},"source_transaction_id":{source_json}}}\n'
            )
        return ConvertedBatch(
            len(line_numbers) + len(malformed),
            {day: "".join(lines).encode() for day, lines in accepted.items()},
            {day: len(lines) for day, lines in accepted.items()},
            sorted(rejected) if malformed else rejected,
        )


@dataclass(frozen=True)
class ConvertedBatch:
    """A batch's outcome: its rows, the accepted ones as bronze lines (their bytes and count per UTC day), and the
    rejected ones as (line, rule, reason, the row as JSON) in line order."""

    rows: int
    lines_by_day: dict[str, bytes]
    accepted_by_day: dict[str, int]
    rejected: list[tuple[int, str, str, str]]


# The bronze lines of the process converting batches for a parallel import (``_start_converter``).
_converter: _BronzeLines | None = None


def _start_converter(*args) -> None:
    global _converter
    _converter = _BronzeLines(*args)


def _convert(batch: RawBatch) -> ConvertedBatch:
    return _converter.convert(batch)


def _converted_batches(batches: Iterator[RawBatch], args: tuple, workers: int) -> Iterator[ConvertedBatch]:
    """Every batch converted by ``_BronzeLines(*args)``, in file order: in ``workers`` processes once the file has
    more than one batch, at most two per process in flight, so memory stays bounded."""
    head = list(islice(batches, 2))
    if workers < 2 or len(head) < 2:
        yield from map(_BronzeLines(*args).convert, chain(head, batches))
        return
    # Forked, not spawned: a spawned process imports the caller's main module again, which a script without an
    # ``if __name__ == "__main__"`` guard cannot take. The children only convert batches and exit.
    pool = ProcessPoolExecutor(workers, mp_context=get_context("fork"), initializer=_start_converter, initargs=args)
    try:
        # The first submit forks every worker. Frozen, this process's objects are never collected in them, so they
        # copy none of its pages (a collection writes to the objects it scans).
        gc.freeze()
        try:
            pending: deque[Future] = deque([pool.submit(_convert, head[0])])
        finally:
            gc.unfreeze()
        for batch in chain(head[1:], batches):
            pending.append(pool.submit(_convert, batch))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(cancel_futures=True)


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

    def add(self, batch: ConvertedBatch) -> None:
        """A batch's accepted lines, batches in file order."""
        for day, lines in batch.lines_by_day.items():
            self._buffers[day].append(lines)
            self.counts[day] += batch.accepted_by_day[day]
            self._buffered += len(lines)
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

        args = (names, mapping, import_name, options)
        for batch in _converted_batches(rows, args, options.workers or os.cpu_count() or 1):
            summary.rows_read += batch.rows
            if progress:
                progress(batch.rows)
            spool.add(batch)
            for line, rule, reason, raw in batch.rejected:
                reject(line, rule, reason, raw)

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
