"""A transaction's features at request time: the online store's daily aggregates plus the stream.

Gold computes each feature from whole previous days (daily aggregates) plus the same day's
earlier events. Here the days up to the store's ``as_of`` come from the store and later events
from the stream this process ingested, then ``features.derive_features`` applies the very same
formulas with Python numbers. The velocity windows (the same UTC day's last 10 minutes and hour)
come from the stream alone, so they are exact for every day after the store's ``as_of``.
"""

import functools
import threading
from bisect import bisect_left, insort
from collections import defaultdict
from typing import NamedTuple

from trybank_assets.features import (
    CUSTOMER_WINDOWS,
    LABEL_DELAY_DAYS,
    LOOKBACK_DAYS,
    MICROS_PER_DAY,
    TERMINAL_HABIT_DAYS,
    TERMINAL_WINDOWS,
    VELOCITY_WINDOWS,
    PythonFeatureOps,
    derive_features,
    is_international,
)
from trybank_assets.online_store import CustomerDay, OnlineSnapshot, TerminalDay

_OPS = PythonFeatureOps()
_CUSTOMER_RAW_KEYS = tuple((w, f"customer_count_{w}", f"customer_cents_{w}") for w in CUSTOMER_WINDOWS)
_TERMINAL_RAW_KEYS = tuple((w, f"terminal_count_{w}", f"terminal_fraud_{w}") for w in TERMINAL_WINDOWS)
# (window in µs, count key, cents key) per velocity window, for customers and for terminals
_VELOCITY_RAW_KEYS = {
    who: tuple(
        (seconds * 1_000_000, f"{who}_count_{suffix}", f"{who}_cents_{suffix}")
        for suffix, seconds, _ in VELOCITY_WINDOWS
    )
    for who in ("customer", "terminal")
}
_LONGEST_VELOCITY_US = max(seconds for _, seconds, _ in VELOCITY_WINDOWS) * 1_000_000
_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()


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
        event_us // MICROS_PER_DAY + _EPOCH_ORDINAL,
    )


# A customer's stream event: (event_us, amount_cents, international, day, terminal_id); a terminal's:
# (event_us, amount_cents). Plain tuples of ints and a str, which the cyclic GC stops tracking (an Event
# would stay tracked and lengthen every full collection).
StreamEvent = tuple[int, int, int, int, str]
TerminalEvent = tuple[int, int]


