"""Hostile but authenticated input must not exhaust the process: file descriptors, memory,
connections held by slow clients."""

import json
import os
import resource
import socket
import subprocess
import sys
import textwrap
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

from trybank_assets.features import MICROS_PER_DAY
from trybank_assets.online_store import OnlineSnapshot
from trybank_serving.online_features import Event, IntradayStream, OnlineFeatures
from trybank_tests.serving_tests.conftest import API_KEY, HEADERS, LiveServer, serving_settings, transaction

DAYS = 3000
FD_LIMIT = 128


def _run_with_fd_limit(script: str, limit: int = FD_LIMIT) -> subprocess.CompletedProcess:
    def lower_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        preexec_fn=lower_limit,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_prediction_log_over_thousands_of_days_keeps_few_files_open(tmp_path):
    """3,000 rows on 3,000 distinct days in one flush, under a 128-descriptor limit: every row is
    published, and no more than max_open_files segments were open at once."""
    result = _run_with_fd_limit(
        f"""
        import os
        from datetime import UTC, datetime, timedelta
        from pathlib import Path
        from trybank_serving.prediction_log import PredictionLog

        log = PredictionLog(Path({str(tmp_path)!r}), flush_rows=10**9, flush_seconds=3600, segment_seconds=3600,
                            max_open_files=16)
        log.start()
        base = datetime(2026, 3, 16, tzinfo=UTC)
        for day in range({DAYS}):
            log.append({{"event_time": base - timedelta(days=day), "n": day}})
        written = log.flush()
        open_files = len(os.listdir("/proc/self/fd"))
        log.close()
        print(written, open_files)
        """
    )
    assert result.returncode == 0, result.stderr
    written, open_files = map(int, result.stdout.split())
    assert written == DAYS
    assert open_files < 40
    rows = [json.loads(line) for f in tmp_path.rglob("*.jsonl") for line in f.read_text().splitlines()]
    assert sorted(r["n"] for r in rows) == list(range(DAYS))
    assert len(list(tmp_path.glob("date=*"))) == DAYS
    assert not list(tmp_path.rglob(".part-*"))


def test_3000_predict_days_under_a_low_fd_limit_leave_the_api_up(serving_lake, tmp_path):
    """The probe of the issue: `trybank serve` under a 128-descriptor limit, 3,000 /predict calls
    over 3,000 distinct event days (a lateness wide enough to accept them all, whatever the
    window's default), then /health still answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "TRYBANK_LAKE_ROOT": str(serving_lake),
        "TRYBANK_API_KEY": API_KEY,
        "TRYBANK_API_MAX_LATENESS_DAYS": str(DAYS + 10),
        "TRYBANK_PARTITIONS_START": "2010-01-01",
        "TRYBANK_PREDICTION_FLUSH_ROWS": "500",
    }
    command = [str(Path(sys.executable).with_name("trybank")), "serve", "--port", str(port)]
    server = subprocess.Popen(
        command,
        env=env,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "the API did not start"
            time.sleep(0.1)
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        statuses = {}
        most_open = 0
        with httpx.Client(base_url=url, headers=HEADERS, timeout=10) as client:
            for day in range(DAYS):
                event_time = (today - timedelta(days=day + 1)).isoformat().replace("+00:00", "Z")
                status = client.post("/predict", json=transaction(event_time=event_time)).status_code
                statuses[status] = statuses.get(status, 0) + 1
                if day % 250 == 0:
                    most_open = max(most_open, len(os.listdir(f"/proc/{server.pid}/fd")))
                    assert client.get("/health").status_code == 200
            time.sleep(2.5)  # a flush of the last rows
            most_open = max(most_open, len(os.listdir(f"/proc/{server.pid}/fd")))
            assert client.get("/health").json() == {"status": "ok"}
            assert client.post("/transactions", json=transaction()).status_code in (200, 201, 422)
        assert set(statuses) <= {200, 422}, statuses
        assert most_open < FD_LIMIT // 2, most_open
        print(f"3,000 days: {statuses}, at most {most_open} descriptors open")
    finally:
        server.terminate()
        server.wait(30)


def test_feature_caches_are_bounded():
    as_of = date(2026, 3, 15).toordinal()
    customers = {f"C{i}": [(as_of - d, 1, 100, 10_000, 0, 1) for d in range(30)] for i in range(200)}
    online = OnlineFeatures(OnlineSnapshot(date(2026, 3, 15), customers, {"T1": [(as_of, 1, 0, 100)]}), cache_size=500)
    stream = IntradayStream()
    for i in range(5_000):  # 5,000 distinct (customer, day) and (terminal, day) keys
        day = as_of + 1 - i // 200
        online.features(Event(f"C{i % 200}", f"T{i}", (day - 719_163) * MICROS_PER_DAY, 4250, 0, day), stream)
    assert online._customer_prior.cache_info().currsize == 500
    assert online._terminal_prior.cache_info().currsize == 500


RELOAD_SCRIPT = """
import json, os, sys
from pathlib import Path
from trybank_assets.features import FEATURE_NAMES
from trybank_assets.settings import TrybankSettings
from trybank_serving.state import ServingState

