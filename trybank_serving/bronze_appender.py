"""Durable, idempotent appends of API transactions to bronze (``source=api``).

A record is on disk (written, flushed, fsynced) before the API answers 2xx. Each process appends
to its own file per day, so concurrent workers never interleave bytes. Writes are group-committed:
requests queue their lines and wait; one writer thread writes everything queued and fsyncs once
per file, then wakes them all (one call into the event loop per batch). The index commit is no part
of durability: it comes after the answer, at most ``_INDEX_AFTER_SECONDS`` later, in one commit for
the batches written meanwhile, so under load most fsyncs do not wait behind an index commit.
Requests never wait for each other's fsync in turn, and the event loop never blocks on the disk.

Idempotency: a ``transaction_id`` seen before is answered with its original result and not written
again; one still being written is answered once that write is durable. A transaction scored by
/predict is written with its answer (under ``_received``, which silver ignores), in the same line
and the same fsync, so a retry gets that very answer, after a model reload or a restart too.
Accepted ids and answers are kept for a week in ``ingest_index.AcceptedIndex``, a look-up table
over these files that every start brings up to date from them (an older retry would be written
again and dropped by silver as a duplicate). The index is opened in the background once the app
can score; /predict and /transactions wait for it.
"""

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import BinaryIO, NamedTuple

import orjson

from trybank_assets.lake_layout import LakePaths
from trybank_serving.durable_dirs import fsync_dir, make_dirs
from trybank_serving.ingest_index import AcceptedIndex, Entry, Row

log = logging.getLogger("trybank_serving")

SOURCE = "api"
_MAX_OPEN_FILES = 8
_PRUNE_EVERY_SECONDS = 3600
# Written batches are indexed together, at most this late: one commit instead of one per batch.
_INDEX_AFTER_SECONDS = 0.02


class ConflictingTransaction(ValueError):
    """Same transaction_id as an accepted transaction, different content."""


class BronzeWriteFailed(OSError):
    """The records could not be made durable; nothing of the request counts as accepted."""


class Recorded(NamedTuple):
    """What ``record_scored`` did: the answer to send, whether this call scored the transaction
    (else it is a retry, answered as before) and whether it was new (else /transactions had it)."""

    answer: bytes
    scored: bool
    new: bool


_Queued = tuple[dict[date, bytes], list[Row], asyncio.Future]  # a request's lines by day, index rows, its write


def _fingerprint(record: dict) -> str:
    return hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _result(tx_id: str, entry: Entry) -> dict:
    return {"transaction_id": tx_id, "bronze_day": entry[1], "received_at": entry[2]}


def _line(record: dict, received_at: str, answer: bytes | None) -> bytes:
    received = {"at": received_at} if answer is None else {"at": received_at, "answer": orjson.Fragment(answer)}
    return orjson.dumps({**record, "_received": received}, option=orjson.OPT_APPEND_NEWLINE)


def _rows_of(lines: bytes) -> Iterator[Row]:
    """Index rows of bronze lines the API wrote; the answer re-encodes to the bytes first sent."""
    for line in lines.splitlines():
        try:
            stored = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a line torn by a crash (ended by the next append); silver quarantines it
        meta = stored.pop("_received", None) or {}
        answer = meta.get("answer")
        yield (
            stored["transaction_id"],
            _fingerprint(stored),
            stored["event_time"][:10],
            meta.get("at", ""),
            None if answer is None else orjson.dumps(answer),
        )


