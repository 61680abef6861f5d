"""Every prediction, appended to ``predictions/date=D/`` in batches.

Rows are buffered as they come (datetimes, UUIDs and the validated request model included) and
encoded and written by a background thread when the buffer is full, every few seconds, and on
shutdown; each flush writes a new file under a temporary name and renames it, so readers never see
half a batch.
"""

import os
import threading
import uuid
from collections import defaultdict
from datetime import date
from pathlib import Path

import orjson

# One row per line, UTC times ending in Z.
_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z


class PredictionLog:
    def __init__(self, root: Path, flush_rows: int, flush_seconds: float) -> None:
        self.root = root
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self._lines: list[tuple[date, bytes]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def append(self, row: dict) -> None:
        """Encode a row (one C call: cheaper here than handing Python objects to another thread) and
        buffer it under its ``event_time``'s UTC day; files are written on the flush thread."""
        line = orjson.dumps(row, option=_OPTIONS)
        with self._lock:
            self._lines.append((row["event_time"].date(), line))
            if len(self._lines) >= self.flush_rows:
                self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        with self._flush_lock:
            with self._lock:
                lines, self._lines = self._lines, []
            by_day: dict[date, list[bytes]] = defaultdict(list)
            for day, line in lines:
                by_day[day].append(line)
            for day, day_lines in by_day.items():
                folder = self.root / f"date={day.isoformat()}"
                folder.mkdir(parents=True, exist_ok=True)
                name = f"part-{os.getpid()}-{uuid.uuid4().hex[:12]}.jsonl"
                tmp = folder / f".{name}.tmp"
                with open(tmp, "wb") as fh:
                    fh.write(b"".join(day_lines))
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, folder / name)
            return len(lines)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        self.flush()
