"""The transaction_ids the API accepted lately, in SQLite beside bronze, for idempotent retries.

On disk rather than in memory, so a week of a bank's traffic costs neither RAM nor a re-read of
bronze at every start: the first start on a lake without the index builds it once from the API's
bronze files. Each thread (the event loop that looks up, the writer that adds) has its own
connection; WAL lets them work at once. Rows are added after their bronze lines are fsynced, so
the index never claims a transaction bronze does not hold; a crash between the two only means a
retry of those ids is written again, and silver drops the duplicate.
"""

import sqlite3
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

Entry = tuple[str, str, str]  # (fingerprint, bronze day, received at)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accepted (
    transaction_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    bronze_day TEXT NOT NULL,
    received_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS accepted_by_time ON accepted (received_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class AcceptedIndex:
    def __init__(self, path: Path, retention_days: int) -> None:
        self.path = path
        self.retention = timedelta(days=retention_days)
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = sqlite3.connect(self.path)
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk when it returns (NORMAL could lose the last ones to a power cut,
            # and a retry of those ids would then be written to bronze twice).
            db.execute("PRAGMA synchronous=FULL")
        return db

    def open(self, rebuild_from: Iterable[tuple[str, str, str, str]]) -> None:
        """Create the index, fill it from ``rebuild_from`` (rows of id, fingerprint, day, received
        at) if it was never built, and drop what is past the retention."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._db()
        db.executescript(_SCHEMA)
        if db.execute("SELECT 1 FROM meta WHERE key = 'built'").fetchone() is None:
            with db:
                db.executemany("INSERT OR REPLACE INTO accepted VALUES (?, ?, ?, ?)", rebuild_from)
                # OR IGNORE: two processes starting on a new lake both build (the same rows); the
                # second's mark must not fail its start (it refused every /transactions until a restart).
                db.execute("INSERT OR IGNORE INTO meta VALUES ('built', ?)", (datetime.now(UTC).isoformat(),))
        self.prune()

    def get(self, transaction_id: str) -> Entry | None:
        return (
            self._db()
            .execute(
                "SELECT fingerprint, bronze_day, received_at FROM accepted WHERE transaction_id = ?", (transaction_id,)
            )
            .fetchone()
        )

    def add(self, rows: list[tuple[str, str, str, str]]) -> None:
        with self._db() as db:
            db.executemany("INSERT OR REPLACE INTO accepted VALUES (?, ?, ?, ?)", rows)

    def prune(self) -> None:
        cutoff = (datetime.now(UTC) - self.retention).isoformat()
        with self._db() as db:
            db.execute("DELETE FROM accepted WHERE received_at < ?", (cutoff,))

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
