import json
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

from trybank_serving.prediction_log import PredictionLog, recover_abandoned

EVENT_TIME = datetime(2026, 3, 16, 10, 0, tzinfo=UTC)


def rows_in(root):
    return [json.loads(line) for f in sorted(root.rglob("*.jsonl")) for line in f.read_text().splitlines()]


def test_segments_are_invisible_until_published(tmp_path):
    log = PredictionLog(tmp_path, flush_rows=10_000, flush_seconds=3600, segment_seconds=3600)
    log.start()
    for i in range(25):
        log.append({"event_time": EVENT_TIME, "i": i})
    assert log.flush() == 25
    assert rows_in(tmp_path) == []  # written to the hidden segment only
    assert len(list(tmp_path.glob("date=2026-03-16/.part-*.jsonl.tmp"))) == 1
    log.append({"event_time": EVENT_TIME, "i": 25})
    log.close()
    assert [r["i"] for r in rows_in(tmp_path)] == list(range(26))
    assert len(list(tmp_path.rglob("*.jsonl"))) == 1 and not list(tmp_path.rglob("*.tmp"))
    assert rows_in(tmp_path)[0]["event_time"] == "2026-03-16T10:00:00Z"


def test_old_segments_are_published_while_running(tmp_path):
    log = PredictionLog(tmp_path, flush_rows=10_000, flush_seconds=3600, segment_seconds=0)
    log.start()
    log.append({"event_time": EVENT_TIME, "i": 0})
    log.flush()
    assert [r["i"] for r in rows_in(tmp_path)] == [0]
    log.close()


WRITER = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from trybank_serving.prediction_log import PredictionLog

    log = PredictionLog(Path(sys.argv[1]), flush_rows=10_000, flush_seconds=3600, segment_seconds=3600)
    log.start()
    for i in range(40):
        log.append({"event_time": datetime(2026, 3, 16, 10, 0, tzinfo=UTC), "i": i})
    log.flush()
    segment = next(iter(log._segments.values()))
    segment.file.write(b'{"event_time": "2026-03-16T10:0')  # a line cut short by the kill
    segment.file.flush()
    print("flushed", flush=True)
    time.sleep(600)
    """
)


def test_a_killed_writers_lines_are_recovered_whole(tmp_path):
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "flushed"
        assert recover_abandoned(tmp_path) == []  # the live writer holds its segment
        assert rows_in(tmp_path) == []
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()

    log = PredictionLog(tmp_path, flush_rows=10_000, flush_seconds=3600, segment_seconds=3600)
    log.start()  # recovers at start
    log.close()
    assert [r["i"] for r in rows_in(tmp_path)] == list(range(40))
    assert not list(tmp_path.rglob("*.tmp"))


def test_rows_that_cannot_be_written_are_kept_for_the_next_flush(tmp_path):
    log = PredictionLog(tmp_path, flush_rows=10_000, flush_seconds=3600, segment_seconds=3600)
    log.start()
    (tmp_path / "date=2026-03-16").write_text("a file where the day's folder should be")
    for i in range(5):
        log.append({"event_time": EVENT_TIME, "i": i})
    assert log.flush() == 0  # mkdir fails: nothing written, nothing dropped
    (tmp_path / "date=2026-03-16").unlink()
    log.append({"event_time": EVENT_TIME, "i": 5})
    assert log.flush() == 6
    log.close()
    assert [r["i"] for r in rows_in(tmp_path)] == list(range(6))
