"""The online feature store: recent daily aggregates per customer and terminal, for serving.

Embedded default: one SQLite file, rebuilt whole and swapped in with ``os.replace`` so a reader
opens either the old or the new store, never a half-written one. Serving loads it into memory
(``OnlineSnapshot``); another backend (Redis) only needs to produce the same snapshot.
"""

import os
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

# (day ordinal, txn_count, amount_cents_sum, amount_cents_sq_sum, international_count, last_event_us)
CustomerDay = tuple[int, int, int, int, int, int]
# (day ordinal, txn_count, fraud_count)
TerminalDay = tuple[int, int, int]

_SCHEMA = """
CREATE TABLE customer_daily (
    customer_id TEXT NOT NULL, day INTEGER NOT NULL, txn_count INTEGER NOT NULL,
    amount_cents_sum INTEGER NOT NULL, amount_cents_sq_sum INTEGER NOT NULL,
    international_count INTEGER NOT NULL, last_event_us INTEGER NOT NULL,
    PRIMARY KEY (customer_id, day)
) WITHOUT ROWID;
CREATE TABLE terminal_daily (
    terminal_id TEXT NOT NULL, day INTEGER NOT NULL, txn_count INTEGER NOT NULL, fraud_count INTEGER NOT NULL,
    PRIMARY KEY (terminal_id, day)
) WITHOUT ROWID;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class OnlineSnapshot:
    as_of: date
    customers: dict[str, list[CustomerDay]]
    terminals: dict[str, list[TerminalDay]]


def write_store(
    path: Path,
    as_of: date,
    customer_rows: Iterable[tuple[str, *CustomerDay]],
    terminal_rows: Iterable[tuple[str, *TerminalDay]],
) -> tuple[int, int]:
    """Write a complete store next to ``path`` and swap it in; returns (customer rows, terminal rows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(tmp) as db:
        db.executescript(_SCHEMA)
        db.executemany("INSERT INTO customer_daily VALUES (?, ?, ?, ?, ?, ?, ?)", customer_rows)
        db.executemany("INSERT INTO terminal_daily VALUES (?, ?, ?, ?)", terminal_rows)
        db.execute("INSERT INTO meta VALUES ('as_of', ?)", (as_of.isoformat(),))
        counts = (
            db.execute("SELECT count(*) FROM customer_daily").fetchone()[0],
            db.execute("SELECT count(*) FROM terminal_daily").fetchone()[0],
        )
    db.close()
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return counts


def load_snapshot(path: Path) -> OnlineSnapshot:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'as_of'").fetchone()
        if row is None:
            raise ValueError(f"{path} has no as_of in its meta table")
        as_of = date.fromisoformat(row[0])
        customers: dict[str, list[CustomerDay]] = defaultdict(list)
        for customer_id, *row in db.execute("SELECT * FROM customer_daily ORDER BY customer_id, day"):
            customers[customer_id].append(tuple(row))
        terminals: dict[str, list[TerminalDay]] = defaultdict(list)
        for terminal_id, *row in db.execute("SELECT * FROM terminal_daily ORDER BY terminal_id, day"):
            terminals[terminal_id].append(tuple(row))
    finally:
        db.close()
    return OnlineSnapshot(as_of, dict(customers), dict(terminals))
