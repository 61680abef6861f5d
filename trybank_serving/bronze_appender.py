"""Durable, idempotent appends of API transactions to bronze (``source=api``).

A record is on disk (written, flushed, fsynced) before the API answers 2xx. Each process appends
to its own file per day, so concurrent workers never interleave bytes. Writes are group-committed:
requests queue their lines and wait; one writer thread writes everything queued and fsyncs once
per file, then wakes them all. Requests never wait for each other's fsync in turn, and the event
loop never blocks on the disk.

Idempotency: a ``transaction_id`` seen before is answered with its original result and not written
again; one still being written is answered once that write is durable. Accepted ids are kept for
a week in ``ingest_index.AcceptedIndex`` (an older retry would be written again and dropped by
silver as a duplicate). The index is opened in the background, built from the API's bronze files
the first time; /predict serves meanwhile, and /transactions waits for it.
"""

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import BinaryIO

import orjson

from trybank_assets.lake_layout import LakePaths
from trybank_serving.durable_dirs import fsync_dir, make_dirs
from trybank_serving.ingest_index import AcceptedIndex, Entry

log = logging.getLogger("trybank_serving")

SOURCE = "api"
_MAX_OPEN_FILES = 8
_PRUNE_EVERY_SECONDS = 3600


class ConflictingTransaction(ValueError):
    """Same transaction_id as an accepted transaction, different content."""


class BronzeWriteFailed(OSError):
    """The records could not be made durable; nothing of the request counts as accepted."""


def _fingerprint(record: dict) -> str:
    return hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _result(tx_id: str, entry: Entry) -> dict:
    return {"transaction_id": tx_id, "bronze_day": entry[1], "received_at": entry[2]}


