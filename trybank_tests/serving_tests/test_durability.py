"""What the API acknowledges survives a power cut: new files' names are fsynced into their folders,
and the ingest index, whose last commits a power cut may take, gets them back from bronze."""

import re
import shutil
import subprocess
import sys
from collections import defaultdict

import pytest
from fastapi.testclient import TestClient

from trybank_serving.app import create_app
from trybank_tests.serving_tests.conftest import HEADERS, serving_settings, transaction

WRITE = """
import asyncio, sys
from datetime import UTC, datetime
from pathlib import Path
from trybank_assets.lake_layout import LakeLayout
from trybank_serving.bronze_appender import BronzeAppender
from trybank_serving.prediction_log import PredictionLog

lake = LakeLayout(sys.argv[1])
appender = BronzeAppender(lake)
appender.start()
record = {"transaction_id": "5b6f1c1e-8f1e-4a43-9f0c-6f9d2c1b7a10", "event_time": "2026-03-16T10:00:00.000000Z"}
asyncio.run(appender.append([record]))
appender.close()
log = PredictionLog(lake.predictions, 1000, 3600, 3600)
log.start()
log.append({"event_time": datetime(2026, 3, 16, 10, tzinfo=UTC)})
log.close()
"""  # a new bronze day file, then a published prediction segment


def _fsynced_folders(trace: str) -> set[str]:
    """Folders opened with O_DIRECTORY whose descriptor was then fsynced, per process."""
    opened: dict[tuple[str, str], str] = defaultdict(str)
    synced = set()
    for line in trace.splitlines():
        if m := re.match(r'(\d+)\s+openat\(AT_FDCWD, "([^"]+)", [^)]*O_DIRECTORY[^)]*\)\s+=\s+(\d+)', line):
            opened[m[1], m[3]] = m[2]
        elif (m := re.match(r"(\d+)\s+fsync\((\d+)\)\s+=\s+0", line)) and opened.get((m[1], m[2])):
            synced.add(opened[m[1], m[2]])
    return synced


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace shows the fsync calls (apt-get install strace)")
def test_new_bronze_files_and_published_segments_are_fsynced_into_their_folders(tmp_path):
    lake, trace = tmp_path / "lake", tmp_path / "trace"
    subprocess.run(
        ["strace", "-f", "-e", "trace=openat,fsync", "-o", str(trace), sys.executable, "-c", WRITE, str(lake)],
        check=True,
        timeout=120,
    )
    synced = _fsynced_folders(trace.read_text())
    day = lake / "bronze" / "transactions" / "date=2026-03-16"
    assert list((day / "source=api").glob("*.jsonl")) and list((lake / "predictions").rglob("*.jsonl"))
    assert {str(day / "source=api"), str(day), str(day.parent)} <= synced  # the file, its folders
    assert str(lake / "predictions" / "date=2026-03-16") in synced  # the published segment's rename


def test_an_index_that_lost_its_last_commits_gets_them_back_from_bronze(serving_lake):
    """The index commits with synchronous=NORMAL: a power cut may take its last commits, never
    bronze's fsynced lines. Here the index is put back as it was before two answers; the next
    start reads them from bronze: the same answer to the retry, a replay, a 409, nothing written."""
    settings = serving_settings(serving_lake)
    with TestClient(create_app(settings), headers=HEADERS) as client:
        assert client.post("/predict", json=transaction()).status_code == 200
    index = serving_lake / "bronze" / "api_ingest_index.sqlite"
    before = index.read_bytes()  # closed: the WAL is checkpointed into it and removed
    scored, ingested = transaction(), transaction()
    with TestClient(create_app(settings), headers=HEADERS) as client:
        answer = client.post("/predict", json=scored)
        assert client.post("/transactions", json=ingested).status_code == 201
    for wal in index.parent.glob("api_ingest_index.sqlite-*"):
        wal.unlink()
    index.write_bytes(before)
    with TestClient(create_app(settings), headers=HEADERS) as client:
        assert client.post("/predict", json=scored).content == answer.content
        assert client.post("/transactions", json=ingested).status_code == 200
        assert client.post("/predict", json={**scored, "amount": 1.0}).status_code == 409
    stored = [
        line
        for f in serving_lake.glob("bronze/transactions/date=*/source=api/*.jsonl")
        for line in f.read_text().splitlines()
    ]
    assert len(stored) == 3