class BronzeAppender:
    def __init__(self, lake: LakePaths, retention_days: int = 7) -> None:
        self.lake = lake
        self._file_name = f"part-{socket.gethostname()}-{os.getpid()}.jsonl"
        self._index = AcceptedIndex(lake.api_ingest_index, retention_days)
        # Written to bronze but not to the index (its write failed): still answered as replays.
        self._unindexed: dict[str, Entry] = {}
        # Queued, until indexed: the future is done once the line is durable, which may come first.
        self._pending: dict[str, tuple[Entry, asyncio.Future]] = {}
        self._queue: list[_Queued] = []
        self._pruned_at = time.monotonic()
        self._wake = threading.Condition()
        self._closing = False
        self._files: dict[date, BinaryIO] = {}
        self._indexed = threading.Event()
        self._index_error: Exception | None = None
        self._indexer = threading.Thread(target=self._open_index, name="bronze-index", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="bronze-writer", daemon=True)

    def start(self) -> None:
        """Open the index and start the writer; call it once the app can score, as indexing a week
        of bronze the first time takes seconds."""
        self._indexer.start()
        self._writer.start()

    @property
    def ready(self) -> bool:
        return self._indexed.is_set() and self._index_error is None

    @property
    def index_error(self) -> Exception | None:
        """Why the index could not be opened: every /predict and /transactions is refused."""
        return self._index_error

    def _open_index(self) -> None:
        try:
            self._index.open()
            self._catch_up()
        except Exception as exc:  # reported by every /transactions and /predict until a restart
            self._index_error = exc
        finally:
            self._index.close()
            self._indexed.set()

    def _catch_up(self) -> None:
        """Index what the API's bronze files modified within the retention hold past the bytes the
        index has seen: nothing after a clean stop, the last lines after a crash or a power cut,
        everything when the index is new. Each file is committed with its offset, so an
        interrupted catch-up resumes where it stopped."""
        root = self.lake.bronze_transactions
        since = time.time() - self._index.retention.total_seconds()
        indexed = self._index.indexed_bytes()
        for file in sorted(root.glob(f"date=*/source={SOURCE}/*.jsonl")):
            if file.stat().st_mtime < since:
                continue
            name = str(file.relative_to(root))
            with open(file, "rb") as handle:
                handle.seek(start := indexed.get(name, 0))
                data = handle.read()
            whole = data.rfind(b"\n") + 1  # a torn last line is ended by the next append: read it then
            if whole:
                self._index.add(_rows_of(data[:whole]), {name: start + whole})

    async def _index_opened(self) -> None:
        if not self._indexed.is_set():
            await asyncio.to_thread(self._indexed.wait)
        if self._index_error is not None:
            raise BronzeWriteFailed(f"the idempotency index could not be read: {self._index_error}")

    def _seen(self, tx_id: str) -> tuple[Entry | None, asyncio.Future | None]:
        """What is known of ``tx_id``, and the write to wait for if it is not durable yet."""
        pending = self._pending.get(tx_id)
        if pending is not None:
            entry, written = pending
            return entry, None if written.done() else written
        return self._unindexed.get(tx_id) or self._index.get(tx_id), None

    async def append(self, records: list[dict]) -> list[tuple[dict, bool]]:
        """Write the new records durably; returns (result, replayed) per record, in order.

        Must run on the event loop: the look-up and the queueing of a request happen with no
        ``await`` between them, so two requests can never both write one transaction_id.
        """
        await self._index_opened()
        received_at = _now()
        out: list[tuple[dict, bool]] = []
        in_flight: set[asyncio.Future] = set()  # the writes this answer waits for: its own and earlier ones
        fresh: dict[str, Entry] = {}
        by_day: dict[date, list[bytes]] = {}
        for record in records:
            tx_id, fingerprint = record["transaction_id"], _fingerprint(record)
            seen, writing = (fresh[tx_id], None) if tx_id in fresh else self._seen(tx_id)
            if seen is not None:
                if seen[0] != fingerprint:
                    raise ConflictingTransaction(f"transaction_id {tx_id} was accepted with other content")
                if writing is not None:
                    in_flight.add(writing)
                out.append((_result(tx_id, seen), True))
                continue
            fresh[tx_id] = entry = (fingerprint, record["event_time"][:10], received_at, None)
            by_day.setdefault(date.fromisoformat(entry[1]), []).append(_line(record, received_at, None))
            out.append((_result(tx_id, entry), False))
        if fresh:
            in_flight.add(self._enqueue(fresh, by_day))
        for future in in_flight:
            await asyncio.shield(future)
        return out

    async def record_scored(self, record: dict, score: Callable[[], dict]) -> Recorded:
        """/predict's answer to ``record``, durable in bronze before it returns.

        The first time, ``score()`` gives the answer, written in the record's bronze line; a retry
        (same content) gets the stored answer and is not scored nor written again; other content
        under an accepted id raises ``ConflictingTransaction``. A transaction /transactions accepted
        unscored is scored once, and written again with its answer (silver drops the copy).
        Must run on the event loop, like ``append``: from the last look-up to the queueing there is
        no ``await``, so two requests can never both score one transaction_id.
        """
        await self._index_opened()
        tx_id, fingerprint = record["transaction_id"], _fingerprint(record)
        while True:
            seen, writing = self._seen(tx_id)
            if seen is not None and seen[0] != fingerprint:
                raise ConflictingTransaction(f"transaction_id {tx_id} was accepted with other content")
            if writing is None or seen[3] is not None:
                break
            await asyncio.shield(writing)  # accepted unscored and still being written: look again once durable
        if seen is not None and seen[3] is not None:
            if writing is not None:
                await asyncio.shield(writing)
            return Recorded(seen[3], scored=False, new=False)
        answer = orjson.dumps(score())
        day, received_at = (seen[1], seen[2]) if seen is not None else (record["event_time"][:10], _now())
        line = _line(record, received_at, answer)
        await asyncio.shield(
            self._enqueue({tx_id: (fingerprint, day, received_at, answer)}, {date.fromisoformat(day): [line]})
        )
        return Recorded(answer, scored=True, new=seen is None)

    def _enqueue(self, fresh: dict[str, Entry], by_day: dict[date, list[bytes]]) -> asyncio.Future:
        """Queue the lines of ``fresh`` for the writer; the future is settled once they are durable."""
        written = asyncio.get_running_loop().create_future()
        self._pending.update({tx_id: (entry, written) for tx_id, entry in fresh.items()})
        rows = [(tx_id, *entry) for tx_id, entry in fresh.items()]
        with self._wake:
            self._queue.append(({day: b"".join(lines) for day, lines in by_day.items()}, rows, written))
            self._wake.notify()
        return written

    def _settle(self, batch: list[_Queued]) -> None:
        """Forget the batch's ids once indexed (or failed); on the loop, like every look-up. A
        transaction /transactions accepted unscored may have been queued again with its answer
        meanwhile: that newer write stays."""
        for _, rows, written in batch:
            for tx_id, *_ in rows:
                if self._pending.get(tx_id, (None, None))[1] is written:
                    del self._pending[tx_id]

    def _answer(self, batch: list[_Queued], failure: Exception | None) -> None:
        """On the loop: a failed batch is forgotten first, so that its retry writes it again."""
        if failure is not None:
            self._settle(batch)
        for _, _, written in batch:
            _resolve(written, failure)

    def _post(self, batch: list[_Queued], callback: Callable, *args) -> None:
        """Call ``callback(batch, *args)`` on the event loop of the batch's requests: one wake-up per batch."""
        by_loop: dict[asyncio.AbstractEventLoop, list[_Queued]] = {}
        for queued in batch:
            by_loop.setdefault(queued[2].get_loop(), []).append(queued)
        for loop, queued in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed event loop: nobody waits for the answer
                loop.call_soon_threadsafe(callback, queued, *args)

    def close(self) -> None:
        """Write what is queued, then stop the writer and close the files and the index."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        if self._writer.ident is not None:  # started
            self._writer.join()
        self._index.close()  # the calling (event loop) thread's connection

    def _write_loop(self) -> None:
        unindexed: list[_Queued] = []  # written and answered, waiting for the next index commit
        sizes: dict[str, int] = {}
        index_at = 0.0
        while True:
            with self._wake:
                while not self._queue and not self._closing:
                    if not unindexed:
                        self._wake.wait()
                    elif not self._wake.wait(index_at - time.monotonic()):
                        break
                batch, self._queue = self._queue, []
            if batch:
                written = self._write_batch(batch)
                if isinstance(written, Exception):
                    self._post(batch, self._answer, BronzeWriteFailed(f"bronze write failed: {written}"))
                else:
                    # Durable: answered now. The index is a look-up table rebuilt from bronze, so its
                    # commit need not delay the answer; the ids stay in ``_pending`` until it is done.
                    self._post(batch, self._answer, None)
                    if not unindexed:
                        index_at = time.monotonic() + _INDEX_AFTER_SECONDS
                    unindexed += batch
                    sizes.update(written)  # in write order: a file's last size covers the earlier ones
            if unindexed and (self._closing or time.monotonic() >= index_at):
                self._index_batch([row for _, rows, _ in unindexed for row in rows], sizes)
                self._post(unindexed, self._settle)
                unindexed, sizes = [], {}
            if not batch and not unindexed and self._closing:
                break
        for handle in self._files.values():
            handle.close()
        self._index.close()

    def _index_batch(self, rows: list[Row], sizes: dict[str, int]) -> None:
        """Index what is now durable in bronze; if the index cannot be written, remember the ids in
        memory: the transactions are accepted either way (and the next start indexes them)."""
        try:
            self._index.add(rows, sizes)
            if time.monotonic() - self._pruned_at > _PRUNE_EVERY_SECONDS:
                self._index.prune()
                self._pruned_at = time.monotonic()
        except Exception:
            log.exception("could not write the ingest index; %d ids kept in memory", len(rows))
            self._unindexed.update((row[0], row[1:]) for row in rows)

    def _write_batch(self, batch: list[_Queued]) -> dict[str, int] | Exception:
        """Write and fsync the batch; returns each written file's size (by its path under the bronze
        root), or the error, after cutting the files back to where they were."""
        by_day: dict[date, list[bytes]] = {}
        for data, _, _ in batch:
            for day, chunk in data.items():
                by_day.setdefault(day, []).append(chunk)
        sizes: dict[str, int] = {}  # each file's size before this batch
        written: dict[str, int] = {}
        try:
            for day, chunks in by_day.items():
                handle = self._file(day)
                sizes[handle.name] = handle.tell()
                handle.write(b"".join(chunks))
                written[handle.name] = handle.tell()
            for day in by_day:
                if (handle := self._files.get(day)) is not None:  # else synced when it was evicted
                    _sync(handle)
        except Exception as exc:  # the writer thread must outlive any failure: it answers every request
            for day in by_day:  # reopened next time, which ends a line torn by this failure
                handle = self._files.pop(day, None)
                if handle is not None:
                    with contextlib.suppress(OSError):
                        handle.close()
            # A failed batch is answered 503, "nothing accepted": cut off what it wrote to the days
            # that did not fail, or a corrected resend would meet the old content in bronze.
            for name, size in sizes.items():
                with contextlib.suppress(OSError):
                    os.truncate(name, size)
            return exc
        root = self.lake.bronze_transactions
        return {os.path.relpath(name, root): size for name, size in written.items()}

    def _file(self, day: date) -> BinaryIO:
        handle = self._files.get(day)
        if handle is None:
            if len(self._files) >= _MAX_OPEN_FILES:
                evicted = self._files.pop(next(iter(self._files)))
                _sync(evicted)  # it may hold this batch's lines
                evicted.close()
            folder = self.lake.bronze_source_dir(day, SOURCE)
            make_dirs(folder)
            path = folder / self._file_name
            created = not path.exists()
            handle = open(path, "ab")  # noqa: SIM115 - kept open across batches, closed by close()
            if created:  # the file's fsync does not write its name: a power cut would lose the day's file
                fsync_dir(folder)
            if handle.tell() > 0:
                with open(path, "rb") as check:
                    check.seek(-1, os.SEEK_END)
                    if check.read(1) != b"\n":
                        handle.write(b"\n")  # end a line torn by an earlier crash before appending
            self._files[day] = handle
        return handle


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _sync(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _resolve(written: asyncio.Future, error: Exception | None) -> None:
    if error is None:
        written.set_result(None)
    else:
        written.set_exception(error)
