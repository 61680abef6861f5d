"""The transaction_ids the API accepted lately, in SQLite beside bronze, for idempotent retries.

A look-up table over bronze, never more: bronze lines are the durable record (a line scored by
/predict carries its answer), fsynced before the API answers, and the index is rebuilt from them.
It records, per API bronze file, how many bytes it has indexed, in the same commit as the rows;
every start indexes what lies past that offset (nothing after a clean stop, a file's tail after a
crash, everything the first time). So commits need not reach the disk before the answer
(``synchronous=NORMAL``: a power cut may lose the last ones, and the next start reads them back
from bronze), which keeps a second fsync off every request. On disk rather than in memory, so a
week of a bank's traffic costs neither RAM nor a re-read of bronze at every start. Each thread
(the event loop that looks up, the writer that adds) has its own connection; WAL lets them work at
once.
"""

import fcntl
import sqlite3
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

Entry = tuple[str, str, str, bytes | None]  # (fingerprint, bronze day, received at, /predict's answer)
Row = tuple[str, str, str, str, bytes | None]  # (transaction_id, *Entry)

# Bumped when the tables change: an index of another version is dropped and rebuilt from bronze.
_VERSION = 3
# A rowid table: rows (with an answer, hundreds of bytes) are appended in arrival order and only the
# narrow transaction_id index takes the random inserts of new UUIDs; keyed by the id (WITHOUT ROWID),
# each insert rewrote a random page of wide rows, the writer's largest cost under load.
_SCHEMA = f"""
DROP TABLE IF EXISTS accepted;
DROP TABLE IF EXISTS meta;
DROP TABLE IF EXISTS indexed_files;
CREATE TABLE accepted (
    transaction_id TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    bronze_day TEXT NOT NULL,
    received_at TEXT NOT NULL,
    answer BLOB
);
CREATE INDEX accepted_by_time ON accepted (received_at);
CREATE TABLE indexed_files (file TEXT PRIMARY KEY, indexed_bytes INTEGER NOT NULL, indexed_at TEXT NOT NULL);
PRAGMA user_version = {_VERSION};
"""
# The first row of an id wins; an answer fills in a row accepted unscored by /transactions.
# All rows in one statement, from a JSON array: executemany steps once per row, and every step hands
# the GIL to the event loop and waits to get it back. (``WHERE true``: SQLite's rule for an upsert
# from a SELECT.) An answer travels as JSON text and is stored as its UTF-8 bytes, those first sent.
_UPSERT = """
INSERT INTO accepted
SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, CAST(value ->> 4 AS BLOB)
FROM json_each(?) WHERE true ORDER BY key
ON CONFLICT (transaction_id) DO UPDATE SET answer = coalesce(accepted.answer, excluded.answer)
"""
_UPSERT_FILE = """
INSERT INTO indexed_files VALUES (?, ?, ?)
ON CONFLICT (file) DO UPDATE SET
    indexed_bytes = max(indexed_files.indexed_bytes, excluded.indexed_bytes), indexed_at = excluded.indexed_at
"""


class AcceptedIndex:
    def __init__(self, path: Path, retention_days: int) -> None:
        self.path = path
        self.retention = timedelta(days=retention_days)
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = sqlite3.connect(self.path, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # bronze is the durable record; see the module's docstring
        return db

    def open(self) -> None:
        """Create the index (or replace one of another version) and drop what is past the retention."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Two processes starting at once: one creates, the other then sees it. SQLite answers "database is
        # locked" at once, without its busy timeout, to a connection switching a new database to WAL while
        # another does (10% of 300 tries of two threads), so each process's first connection is made under a lock.
        with self.path.with_name(self.path.name + ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            db = self._db()
            with db:
                db.execute("BEGIN IMMEDIATE")
                if db.execute("PRAGMA user_version").fetchone()[0] != _VERSION:
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        db.execute(statement)
        self.prune()

    def indexed_bytes(self) -> dict[str, int]:
        """How many bytes of each bronze file (by its path under the bronze root) are indexed."""
        return dict(self._db().execute("SELECT file, indexed_bytes FROM indexed_files"))

    def get(self, transaction_id: str) -> Entry | None:
        return (
            self._db()
            .execute(
                "SELECT fingerprint, bronze_day, received_at, answer FROM accepted WHERE transaction_id = ?",
                (transaction_id,),
            )
            .fetchone()
        )

    def add(self, rows: Iterable[Row], indexed_bytes: dict[str, int]) -> None:
        """Index ``rows`` and, in the same commit, how far each file they come from is indexed."""
        now = datetime.now(UTC).isoformat()
        encoded = orjson.dumps([(*entry, None if answer is None else answer.decode()) for *entry, answer in rows])
        with self._db() as db:
            db.execute(_UPSERT, (encoded,))
            db.executemany(_UPSERT_FILE, [(file, size, now) for file, size in indexed_bytes.items()])

    def prune(self) -> None:
        cutoff = (datetime.now(UTC) - self.retention).isoformat()
        with self._db() as db:
            db.execute("DELETE FROM accepted WHERE received_at < ?", (cutoff,))
            # Files last written before the retention are not read back at a start either.
            db.execute("DELETE FROM indexed_files WHERE indexed_at < ?", (cutoff,))

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