class BronzeAppender:
    def __init__(self, lake: LakePaths, retention_days: int = 7) -> None:
        self.lake = lake
        self._file_name = f"part-{socket.gethostname()}-{os.getpid()}.jsonl"
        self._index = AcceptedIndex(lake.api_ingest_index, retention_days)
        # Written to bronze but not to the index (its write failed): still answered as replays.
        self._unindexed: dict[str, Entry] = {}
        self._pending: dict[str, tuple[str, str, str, asyncio.Future]] = {}  # queued, not yet durable
        self._queue: list[tuple[dict[date, bytes], list[tuple[str, str, str, str]], asyncio.Future]] = []
        self._pruned_at = time.monotonic()
        self._wake = threading.Condition()
        self._closing = False
        self._files: dict[date, BinaryIO] = {}
        self._indexed = threading.Event()
        self._index_error: Exception | None = None
        self._indexer = threading.Thread(target=self._open_index, name="bronze-index", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="bronze-writer", daemon=True)

    def start(self) -> None:
        """Open the index and start the writer; call it once the app can score, as building a
        missing index from a busy week of bronze takes seconds that would delay the first /predict."""
        self._indexer.start()
        self._writer.start()

    @property
    def ready(self) -> bool:
        return self._indexed.is_set() and self._index_error is None

    def _open_index(self) -> None:
        try:
            self._index.open(self._accepted_in_files())
        except Exception as exc:  # reported by every /transactions until a restart
            self._index_error = exc
        finally:
            self._index.close()
            self._indexed.set()

    def _accepted_in_files(self) -> Iterator[tuple[str, str, str, str]]:
        """Index rows of what the API wrote to bronze files modified within the retention."""
        since = time.time() - self._index.retention.total_seconds()
        files = self.lake.bronze_transactions.glob(f"date=*/source={SOURCE}/*.jsonl")
        for file in sorted(f for f in files if f.stat().st_mtime >= since):
            for line in file.read_bytes().splitlines():
                try:
                    stored = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue  # a torn last line from a crash; silver quarantines it
                meta = stored.pop("_received", None) or {}
                yield stored["transaction_id"], _fingerprint(stored), stored["event_time"][:10], meta.get("at", "")

    async def append(self, records: list[dict]) -> list[tuple[dict, bool]]:
        """Write the new records durably; returns (result, replayed) per record, in order.

        Must run on the event loop: the look-up and the queueing of a request happen with no
        ``await`` between them, so two requests can never both write one transaction_id.
        """
        if not self._indexed.is_set():
            await asyncio.to_thread(self._indexed.wait)
        if self._index_error is not None:
            raise BronzeWriteFailed(f"the idempotency index could not be read: {self._index_error}")
        received_at = datetime.now(UTC).isoformat()
        written = asyncio.get_running_loop().create_future()
        out: list[tuple[dict, bool]] = []
        in_flight: set[asyncio.Future] = set()  # the writes this answer waits for: its own and earlier ones
        fresh: dict[str, Entry] = {}
        by_day: dict[date, list[bytes]] = {}
        for record in records:
            tx_id, fingerprint = record["transaction_id"], _fingerprint(record)
            pending = self._pending.get(tx_id)
            seen = fresh.get(tx_id) or (pending and pending[:3]) or self._unindexed.get(tx_id) or self._index.get(tx_id)
            if seen is not None:
                if seen[0] != fingerprint:
                    raise ConflictingTransaction(f"transaction_id {tx_id} was accepted with other content")
                if pending is not None:
                    in_flight.add(pending[3])
                out.append((_result(tx_id, seen), True))
                continue
            fresh[tx_id] = entry = (fingerprint, record["event_time"][:10], received_at)
            line = orjson.dumps({**record, "_received": {"at": received_at}}, option=orjson.OPT_APPEND_NEWLINE)
            by_day.setdefault(date.fromisoformat(entry[1]), []).append(line)
            out.append((_result(tx_id, entry), False))

        if fresh:
            self._pending.update({tx_id: (*entry, written) for tx_id, entry in fresh.items()})
            # Settled on the loop whatever happens to this request (a client that hangs up included).
            written.add_done_callback(lambda future: self._settle(fresh, future))
            rows = [(tx_id, *entry) for tx_id, entry in fresh.items()]
            with self._wake:
                self._queue.append(({day: b"".join(lines) for day, lines in by_day.items()}, rows, written))
                self._wake.notify()
            in_flight.add(written)
        for future in in_flight:
            await asyncio.shield(future)
        return out

    def _settle(self, fresh: dict[str, Entry], written: asyncio.Future) -> None:
        # On success the writer indexed the ids before resolving ``written``.
        for tx_id in fresh:
            del self._pending[tx_id]

    def close(self) -> None:
        """Write what is queued, then stop the writer and close the files and the index."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        if self._writer.ident is not None:  # started
            self._writer.join()
        self._index.close()  # the calling (event loop) thread's connection

    def _write_loop(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closing:
                    self._wake.wait()
                batch, self._queue = self._queue, []
                if not batch and self._closing:
                    break
            error = self._write_batch(batch)
            if error is None:
                self._index_batch([row for _, rows, _ in batch for row in rows])
            failure = None if error is None else BronzeWriteFailed(f"bronze write failed: {error}")
            for _, _, written in batch:
                with contextlib.suppress(RuntimeError):  # a closed event loop: nobody waits for the answer
                    written.get_loop().call_soon_threadsafe(_resolve, written, failure)
        for handle in self._files.values():
            handle.close()
        self._index.close()

    def _index_batch(self, rows: list[tuple[str, str, str, str]]) -> None:
        """Index what is now durable in bronze; if the index cannot be written, remember the ids in
        memory: the transactions are accepted either way."""
        try:
            self._index.add(rows)
            if time.monotonic() - self._pruned_at > _PRUNE_EVERY_SECONDS:
                self._index.prune()
                self._pruned_at = time.monotonic()
        except Exception:
            log.exception("could not write the ingest index; %d ids kept in memory", len(rows))
            self._unindexed.update((row[0], row[1:]) for row in rows)

    def _write_batch(self, batch: list[tuple[dict[date, bytes], list, asyncio.Future]]) -> Exception | None:
        by_day: dict[date, list[bytes]] = {}
        for data, _, _ in batch:
            for day, chunk in data.items():
                by_day.setdefault(day, []).append(chunk)
        sizes: dict[str, int] = {}  # each file's size before this batch
        try:
            for day, chunks in by_day.items():
                handle = self._file(day)
                sizes[handle.name] = handle.tell()
                handle.write(b"".join(chunks))
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
        return None

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


def _sync(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _resolve(written: asyncio.Future, error: Exception | None) -> None:
    if error is None:
        written.set_result(None)
    else:
        written.set_exception(error)