lake = Path(sys.argv[1])
models = lake / "models" / "fraud_model"
depth, n_trees = 6, 60

def tree(seed):
    nodes = 2 ** (depth + 1) - 1
    inner = 2 ** depth - 1
    return {
        "feature": [(seed + i) % len(FEATURE_NAMES) if i < inner else -1 for i in range(nodes)],
        "threshold": [((seed * 7 + i) % 97) / 10 for i in range(nodes)],
        "left": [2 * i + 1 if i < inner else -1 for i in range(nodes)],
        "right": [2 * i + 2 if i < inner else -1 for i in range(nodes)],
        "value": [((seed + i) % 13 - 6) / 100 for i in range(nodes)],
    }

for version in ("a", "b"):
    (models / version).mkdir(parents=True)
    scorer = {"kind": "gradient_boosted_trees", "features": list(FEATURE_NAMES),
              "trees": [tree(t) for t in range(n_trees)], "weights": [0.1] * n_trees}
    (models / version / "scorer.json").write_text(json.dumps(scorer))
    (models / version / "metrics.json").write_text(json.dumps({"threshold": 0.5}))

def rss_mb():
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

state = ServingState(TrybankSettings(lake_root=lake))

def reload(version):
    link = models / ".current.tmp"
    link.unlink(missing_ok=True)
    os.symlink(version, link)
    os.replace(link, models / "current")
    state.refresh()
    assert state.models.current.version == version

for i in range(10):  # warm up: allocator arenas, imports
    reload("ab"[i % 2])
before = rss_mb()
for i in range(50):
    reload("ab"[i % 2])
print(before, rss_mb())
"""


def test_50_model_reloads_grow_memory_by_at_most_20_mb(tmp_path):
    """A 60-tree model (its explainer is compiled code, cyclic garbage once replaced) swapped 50
    times, as the watcher does. Each gc.freeze() used to pin the replaced model for good."""
    result = subprocess.run(
        [sys.executable, "-c", RELOAD_SCRIPT, str(tmp_path / "lake")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    before, after = map(float, result.stdout.split())
    print(f"RSS over 50 reloads: {before:.1f} MB -> {after:.1f} MB")
    assert after - before <= 20


def test_slow_clients_are_disconnected(tmp_path):
    """A connection that sends nothing, trickles its headers or its body is closed at the deadline."""
    settings = serving_settings(tmp_path, api_header_timeout_seconds=0.5, api_body_timeout_seconds=0.5)
    partial_requests = [
        b"",
        b"POST /transactions HTTP/1.1\r\nHost: x\r\n",
        b"POST /transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\nX-API-Key: " + API_KEY.encode() + b"\r\n\r\n{",
    ]
    with LiveServer(settings) as server:
        for partial in partial_requests:
            with socket.create_connection(("127.0.0.1", server.port)) as connection:
                connection.settimeout(5)
                connection.sendall(partial)
                started = time.monotonic()
                try:
                    answer = connection.recv(65536)
                except ConnectionResetError:
                    answer = b""
                assert time.monotonic() - started < 3, partial
                assert answer == b"" or b" 400 " in answer.split(b"\r\n")[0], answer
        assert httpx.get(f"{server.url}/health").status_code == 200
