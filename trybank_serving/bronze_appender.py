"""Durable, idempotent appends of API transactions to bronze (``source=api``).

A record is on disk (written, flushed, fsynced) before the API answers 2xx. Each process
appends to its own file per day, so concurrent workers never interleave bytes. Idempotency:
a ``transaction_id`` seen before is answered with its original result and not written again;
the index is rebuilt at start from the API files written in the last week (an older retry
would be written again and dropped by silver as an exact duplicate).
"""

import hashlib
import json
import os
import socket
import threading
import time
from datetime import UTC, date, datetime

from trybank_assets.lake_layout import LakePaths

SOURCE = "api"


class ConflictingTransaction(ValueError):
    """Same transaction_id as an accepted transaction, different content."""


def _fingerprint(record: dict) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


class BronzeAppender:
    def __init__(self, lake: LakePaths, reindex_days: int = 7) -> None:
        self.lake = lake
        self._lock = threading.Lock()
        self._file_name = f"part-{socket.gethostname()}-{os.getpid()}.jsonl"
        self._accepted: dict[str, tuple[str, dict]] = {}  # id -> (fingerprint, original result)
        self._reindex(reindex_days)

    def _reindex(self, days: int) -> None:
        """Remember what the API accepted in files written during the last ``days`` days."""
        since = time.time() - days * 86_400
        files = self.lake.bronze_transactions.glob(f"date=*/source={SOURCE}/*.jsonl")
        for file in sorted(f for f in files if f.stat().st_mtime >= since):
            for line in file.read_bytes().splitlines():
                try:
                    stored = json.loads(line)
                except ValueError:
                    continue  # a torn last line from a crash; silver quarantines it
                meta = stored.pop("_received", None) or {}
                result = {
                    "transaction_id": stored["transaction_id"],
                    "bronze_day": stored["event_time"][:10],
                    "received_at": meta.get("at", ""),
                }
                self._accepted[stored["transaction_id"]] = (_fingerprint(stored), result)

    def append(self, records: list[dict]) -> list[tuple[dict, bool]]:
        """Write the new records durably; returns (result, replayed) per record, in order."""
        received_at = datetime.now(UTC).isoformat()
        out: list[tuple[dict, bool]] = []
        by_day: dict[str, list[bytes]] = {}
        with self._lock:
            fresh: dict[str, tuple[str, dict]] = {}
            for record in records:
                tx_id, fingerprint = record["transaction_id"], _fingerprint(record)
                seen = self._accepted.get(tx_id) or fresh.get(tx_id)
                if seen is not None:
                    if seen[0] != fingerprint:
                        raise ConflictingTransaction(f"transaction_id {tx_id} was accepted with other content")
                    out.append((seen[1], True))
                    continue
                result = {"transaction_id": tx_id, "bronze_day": record["event_time"][:10], "received_at": received_at}
                fresh[tx_id] = (fingerprint, result)
                line = json.dumps({**record, "_received": {"at": received_at}}, separators=(",", ":"))
                by_day.setdefault(result["bronze_day"], []).append(line.encode() + b"\n")
                out.append((result, False))
            for day, lines in by_day.items():
                self._write(date.fromisoformat(day), b"".join(lines))
            self._accepted.update(fresh)
        return out

    def _write(self, day: date, data: bytes) -> None:
        folder = self.lake.bronze_source_dir(day, SOURCE)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self._file_name
        with open(path, "ab") as fh:
            if fh.tell() > 0:
                with open(path, "rb") as check:
                    check.seek(-1, os.SEEK_END)
                    if check.read(1) != b"\n":
                        fh.write(b"\n")  # end a line torn by an earlier crash before appending
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
