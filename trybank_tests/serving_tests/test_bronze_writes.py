"""Bronze appends at the edges: shutdown with writes still queued, a batch over two days whose second
day cannot be written, an index that is slow to commit."""

import asyncio
import json
import sqlite3
import uuid

from trybank_assets.lake_layout import LakeLayout
from trybank_serving.bronze_appender import BronzeAppender
from trybank_tests.serving_tests.conftest import transaction


def _stored(lake_root) -> list[dict]:
    return [
        json.loads(line)
        for f in sorted(lake_root.glob("bronze/transactions/date=*/source=api/*.jsonl"))
        for line in f.read_text().splitlines()
    ]


def test_closing_writes_every_transaction_still_queued(tmp_path):
    """The app's shutdown closes the appender while requests wait for their write: each of them is
    written and answered, none is dropped with the queue."""
    appender = BronzeAppender(LakeLayout(tmp_path / "lake"))
    records = [
        {"transaction_id": str(uuid.uuid4()), "event_time": f"2026-03-{d % 9 + 10}T10:00:00Z"} for d in range(2000)
    ]

    async def shut_down_under_load() -> tuple[int, list]:
        appender.start()
        await appender.append([records[0]])  # the index is open
        waiting = [asyncio.create_task(appender.append([r])) for r in records[1:]]
        await asyncio.sleep(0)  # every task queues its lines and waits for the writer
        queued = len(appender._queue)
        appender.close()  # on the event loop, as the app's lifespan does
        return queued, await asyncio.wait_for(asyncio.gather(*waiting), timeout=30)

    queued, answers = asyncio.run(shut_down_under_load())
    assert queued > 0  # the case under test: requests still queued when close() starts
    assert [replayed for [(_, replayed)] in answers] == [False] * (len(records) - 1)
    assert sorted(r["transaction_id"] for r in _stored(tmp_path / "lake")) == sorted(
        r["transaction_id"] for r in records
    )


def test_a_batch_whose_second_day_fails_leaves_nothing_in_bronze(empty_client, tmp_path):
    """A 503 accepts nothing: the first day's lines, already written when the second day failed, must
    not stay in bronze, or a corrected resend of the same transaction would meet its old content there."""
    lake = tmp_path / "lake"
    blocker = lake / "bronze" / "transactions" / "date=2026-03-17" / "source=api"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")
    first_day, second_day = transaction(), transaction(event_time="2026-03-17T09:00:00Z")
    failed = empty_client.post("/transactions", json={"transactions": [first_day, second_day]})
    assert failed.status_code == 503, failed.text
    assert _stored(lake) == []

    corrected = {**first_day, "amount": 43.5}
    assert empty_client.post("/transactions", json=corrected).status_code == 201  # not a conflict: never accepted
    blocker.unlink()
    retry = empty_client.post("/transactions", json={"transactions": [corrected, second_day]})
    assert retry.status_code == 201
    assert [r["transaction_id"] for r in retry.json()["results"]] == [
        first_day["transaction_id"],
        second_day["transaction_id"],
    ]
    assert sorted((r["transaction_id"], r["amount"]) for r in _stored(lake)) == sorted(
        [(first_day["transaction_id"], 43.5), (second_day["transaction_id"], 42.5)]
    )


def test_an_answer_waits_for_its_fsync_not_for_the_index(tmp_path):
    """The index is a look-up table rebuilt from bronze: its commit comes after the answer. Until it
    is done, a retry is answered from memory with the first answer, and nothing is written twice."""
    lake = LakeLayout(tmp_path / "lake")
    appender = BronzeAppender(lake)
    record = {"transaction_id": str(uuid.uuid4()), "event_time": "2026-03-16T10:00:00Z"}

    def score_again() -> dict:
        raise AssertionError("a retry must not be scored again")

    async def answer_and_retry_while_the_index_is_locked() -> tuple:
        appender.start()
        earlier = str(uuid.uuid4())
        await appender.append([{"transaction_id": earlier, "event_time": "2026-03-16T09:00:00Z"}])
        blocker = sqlite3.connect(lake.api_ingest_index)
        while blocker.execute("SELECT 1 FROM accepted WHERE transaction_id = ?", (earlier,)).fetchone() is None:
            await asyncio.sleep(0.01)  # its index commit is done: the writer is idle
        blocker.execute("BEGIN IMMEDIATE")  # the writer's next index commit waits for this lock
        try:
            first = await asyncio.wait_for(appender.record_scored(record, lambda: {"p": 0.25}), timeout=10)
            retry = await appender.record_scored(record, score_again)
        finally:
            blocker.rollback()
            blocker.close()
        await asyncio.sleep(0.5)  # the index commit and then the look-up from the index
        indexed = await appender.record_scored(record, score_again)
        appender.close()
        return first, retry, indexed

    first, retry, indexed = asyncio.run(answer_and_retry_while_the_index_is_locked())
    assert first.scored and first.new and first.answer == b'{"p":0.25}'
    assert (retry.answer, retry.scored, retry.new) == (first.answer, False, False)
    assert (indexed.answer, indexed.scored, indexed.new) == (first.answer, False, False)
    assert [r["transaction_id"] for r in _stored(tmp_path / "lake")].count(record["transaction_id"]) == 1
