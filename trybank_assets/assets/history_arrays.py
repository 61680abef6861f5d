"""Gold's point-in-time figures computed with numpy over Arrow batches, one range of days at a time.

Gold partitions the transactions by a contiguous range of their days, together with every aggregate row of the
range's look-back days and the terminals customers used before it, so a partition holds all that its
transactions' figures need. For all of them at once, the functions here compute:

- look-back sums over the aggregate rows of whole previous days: prefix sums over the rows sorted by key and
  day, and a binary search for each transaction's first and last day;
- figures over the same key's transactions of the same UTC day strictly before the transaction in event order
  (``event_us`` smaller: transactions at the same microsecond never see each other), all of them ("earlier
  today") or those of the last N seconds (``event_us`` in [now - N s, now), ``features.VELOCITY_WINDOWS``, so
  a window reaches back at most to 00:00 UTC);
- the customer's previous event, and whether it used the terminal in the previous days or earlier today.

Counts and integer cent sums, so every figure is exact. ``NumpyFeatureOps`` then does the very IEEE operations of
``features.PythonFeatureOps``, so the features are the same to the last bit.
"""

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trybank_assets.features import (
    CUSTOMER_WINDOWS,
    LABEL_DELAY_DAYS,
    LOOKBACK_DAYS,
    TERMINAL_HABIT_DAYS,
    TERMINAL_LOOKBACK_DAYS,
    TERMINAL_WINDOWS,
    VELOCITY_WINDOWS,
    derive_features,
)

MICROS_PER_SECOND = 1_000_000
# Rows per Arrow batch handed back to Spark.
BATCH_ROWS = 65_536
# Aggregate rows are told from transactions by their missing transaction_id.
TRANSACTION_ID = "transaction_id"
# The label of the day range a row belongs to (gold's partitioning).
RANGE = "day_range"

TERMINAL_AGGREGATE_COLUMNS = ("txn_count", "amount_cents_sum", "fraud_count")
CUSTOMER_AGGREGATE_COLUMNS = (
    "txn_count",
    "amount_cents_sum",
    "amount_cents_sq_sum",
    "international_count",
    "last_event_us",
)
# No event: below every event time Spark can hold.
_NO_EVENT = np.iinfo(np.int64).min


class NumpyFeatureOps:
    """``features.FeatureOps`` over numpy arrays: the same IEEE operations as the Python twin, element-wise.
    ``elapsed_seconds`` takes the previous events as a masked array (masked where there is none)."""

    def div(self, num, den, default, min_den=0.0):
        den = np.asarray(den)
        num, den_f, ok = np.broadcast_arrays(np.asarray(num).astype(np.float64), den.astype(np.float64), den > min_den)
        return np.divide(num, den_f, out=np.full(num.shape, default, dtype=np.float64), where=ok)

    def flag(self, cond):
        return cond.astype(np.float64)

    def sqrt_pos(self, x):
        return np.sqrt(x, out=np.zeros_like(x), where=x > 0)

    def floordiv(self, x, m):
        return x // m

    def mod(self, x, m):
        return x % m

    def to_double(self, x):
        return x.astype(np.float64)

    def elapsed_seconds(self, now_us, previous_us, cap):
        elapsed = (now_us - previous_us.data).astype(np.float64) / 1e6
        return np.where(previous_us.mask, cap, np.minimum(elapsed, cap))


def _codes(*columns: pa.ChunkedArray | pa.Array) -> list[np.ndarray]:
    """Integer codes of string columns, the same for the same string across ``columns``."""
    type_ = columns[0].type
    chunks = [chunk.cast(type_) for column in columns for chunk in getattr(column, "chunks", [column]) if len(chunk)]
    if not chunks:
        return [np.zeros(0, np.int64) for _ in columns]
    codes = pc.dictionary_encode(pa.concat_arrays(chunks)).indices.to_numpy().astype(np.int64)
    return np.split(codes, np.cumsum([len(c) for c in columns[:-1]]))


def _longs(column: pa.ChunkedArray, null: int = 0) -> np.ndarray:
    return pc.fill_null(column, null).to_numpy().astype(np.int64)


def _days(table: pa.Table) -> np.ndarray:
    return table["date"].cast(pa.int32()).to_numpy().astype(np.int64)


