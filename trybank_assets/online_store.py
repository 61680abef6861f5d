"""The online feature store: recent daily aggregates per customer and terminal, for serving.

Besides the daily aggregates it holds, per customer, the latest day within the last
``TERMINAL_HABIT_DAYS`` it used each terminal (for the first-time-at-terminal flag): one row per
(customer, terminal) pair, not per day, so its size is bounded by the customers' habits.

Embedded default: one SQLite file, rebuilt whole and swapped in with ``os.replace`` so a reader
opens either the old or the new store, never a half-written one. Serving loads it into memory
(``OnlineSnapshot``); another backend (Redis) only needs to produce the same snapshot.
"""

import os
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

# (day ordinal, txn_count, amount_cents_sum, amount_cents_sq_sum, international_count, last_event_us)
CustomerDay = tuple[int, int, int, int, int, int]
# (day ordinal, txn_count, fraud_count, amount_cents_sum)
TerminalDay = tuple[int, int, int, int]
# Bumped whenever a table changes, so serving refuses a store written by older code instead of misreading it.
STORE_FORMAT = "2"

_SCHEMA = """
CREATE TABLE customer_daily (
    customer_id TEXT NOT NULL, day INTEGER NOT NULL, txn_count INTEGER NOT NULL,
    amount_cents_sum INTEGER NOT NULL, amount_cents_sq_sum INTEGER NOT NULL,
    international_count INTEGER NOT NULL, last_event_us INTEGER NOT NULL,
    PRIMARY KEY (customer_id, day)
) WITHOUT ROWID;
CREATE TABLE terminal_daily (
    terminal_id TEXT NOT NULL, day INTEGER NOT NULL, txn_count INTEGER NOT NULL, fraud_count INTEGER NOT NULL,
    amount_cents_sum INTEGER NOT NULL,
    PRIMARY KEY (terminal_id, day)
) WITHOUT ROWID;
CREATE TABLE customer_terminal (
    customer_id TEXT NOT NULL, terminal_id TEXT NOT NULL, last_day INTEGER NOT NULL,
    PRIMARY KEY (customer_id, terminal_id)
) WITHOUT ROWID;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class OnlineSnapshot:
    as_of: date
    customers: dict[str, list[CustomerDay]]
    terminals: dict[str, list[TerminalDay]]
    # customer → terminal → the latest day (ordinal) the customer used it, within the store's days
    customer_terminals: dict[str, dict[str, int]] = field(default_factory=dict)


def write_store(
    path: Path,
    as_of: date,
    customer_rows: Iterable[tuple[str, *CustomerDay]],
    terminal_rows: Iterable[tuple[str, *TerminalDay]],
    customer_terminal_rows: Iterable[tuple[str, str, int]] = (),
) -> tuple[int, int, int]:
    """Write a complete store next to ``path`` and swap it in; returns its customer-day, terminal-day and
    (customer, terminal) rows. ``customer_terminal_rows`` hold (customer_id, terminal_id, last day ordinal)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(tmp) as db:
        db.executescript(_SCHEMA)
        db.executemany("INSERT INTO customer_daily VALUES (?, ?, ?, ?, ?, ?, ?)", customer_rows)
        db.executemany("INSERT INTO terminal_daily VALUES (?, ?, ?, ?, ?)", terminal_rows)
        db.executemany("INSERT INTO customer_terminal VALUES (?, ?, ?)", customer_terminal_rows)
        db.execute("INSERT INTO meta VALUES ('as_of', ?)", (as_of.isoformat(),))
        db.execute("INSERT INTO meta VALUES ('format', ?)", (STORE_FORMAT,))
        counts = tuple(
            db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("customer_daily", "terminal_daily", "customer_terminal")
        )
    db.close()
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return counts


def load_snapshot(path: Path) -> OnlineSnapshot:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta"))
        if "as_of" not in meta:
            raise ValueError(f"{path} has no as_of in its meta table")
        if meta.get("format") != STORE_FORMAT:
            raise ValueError(
                f"{path} is in store format {meta.get('format', '1')}, this code reads format {STORE_FORMAT}: "
                "rebuild it (materialize online_customer_state)"
            )
        as_of = date.fromisoformat(meta["as_of"])
        customers: dict[str, list[CustomerDay]] = defaultdict(list)
        for customer_id, *row in db.execute("SELECT * FROM customer_daily ORDER BY customer_id, day"):
            customers[customer_id].append(tuple(row))
        terminals: dict[str, list[TerminalDay]] = defaultdict(list)
        for terminal_id, *row in db.execute("SELECT * FROM terminal_daily ORDER BY terminal_id, day"):
            terminals[terminal_id].append(tuple(row))
        customer_terminals: dict[str, dict[str, int]] = defaultdict(dict)
        for customer_id, terminal_id, last_day in db.execute("SELECT * FROM customer_terminal"):
            customer_terminals[customer_id][terminal_id] = last_day
    finally:
        db.close()
    return OnlineSnapshot(as_of, dict(customers), dict(terminals), dict(customer_terminals))
