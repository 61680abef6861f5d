import sqlite3
import threading
from datetime import UTC, datetime, timedelta

from trybank_serving.ingest_index import AcceptedIndex


def _row(tx_id: str, received: datetime, answer: bytes | None = None) -> tuple:
    return tx_id, f"fp-{tx_id}", "2026-03-16", received.isoformat(), answer


def test_rows_and_file_offsets_are_answered_from_disk(tmp_path):
    now = datetime.now(UTC)
    index = AcceptedIndex(tmp_path / "bronze" / "index.sqlite", retention_days=7)
    index.open()
    answer = '{"fraud_probability":0.5,"text":"5 times €1.000 in \\"NL\\"\\n"}'.encode()  # stored byte for byte
    index.add([_row("a", now), _row("b", now, answer)], {"date=2026-03-16/part-1.jsonl": 300})
    index.add([], {"date=2026-03-16/part-1.jsonl": 200})  # a catch-up that read less never moves it back
    index.close()

    reopened = AcceptedIndex(tmp_path / "bronze" / "index.sqlite", retention_days=7)
    reopened.open()
    assert reopened.get("a") == ("fp-a", "2026-03-16", now.isoformat(), None)
    assert reopened.get("b")[3] == answer
    assert reopened.get("never") is None
    assert reopened.indexed_bytes() == {"date=2026-03-16/part-1.jsonl": 300}


def test_an_answer_fills_in_a_row_accepted_unscored_and_the_first_row_wins(tmp_path):
    now = datetime.now(UTC)
    index = AcceptedIndex(tmp_path / "index.sqlite", retention_days=7)
    index.open()
    index.add([_row("a", now)], {})
    index.add([_row("a", now + timedelta(seconds=1), b"answer")], {})
    index.add([_row("a", now + timedelta(seconds=2), b"another answer")], {})
    assert index.get("a") == ("fp-a", "2026-03-16", now.isoformat(), b"answer")


def test_an_index_of_another_version_is_replaced(tmp_path):
    """The index before answers were stored: dropped, to be rebuilt from bronze."""
    path = tmp_path / "index.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE accepted (transaction_id TEXT PRIMARY KEY, fingerprint, bronze_day, received_at)")
        db.execute("INSERT INTO accepted VALUES ('a', 'fp-a', '2026-03-16', '2026-03-16T10:00:00+00:00')")
    db.close()
    index = AcceptedIndex(path, retention_days=7)
    index.open()
    assert index.get("a") is None and index.indexed_bytes() == {}


def test_ids_past_the_retention_are_pruned(tmp_path):
    now = datetime.now(UTC)
    index = AcceptedIndex(tmp_path / "index.sqlite", retention_days=7)
    index.open()
    index.add([_row("old", now - timedelta(days=8)), _row("recent", now - timedelta(days=6))], {"f": 10})
    index.prune()
    assert index.get("old") is None and index.get("recent") is not None
    assert index.indexed_bytes() == {"f": 10}


def test_two_processes_opening_a_new_index_at_once_both_start(tmp_path):
    both_ready = threading.Barrier(2, timeout=10)
    errors = []

    def start() -> None:
        index = AcceptedIndex(tmp_path / "index.sqlite", retention_days=7)
        try:
            both_ready.wait()
            index.open()
            index.add([_row("a", datetime.now(UTC))], {})
        except Exception as exc:
            errors.append(exc)
        finally:
            index.close()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