def _back(order: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """Values computed in ``order`` put back in the rows' own order."""
    values = np.empty_like(sorted_values)
    values[order] = sorted_values
    return values


def _prefix_sums(values: np.ndarray) -> np.ndarray:
    # Wrapping int64 sums: a difference of two is exact whenever the window's own sum fits.
    return np.concatenate(([0], np.cumsum(values, dtype=np.int64)))


class _DayWindows:
    """Each transaction's rows of the same key among the aggregate rows of the days [d - farthest, d - nearest],
    d its day."""

    def __init__(self, row_key: np.ndarray, row_day: np.ndarray, tx_key: np.ndarray, tx_day: np.ndarray, reach: int):
        days = np.concatenate((row_day, tx_day))
        first, span = days.min(), int(days.max() - days.min()) + reach + 1
        _check_fits(max(int(row_key.max(initial=0)), int(tx_key.max(initial=0))), span)
        # key * span + day, shifted by the farthest reach so a window's first day stays within its key. Rows of the
        # same key and day are in every window together, so their order changes no window's figure: numpy's
        # (SIMD) quicksort of one int64 key, ~6x faster than a lexsort of key and day.
        positions = row_key * span + (row_day - first + reach)
        self._order = np.argsort(positions)
        self._positions = positions[self._order]
        tx_positions = tx_key * span + (tx_day - first + reach)
        # Searched in sorted order: a binary search for sorted needles starts where the previous one ended, 6x
        # faster than for needles in the transactions' own order.
        self._tx_order = np.argsort(tx_positions)
        self._sorted_tx_positions = tx_positions[self._tx_order]
        self._windows: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def rows(self, nearest: int, farthest: int) -> tuple[np.ndarray, np.ndarray]:
        """Start and end (exclusive) of each transaction's window in the rows sorted by key and day."""
        if (nearest, farthest) not in self._windows:
            start = np.searchsorted(self._positions, self._sorted_tx_positions - farthest, "left")
            end = np.searchsorted(self._positions, self._sorted_tx_positions - nearest, "right")
            self._windows[nearest, farthest] = _back(self._tx_order, start), _back(self._tx_order, end)
        return self._windows[nearest, farthest]

    def sum(self, values: np.ndarray, nearest: int, farthest: int) -> np.ndarray:
        start, end = self.rows(nearest, farthest)
        prefix = _prefix_sums(values[self._order])
        return prefix[end] - prefix[start]

    def latest(self, values: np.ndarray, nearest: int, farthest: int) -> np.ndarray:
        """The value of each window's latest row, ``_NO_EVENT`` for none: for values growing with the day (a day's
        last event time), the window's largest."""
        start, end = self.rows(nearest, farthest)
        if not len(values):
            return np.full(len(start), _NO_EVENT, dtype=np.int64)
        return np.where(end > start, values[self._order[np.maximum(end - 1, 0)]], _NO_EVENT)


class _SameDay:
    """Each transaction's earlier transactions of the same key on the same UTC day (``event_us`` smaller)."""

    def __init__(self, key: np.ndarray, day: np.ndarray, event_us: np.ndarray):
        # A transaction's day is its event's UTC day (silver quarantines the others), so ordering by key and event
        # time orders by key, day and event time. Transactions of the same instant are counted together.
        self._order = _order_by(key, event_us)
        key, day, event_us = key[self._order], day[self._order], event_us[self._order]
        new_day = np.ones(len(key), dtype=bool)
        new_day[1:] = (key[1:] != key[:-1]) | (day[1:] != day[:-1])
        new_instant = new_day.copy()
        new_instant[1:] |= event_us[1:] != event_us[:-1]
        day_index = np.cumsum(new_day) - 1
        # Sorted positions: the key's day starts at day_start; the transaction's earlier ones end at earlier_end
        # (the first transaction of its instant).
        self._day_start = np.flatnonzero(new_day)[day_index]
        self._earlier_end = np.flatnonzero(new_instant)[np.cumsum(new_instant) - 1]
        self._event_us = event_us
        self._day_index = day_index

    def count(self) -> np.ndarray:
        return _back(self._order, self._earlier_end - self._day_start)

    def sum(self, values: np.ndarray) -> np.ndarray:
        prefix = _prefix_sums(values[self._order])
        return _back(self._order, prefix[self._earlier_end] - prefix[self._day_start])

    def previous_event(self) -> np.ndarray:
        """The latest earlier event time, ``_NO_EVENT`` for none."""
        has_earlier = self._earlier_end > self._day_start
        previous = np.where(has_earlier, self._event_us[np.maximum(self._earlier_end - 1, 0)], _NO_EVENT)
        return _back(self._order, previous)

    def within(self, seconds: int, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Count and sum of ``values`` over the earlier transactions of the last ``seconds``."""
        since_start = self._event_us - self._event_us[self._day_start]
        span = int(since_start.max(initial=0)) + 1
        _check_fits(int(self._day_index.max(initial=0)), span)
        positions = self._day_index * span + since_start
        window_start = np.searchsorted(positions, positions - np.minimum(since_start, seconds * MICROS_PER_SECOND))
        prefix = _prefix_sums(values[self._order])
        return (
            _back(self._order, self._earlier_end - window_start),
            _back(self._order, prefix[self._earlier_end] - prefix[window_start]),
        )


def _order_by(key: np.ndarray, value: np.ndarray) -> np.ndarray:
    """An order of the rows by ``key`` (>= 0), then ``value``; ties in any order. One int64 sort key where key and
    value fit in one (numpy's SIMD quicksort), else a lexsort, several times slower."""
    if not len(key):
        return np.zeros(0, np.int64)
    lowest = int(value.min())
    span = int(value.max()) - lowest + 1
    if _fits(int(key.max()), span):
        return np.argsort(key * span + (value - lowest))
    return np.lexsort((value, key))


def _fits(largest_key: int, span: int) -> bool:
    """Whether keys up to ``largest_key`` of ``span`` positions each fit in 64-bit positions (with room to shift)."""
    return (largest_key + 1) * span < 2**62


def _check_fits(largest_key: int, span: int) -> None:
    if not _fits(largest_key, span):
        raise ValueError(f"{largest_key + 1} keys of {span} positions each do not fit in 64-bit positions")


def _to_batches(columns: dict[str, pa.ChunkedArray | np.ndarray], names: list[str]) -> Iterator[pa.RecordBatch]:
    table = pa.table({name: columns[name] for name in names}).combine_chunks()
    yield from table.to_batches(max_chunksize=BATCH_ROWS)


def range_features(batches: Iterator[pa.RecordBatch], names: list[str]) -> Iterator[pa.RecordBatch]:
    """Gold rows (columns ``names``) of the transactions of a partition by day range.

    Each row carries its range's label (``RANGE``) and is one of: a transaction of the range (it has a
    ``transaction_id``); a terminal's daily aggregates (no ``customer_id``) or a customer's (no ``terminal_id``) of
    a day in the range's look-back; or a terminal a customer used on a day before the range (both ids, nothing
    else). A partition normally holds one range; should it hold several, each is computed on its own rows only.
    """
    batches = list(batches)
    if not batches:
        return
    rows = pa.Table.from_batches(batches)
    labels = pc.unique(rows[RANGE])
    for label in labels:
        of_range = rows if len(labels) == 1 else rows.filter(pc.equal(rows[RANGE], label))
        yield from _range_gold(of_range, names)


def _range_gold(rows: pa.Table, names: list[str]) -> Iterator[pa.RecordBatch]:
    is_transaction = pc.is_valid(rows[TRANSACTION_ID])
    tx = rows.filter(is_transaction)
    if not tx.num_rows:
        return
    history = rows.filter(pc.invert(is_transaction))
    has_customer, has_terminal = pc.is_valid(history["customer_id"]), pc.is_valid(history["terminal_id"])
    terminal = _terminal_columns(tx, history.filter(pc.invert(has_customer)))
    yield from _customer_features(
        tx,
        history.filter(pc.invert(has_terminal)),
        history.filter(pc.and_(has_customer, has_terminal)),
        terminal,
        names,
    )


def _terminal_columns(tx: pa.Table, aggregates: pa.Table) -> dict[str, np.ndarray]:
    """The transactions' ``terminal_*`` inputs of ``derive_features``: their terminal's label-delayed counts and
    fraud, its transactions and cents of the previous ``TERMINAL_HABIT_DAYS`` days, and its velocity."""
    tx_key, row_key = _codes(tx["terminal_id"], aggregates["terminal_id"])
    tx_day = _days(tx)
    history = _DayWindows(row_key, _days(aggregates), tx_key, tx_day, TERMINAL_LOOKBACK_DAYS)
    count, cents, fraud = (_longs(aggregates[c]) for c in TERMINAL_AGGREGATE_COLUMNS)
    out: dict = {}
    for n in TERMINAL_WINDOWS:
        out[f"terminal_count_{n}"] = history.sum(count, LABEL_DELAY_DAYS + 1, LABEL_DELAY_DAYS + n)
        out[f"terminal_fraud_{n}"] = history.sum(fraud, LABEL_DELAY_DAYS + 1, LABEL_DELAY_DAYS + n)
    out["terminal_recent_count"] = history.sum(count, 1, TERMINAL_HABIT_DAYS)
    out["terminal_recent_cents"] = history.sum(cents, 1, TERMINAL_HABIT_DAYS)
    today, amounts = _SameDay(tx_key, tx_day, _longs(tx["event_us"])), _longs(tx["amount_cents"])
    for suffix, seconds, _ in VELOCITY_WINDOWS:
        out[f"terminal_count_{suffix}"], out[f"terminal_cents_{suffix}"] = today.within(seconds, amounts)
    return out


def _customer_features(
    tx: pa.Table, aggregates: pa.Table, terminals_used: pa.Table, terminal: dict[str, np.ndarray], names: list[str]
) -> Iterator[pa.RecordBatch]:
    """Gold rows of the transactions with their ``terminal`` columns: the customer's figures, then every feature by
    ``derive_features``."""
    tx_key, row_key, used_key = _codes(tx["customer_id"], aggregates["customer_id"], terminals_used["customer_id"])
    tx_day, row_day = _days(tx), _days(aggregates)
    event_us, cents = _longs(tx["event_us"]), _longs(tx["amount_cents"])
    history = _DayWindows(row_key, row_day, tx_key, tx_day, LOOKBACK_DAYS)
    today = _SameDay(tx_key, tx_day, event_us)
    today_count = today.count()
    today_cents = today.sum(cents)

    day_count, day_cents = _longs(aggregates["txn_count"]), _longs(aggregates["amount_cents_sum"])

    raw: dict = {"amount_cents": cents, "event_us": event_us, **terminal}
    for n in CUSTOMER_WINDOWS:
        raw[f"customer_count_{n}"] = history.sum(day_count, 1, n) + today_count
        raw[f"customer_cents_{n}"] = history.sum(day_cents, 1, n) + today_cents
    raw["customer_cents_sq_30"] = history.sum(_longs(aggregates["amount_cents_sq_sum"]), 1, LOOKBACK_DAYS) + today.sum(
        cents * cents
    )
    raw["customer_international_30"] = history.sum(
        _longs(aggregates["international_count"]), 1, LOOKBACK_DAYS
    ) + today.sum(_longs(tx["international"]))
    previous = today.previous_event()
    previous = np.where(
        previous != _NO_EVENT,
        previous,
        history.latest(_longs(aggregates["last_event_us"], _NO_EVENT), 1, LOOKBACK_DAYS),
    )
    raw["customer_previous_us"] = np.ma.masked_array(previous, mask=previous == _NO_EVENT)
    for suffix, seconds, _ in VELOCITY_WINDOWS:
        raw[f"customer_count_{suffix}"], raw[f"customer_cents_{suffix}"] = today.within(seconds, cents)
    raw["customer_terminal_seen"] = _terminal_seen(tx, terminals_used, tx_key, used_key, tx_day, event_us)

    out: dict = {name: tx[name] for name in tx.column_names}
    # The event time is not shuffled: it is the event_us microseconds as a timestamp.
    out["event_time"] = pa.array(event_us, pa.timestamp("us", tz="UTC"))
    out |= derive_features(raw, NumpyFeatureOps())
    yield from _to_batches(out, names)


def _terminal_seen(tx, terminals_used, customers, used_customers, tx_day, event_us) -> np.ndarray:
    """1 when the customer used the transaction's terminal in the previous ``TERMINAL_HABIT_DAYS`` days or earlier
    the same day, else 0. The uses are the transactions themselves, and ``terminals_used`` (customer, terminal,
    day) for days before theirs; ``customers`` and ``used_customers`` are their customers' codes."""
    terminals, used_terminals = _codes(tx["terminal_id"], terminals_used["terminal_id"])
    width = int(max(terminals.max(initial=0), used_terminals.max(initial=0))) + 1
    tx_pair = customers * width + terminals
    used_pair = np.concatenate((used_customers * width + used_terminals, tx_pair))
    used_day = np.concatenate((_days(terminals_used), tx_day))
    seen_before = _DayWindows(used_pair, used_day, tx_pair, tx_day, TERMINAL_HABIT_DAYS)
    start, end = seen_before.rows(1, TERMINAL_HABIT_DAYS)
    earlier_today = _SameDay(tx_pair, tx_day, event_us).count()
    return ((end > start) | (earlier_today > 0)).astype(np.int64)
