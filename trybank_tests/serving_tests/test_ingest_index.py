import threading
from datetime import UTC, datetime, timedelta

import pytest

from trybank_serving.ingest_index import AcceptedIndex


def _row(tx_id: str, received: datetime) -> tuple[str, str, str, str]:
    return tx_id, f"fp-{tx_id}", "2026-03-16", received.isoformat()


def test_built_once_from_bronze_then_answered_from_disk(tmp_path):
    now = datetime.now(UTC)
    index = AcceptedIndex(tmp_path / "bronze" / "index.sqlite", retention_days=7)
    index.open([_row("a", now), _row("b", now)])
    index.add([_row("c", now)])
    index.close()

    def must_not_be_read():
        raise AssertionError("a built index must not be rebuilt from bronze")
        yield

    reopened = AcceptedIndex(tmp_path / "bronze" / "index.sqlite", retention_days=7)
    reopened.open(must_not_be_read())
    assert reopened.get("a") == ("fp-a", "2026-03-16", now.isoformat())
    assert reopened.get("c")[0] == "fp-c"
    assert reopened.get("never") is None


def test_a_failed_build_is_retried_at_the_next_start(tmp_path):
    def broken_bronze():
        yield _row("a", datetime.now(UTC))
        raise OSError("unreadable file")

    index = AcceptedIndex(tmp_path / "index.sqlite", retention_days=7)
    with pytest.raises(OSError):
        index.open(broken_bronze())
    assert index.get("a") is None  # the half-read rows were rolled back
    index.open([_row("a", datetime.now(UTC))])
    assert index.get("a") is not None


def test_ids_past_the_retention_are_pruned(tmp_path):
    now = datetime.now(UTC)
    index = AcceptedIndex(tmp_path / "index.sqlite", retention_days=7)
    index.open([])
    index.add([_row("old", now - timedelta(days=8)), _row("recent", now - timedelta(days=6))])
    index.prune()
    assert index.get("old") is None and index.get("recent") is not None


def test_two_processes_building_the_index_at_once_both_start(tmp_path):
    """Both find no index and build it (the barrier holds each inside its build until the other has
    looked too); the second to finish used to fail on the 'built' mark."""
    both_looked = threading.Barrier(2, timeout=10)
    errors = []

    def rows():
        both_looked.wait()
        yield _row("a", datetime.now(UTC))

    def start() -> None:
        index = AcceptedIndex(tmp_path / "index.sqlite", retention_days=7)
        try:
            index.open(rows())
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
