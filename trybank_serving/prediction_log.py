"""Every prediction, appended to ``predictions/date=D/`` as JSON lines, in segments.

A request encodes its row (one C call) and buffers it. A background thread appends the buffer to
the day's open segment, a hidden ``.part-*.jsonl.tmp`` file, every ``flush_seconds`` or
``flush_rows`` rows; a segment is published (fsync, then renamed to ``part-*.jsonl``) once it is
``segment_seconds`` old and on shutdown; its folder is then fsynced, so that the new name survives
a power cut too. Readers (the ``prediction_log`` asset reads ``*.jsonl``) never see half a segment,
and the lake gets a file per minute instead of one per batch.

At most ``max_open_files`` segments are open: a row for another day first publishes the least
recently written one. Rows spread over many days cost small files, never file descriptors (a client
sending thousands of distinct days once exhausted them for the whole process).

Lines already handed to the OS survive a killed process: the writer holds an exclusive ``flock``
on its open segments, and at start any segment nobody holds is cut back to its last whole line
and published.
"""

import contextlib
import fcntl
import logging
import os
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import BinaryIO

import orjson

from trybank_serving.durable_dirs import fsync_dir, make_dirs

log = logging.getLogger("trybank_serving")

# One row per line, UTC times ending in Z.
_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z


@dataclass
class _Segment:
    tmp: Path
    file: BinaryIO
    opened: float


def _publish(file: BinaryIO, tmp: Path) -> Path:
    """Make a segment visible: fsync it and drop the hidden ``.``/``.tmp`` of its name. Called with
    the segment's ``flock`` held, so no other process publishes it at the same time."""
    file.flush()
    os.fsync(file.fileno())
    final = tmp.with_name(tmp.name[1:].removesuffix(".tmp"))
    os.replace(tmp, final)
    fsync_dir(final.parent)
    return final


def recover_abandoned(root: Path) -> list[Path]:
    """Publish the segments of writers that died, cut back to their last whole line."""
    recovered = []
    for tmp in sorted(root.glob("date=*/.part-*.jsonl.tmp")):
        try:
            file = open(tmp, "rb+")  # noqa: SIM115 - closed in the finally below
        except FileNotFoundError:
            continue  # published meanwhile by its writer or another recovery
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if not tmp.exists():
                continue
            file.truncate(file.read().rfind(b"\n") + 1)
            recovered.append(_publish(file, tmp))
        except BlockingIOError:
            continue  # a live writer holds it
        finally:
            file.close()
    return recovered


class PredictionLog:
    def __init__(
        self, root: Path, flush_rows: int, flush_seconds: float, segment_seconds: float, max_open_files: int = 32
    ) -> None:
        self.root = root
        self.max_open_files = max_open_files
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.segment_seconds = segment_seconds
        self._lines: list[tuple[date, bytes]] = []
        self._segments: dict[date, _Segment] = {}  # least recently written first
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    def start(self) -> None:
        if self.root.is_dir():
            for path in recover_abandoned(self.root):
                log.warning("recovered the prediction-log segment of a stopped writer: %s", path)
        self._thread.start()

    def append(self, row: dict) -> None:
        """Encode a row (one C call: cheaper here than handing Python objects to another thread) and
        buffer it under its ``event_time``'s UTC day."""
        line = orjson.dumps(row, option=_OPTIONS)
        with self._lock:
            self._lines.append((row["event_time"].date(), line))
            if len(self._lines) >= self.flush_rows:
                self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the writer must outlive a bad flush; the next one tries again
                log.exception("prediction-log flush failed")

    def flush(self, publish_all: bool = False) -> int:
        """Append the buffered rows to their days' segments; publish the segments that are old
        enough (all of them with ``publish_all``). Returns the number of rows written."""
        with self._flush_lock:
            with self._lock:
                lines, self._lines = self._lines, []
            by_day: dict[date, list[bytes]] = defaultdict(list)
            for day, line in lines:
                by_day[day].append(line)
            unwritten: list[tuple[date, bytes]] = []
            for day, day_lines in by_day.items():
                try:
                    self._write(day, b"".join(day_lines))  # one write: one GIL release, not one per line
                except OSError:
                    log.exception(
                        "could not write %d predictions of %s; retrying at the next flush", len(day_lines), day
                    )
                    unwritten.extend((day, line) for line in day_lines)
            if unwritten:
                with self._lock:
                    self._lines[:0] = unwritten
            now = time.monotonic()
            for day, segment in list(self._segments.items()):
                if publish_all or now - segment.opened >= self.segment_seconds:
                    self._close(day)
            return len(lines) - len(unwritten)

    def _close(self, day: date) -> None:
        segment = self._segments.pop(day)
        try:
            _publish(segment.file, segment.tmp)
        finally:  # unpublished, the next start's recovery publishes it
            segment.file.close()

    def _write(self, day: date, data: bytes) -> None:
        segment = self._segments.pop(day, None)
        if segment is None:
            if len(self._segments) >= self.max_open_files:
                self._close(next(iter(self._segments)))
            segment = self._open(day)
        self._segments[day] = segment  # now the most recently written
        size = segment.file.tell()
        try:
            segment.file.write(data)
            segment.file.flush()
        except OSError:
            # Cut the segment back to whole lines and publish it; the rows go to a new segment later.
            del self._segments[day]
            with contextlib.suppress(OSError):
                segment.file.close()
            with contextlib.suppress(OSError):
                os.truncate(segment.tmp, size)
                recover_abandoned(segment.tmp.parent.parent)
            raise

    def _open(self, day: date) -> _Segment:
        folder = self.root / f"date={day.isoformat()}"
        make_dirs(folder)
        tmp = folder / f".part-{os.getpid()}-{uuid.uuid4().hex[:12]}.jsonl.tmp"
        file = open(tmp, "xb")  # noqa: SIM115 - stays open across flushes until published
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return _Segment(tmp, file, time.monotonic())

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        self.flush(publish_all=True)