class IntradayStream:
    """Events ingested after the store's ``as_of`` day: per customer, and per terminal both day totals
    (for the day windows) and the events in time order (for the velocity windows' range lookups, so a
    busy terminal costs a bisection and the window's events, not a scan of its day)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._customers: dict[str, list[StreamEvent]] = defaultdict(list)
        self._terminal_days: dict[str, dict[int, tuple[int, int]]] = defaultdict(dict)  # day → (count, cents)
        self._terminal_events: dict[str, list[TerminalEvent]] = defaultdict(list)

    def add(self, event: Event, as_of_day: int) -> None:
        if event.day <= as_of_day:
            return  # already inside the store's daily aggregates
        with self._lock:
            self._customers[event.customer_id].append(
                (event.event_us, event.amount_cents, event.international, event.day, event.terminal_id)
            )
            days = self._terminal_days[event.terminal_id]
            count, cents = days.get(event.day, (0, 0))
            days[event.day] = (count + 1, cents + event.amount_cents)
            insort(self._terminal_events[event.terminal_id], (event.event_us, event.amount_cents))

    def customer_events(self, customer_id: str) -> list[StreamEvent]:
        return list(self._customers.get(customer_id, ()))

    def terminal_days(self, terminal_id: str) -> dict[int, tuple[int, int]]:
        """The terminal's (transactions, cents) per stream day."""
        return dict(self._terminal_days.get(terminal_id, {}))

    def terminal_events_between(self, terminal_id: str, start_us: int, end_us: int) -> list[TerminalEvent]:
        """The terminal's events with ``start_us <= event_us < end_us``."""
        with self._lock:
            events = self._terminal_events.get(terminal_id, [])
            return events[bisect_left(events, (start_us,)) : bisect_left(events, (end_us,))]

    def drop_through(self, as_of_day: int) -> None:
        """Forget days a newer store now covers (readers skip them anyway; this frees memory)."""
        first_kept_us = (as_of_day + 1 - _EPOCH_ORDINAL) * MICROS_PER_DAY
        with self._lock:
            for key in list(self._customers):
                kept = [e for e in self._customers[key] if e[3] > as_of_day]
                if kept:
                    self._customers[key] = kept
                else:
                    del self._customers[key]
            for key in list(self._terminal_days):
                days = {d: totals for d, totals in self._terminal_days[key].items() if d > as_of_day}
                if days:
                    self._terminal_days[key] = days
                    events = self._terminal_events[key]
                    self._terminal_events[key] = events[bisect_left(events, (first_kept_us,)) :]
                else:
                    del self._terminal_days[key]
                    del self._terminal_events[key]


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
    recent_count = recent_cents = 0
    for d, n, f, c in terminals.get(terminal_id, ()):
        back = day - d
        if d <= as_of:
            for w in TERMINAL_WINDOWS:
                if LABEL_DELAY_DAYS < back <= LABEL_DELAY_DAYS + w:
                    counts[w] += n
                    frauds[w] += f
            if 1 <= back <= TERMINAL_HABIT_DAYS:
                recent_count += n
                recent_cents += c
    return counts, frauds, recent_count, recent_cents


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
        day, now, terminal_id = event.day, event.event_us, event.terminal_id
        day_start = (day - _EPOCH_ORDINAL) * MICROS_PER_DAY
        counts, cents, sq, international, previous = self._customer_prior(event.customer_id, day)
        last_used = self.snapshot.customer_terminals.get(event.customer_id, {}).get(terminal_id)
        seen = last_used is not None and 1 <= day - last_used <= TERMINAL_HABIT_DAYS
        raw = {"amount_cents": event.amount_cents, "event_us": now}
        velocity = _VELOCITY_RAW_KEYS["customer"]
        for _, count_key, cents_key in velocity:
            raw[count_key] = raw[cents_key] = 0
        events = stream.customer_events(event.customer_id)
        if events:
            counts, cents = dict(counts), dict(cents)
        for event_us, amount_cents, abroad, event_day, event_terminal in events:
            back = day - event_day
            if event_us < now and 0 <= back <= LOOKBACK_DAYS and event_day > self._as_of:
                for w in CUSTOMER_WINDOWS:
                    if back <= w:
                        counts[w] += 1
                        cents[w] += amount_cents
                sq += amount_cents * amount_cents
                international += abroad
                previous = event_us if previous is None else max(previous, event_us)
                seen = seen or (event_terminal == terminal_id and back <= TERMINAL_HABIT_DAYS)
                if back == 0:
                    for span, count_key, cents_key in velocity:
                        if event_us >= now - span:
                            raw[count_key] += 1
                            raw[cents_key] += amount_cents
        for w, count_key, cents_key in _CUSTOMER_RAW_KEYS:
            raw[count_key] = counts[w]
            raw[cents_key] = cents[w]
        raw["customer_cents_sq_30"] = sq
        raw["customer_international_30"] = international
        raw["customer_previous_us"] = previous
        raw["customer_terminal_seen"] = int(seen)

        terminal_counts, frauds, recent_count, recent_cents = self._terminal_prior(terminal_id, day)
        stream_days = stream.terminal_days(terminal_id)
        if stream_days:
            terminal_counts = dict(terminal_counts)
            for d, (n, c) in stream_days.items():
                if d > self._as_of:
                    for w in TERMINAL_WINDOWS:
                        if LABEL_DELAY_DAYS < day - d <= LABEL_DELAY_DAYS + w:
                            terminal_counts[w] += n
                    if 1 <= day - d <= TERMINAL_HABIT_DAYS:
                        recent_count += n
                        recent_cents += c
        for w, count_key, fraud_key in _TERMINAL_RAW_KEYS:
            raw[count_key] = terminal_counts[w]
            raw[fraud_key] = frauds[w]
        raw["terminal_recent_count"] = recent_count
        raw["terminal_recent_cents"] = recent_cents
        velocity = _VELOCITY_RAW_KEYS["terminal"]
        for _, count_key, cents_key in velocity:
            raw[count_key] = raw[cents_key] = 0
        if stream_days:
            for event_us, amount_cents in stream.terminal_events_between(
                terminal_id, max(now - _LONGEST_VELOCITY_US, day_start), now
            ):
                for span, count_key, cents_key in velocity:
                    if event_us >= now - span:
                        raw[count_key] += 1
                        raw[cents_key] += amount_cents
        return raw

    def features(self, event: Event, stream: IntradayStream) -> dict[str, float]:
        return derive_features(self.raw_inputs(event, stream), _OPS)
