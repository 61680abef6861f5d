"""Serving's features (store + the day's stream) against the brute-force reference, without Spark: velocity
windows at their edges, same-second and same-instant events, midnight, a late store, events ingested out of
order and events after the transaction already in the stream."""

import random
import sqlite3
from collections import defaultdict
from datetime import date, timedelta

import pytest

from trybank_assets.features import TERMINAL_HABIT_DAYS, is_international
from trybank_assets.online_store import OnlineSnapshot, load_snapshot, write_store
from trybank_serving.online_features import Event, IntradayStream, OnlineFeatures
from trybank_tests.feature_reference import D0, at, micros, reference_features, transaction, velocity_edges


def _event(t: dict) -> Event:
    international = is_international(t["merchant_country"], t["customer_country"])
    return Event(
        t["customer_id"],
        t["terminal_id"],
        micros(t["event_time"]),
        t["amount_cents"],
        international,
        t["date"].toordinal(),
    )


def _snapshot(transactions: list[dict], as_of: date) -> OnlineSnapshot:
    """The store online_customer_state writes as of ``as_of``, aggregated here in plain Python."""
    customers, terminals, used = defaultdict(dict), defaultdict(dict), defaultdict(dict)
    for t in transactions:
        if t["date"] > as_of:
            continue
        e, day = _event(t), t["date"].toordinal()
        n, cents, sq, abroad, last = customers[e.customer_id].get(day, (0, 0, 0, 0, 0))
        customers[e.customer_id][day] = (
            n + 1,
            cents + e.amount_cents,
            sq + e.amount_cents**2,
            abroad + e.international,
            max(last, e.event_us),
        )
        n, fraud, cents = terminals[e.terminal_id].get(day, (0, 0, 0))
        terminals[e.terminal_id][day] = (n + 1, fraud + bool(t["is_fraud"]), cents + e.amount_cents)
        if (as_of - t["date"]).days < TERMINAL_HABIT_DAYS:
            used[e.customer_id][e.terminal_id] = max(day, used[e.customer_id].get(e.terminal_id, 0))
    return OnlineSnapshot(
        as_of,
        {c: [(d, *v) for d, v in sorted(days.items())] for c, days in customers.items()},
        {k: [(d, *v) for d, v in sorted(days.items())] for k, days in terminals.items()},
        dict(used),
    )


@pytest.mark.parametrize("store_days_late", [0, 1])
def test_online_features_equal_the_reference(store_days_late):
    transactions = [
        *velocity_edges(),
        transaction("C6", "T5", at(1, 15), "12.00"),  # yesterday: from the stream when the store is a day late
        transaction("C5", "T6", at(1, 16), "13.00"),  # C5 knows T6 from yesterday, whichever holds it
        transaction("C5", "T7", at(0, 10, 0, 1), "10.00"),  # after the edges: in the stream, never in a window
    ]
    as_of = D0 - timedelta(days=1 + store_days_late)
    online, stream = OnlineFeatures(_snapshot(transactions, as_of), cache_size=100), IntradayStream()
    ingested = [_event(t) for t in transactions]
    random.Random(7).shuffle(ingested)  # the API ingests in arrival order, not event order
    for e in ingested:
        stream.add(e, as_of.toordinal())
    expected = reference_features(transactions)
    served = [t for t in transactions if t["date"] > as_of]
    assert len(served) >= 10
    for t in served:
        got = online.features(_event(t), stream)
        for name, value in expected[t["transaction_id"]].items():
            assert got[name] == pytest.approx(value, abs=1e-9), (t["customer_id"], t["event_time"], name)
    assert any(online.features(_event(t), stream)["customer_txn_count_10min"] == 2 for t in served)


def test_the_store_keeps_customer_terminal_pairs_and_refuses_an_older_format(tmp_path):
    path, day = tmp_path / "customer_state.sqlite", D0.toordinal()
    counts = write_store(
        path,
        D0,
        [("C1", day, 1, 100, 10_000, 0, 1)],
        [("T1", day, 1, 0, 100)],
        [("C1", "T1", day), ("C1", "T2", day - 3)],
    )
    assert counts == (1, 1, 2)
    snapshot = load_snapshot(path)
    assert snapshot.customer_terminals == {"C1": {"T1": day, "T2": day - 3}}
    assert snapshot.terminals == {"T1": [(day, 1, 0, 100)]}
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM meta WHERE key = 'format'")
    with pytest.raises(ValueError, match="store format 1, this code reads format 2: rebuild it"):
        load_snapshot(path)
