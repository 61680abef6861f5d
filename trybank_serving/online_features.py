"""A transaction's features at request time: the online store's daily aggregates plus the stream.

Gold computes each feature from whole previous days (daily aggregates) plus the same day's
earlier events. Here the days up to the store's ``as_of`` come from the store and later events
from the stream this process ingested, then ``features.derive_features`` applies the very same
formulas with Python numbers.
"""

import functools
import threading
from collections import defaultdict
from typing import NamedTuple

from trybank_assets.features import (
    CUSTOMER_WINDOWS,
    LABEL_DELAY_DAYS,
    LOOKBACK_DAYS,
    MICROS_PER_DAY,
    TERMINAL_WINDOWS,
    PythonFeatureOps,
    derive_features,
    is_international,
)
from trybank_assets.online_store import CustomerDay, OnlineSnapshot, TerminalDay

_OPS = PythonFeatureOps()
_CUSTOMER_RAW_KEYS = tuple((w, f"customer_count_{w}", f"customer_cents_{w}") for w in CUSTOMER_WINDOWS)
_TERMINAL_RAW_KEYS = tuple((w, f"terminal_count_{w}", f"terminal_fraud_{w}") for w in TERMINAL_WINDOWS)


class Event(NamedTuple):
    customer_id: str
    terminal_id: str
    event_us: int
    amount_cents: int
    international: int
    day: int  # UTC day as a date ordinal (0001-01-01 is 1; the epoch is 719163)


def event_of(tx) -> Event:
    event_us = tx.event_us
    return Event(
        tx.customer_id,
        tx.terminal_id,
        event_us,
        tx.amount_cents,
        is_international(tx.merchant_country, tx.customer_country),
        event_us // MICROS_PER_DAY + 719_163,
    )


# A customer's stream event: (event_us, amount_cents, international, day). A plain tuple of ints,
# which the cyclic GC stops tracking (an Event would stay tracked and lengthen every full collection).
StreamEvent = tuple[int, int, int, int]


class IntradayStream:
    """Events ingested after the store's ``as_of`` day, per customer and per terminal day."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._customers: dict[str, list[StreamEvent]] = defaultdict(list)
        self._terminals: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, event: Event, as_of_day: int) -> None:
        if event.day <= as_of_day:
            return  # already inside the store's daily aggregates
        with self._lock:
            self._customers[event.customer_id].append(
                (event.event_us, event.amount_cents, event.international, event.day)
            )
            self._terminals[event.terminal_id][event.day] += 1

    def customer_events(self, customer_id: str) -> list[StreamEvent]:
        return list(self._customers.get(customer_id, ()))

    def terminal_counts(self, terminal_id: str) -> dict[int, int]:
        return dict(self._terminals.get(terminal_id, {}))

    def drop_through(self, as_of_day: int) -> None:
        """Forget days a newer store now covers (readers skip them anyway; this frees memory)."""
        with self._lock:
            for key in list(self._customers):
                kept = [e for e in self._customers[key] if e[3] > as_of_day]
                if kept:
                    self._customers[key] = kept
                else:
                    del self._customers[key]
            for key in list(self._terminals):
                days = {d: n for d, n in self._terminals[key].items() if d > as_of_day}
                if days:
                    self._terminals[key] = defaultdict(int, days)
                else:
                    del self._terminals[key]


def _customer_prior(customers: dict[str, list[CustomerDay]], as_of: int, customer_id: str, day: int) -> tuple:
    counts = dict.fromkeys(CUSTOMER_WINDOWS, 0)
    cents = dict.fromkeys(CUSTOMER_WINDOWS, 0)
    sq = international = 0
    previous = None
    for d, n, c, q, i, last in customers.get(customer_id, ()):
        back = day - d
        if 1 <= back <= LOOKBACK_DAYS and d <= as_of:
            for w in CUSTOMER_WINDOWS:
                if back <= w:
                    counts[w] += n
                    cents[w] += c
            sq += q
            international += i
            previous = last if previous is None else max(previous, last)
    return counts, cents, sq, international, previous


def _terminal_prior(terminals: dict[str, list[TerminalDay]], as_of: int, terminal_id: str, day: int) -> tuple:
    counts = dict.fromkeys(TERMINAL_WINDOWS, 0)
    frauds = dict.fromkeys(TERMINAL_WINDOWS, 0)
    for d, n, f in terminals.get(terminal_id, ()):
        back = day - d
        if d <= as_of:
            for w in TERMINAL_WINDOWS:
                if LABEL_DELAY_DAYS < back <= LABEL_DELAY_DAYS + w:
                    counts[w] += n
                    frauds[w] += f
    return counts, frauds


class OnlineFeatures:
    """Features of request-time events over one store snapshot.

    The store part of a window depends only on (key, day), so it is summed once per customer or
    terminal and day and kept in a least-recently-used cache of ``cache_size`` entries each (a
    client sending ever new customers or days costs a bounded amount of memory); a new snapshot
    comes with new, empty caches. The cached functions hold the snapshot's dicts, not ``self``: no
    reference cycle, so an old snapshot is freed as soon as it is replaced.
    """

    def __init__(self, snapshot: OnlineSnapshot, cache_size: int) -> None:
        self.snapshot = snapshot
        self._as_of = as_of = snapshot.as_of.toordinal()
        self._customer_prior = functools.lru_cache(cache_size)(
            functools.partial(_customer_prior, snapshot.customers, as_of)
        )
        self._terminal_prior = functools.lru_cache(cache_size)(
            functools.partial(_terminal_prior, snapshot.terminals, as_of)
        )

    def raw_inputs(self, event: Event, stream: IntradayStream) -> dict:
        """The exact raw inputs of ``features.derive_features`` for ``event``."""
        day, now = event.day, event.event_us
        counts, cents, sq, international, previous = self._customer_prior(event.customer_id, day)
        events = stream.customer_events(event.customer_id)
        if events:
            counts, cents = dict(counts), dict(cents)
        for event_us, amount_cents, abroad, event_day in events:
            back = day - event_day
            if event_us < now and 0 <= back <= LOOKBACK_DAYS and event_day > self._as_of:
                for w in CUSTOMER_WINDOWS:
                    if back <= w:
                        counts[w] += 1
                        cents[w] += amount_cents
                sq += amount_cents * amount_cents
                international += abroad
                previous = event_us if previous is None else max(previous, event_us)
        raw = {"amount_cents": event.amount_cents, "event_us": now}
        for w, count_key, cents_key in _CUSTOMER_RAW_KEYS:
            raw[count_key] = counts[w]
            raw[cents_key] = cents[w]
        raw["customer_cents_sq_30"] = sq
        raw["customer_international_30"] = international
        raw["customer_previous_us"] = previous

        terminal_counts, frauds = self._terminal_prior(event.terminal_id, day)
        stream_counts = stream.terminal_counts(event.terminal_id)
        if stream_counts:
            terminal_counts = dict(terminal_counts)
            for d, n in stream_counts.items():
                for w in TERMINAL_WINDOWS:
                    if d > self._as_of and LABEL_DELAY_DAYS < day - d <= LABEL_DELAY_DAYS + w:
                        terminal_counts[w] += n
        for w, count_key, fraud_key in _TERMINAL_RAW_KEYS:
            raw[count_key] = terminal_counts[w]
            raw[fraud_key] = frauds[w]
        return raw

    def features(self, event: Event, stream: IntradayStream) -> dict[str, float]:
        return derive_features(self.raw_inputs(event, stream), _OPS)
