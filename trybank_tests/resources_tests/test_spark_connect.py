"""A cluster is a config change: the same assets run over Spark Connect with TRYBANK_SPARK_REMOTE.

pyspark's pip package ships the jars of a Spark Connect server; the test starts one with
`trybank spark-server` on a port the OS picks and materializes the daily assets through it from
another process, as a client would. Every wait has a deadline, so a server that never comes up
fails the test instead of hanging.
"""

import json
import os
import queue
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from importlib.metadata import requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement

SERVER_START_SECONDS = 180

CLIENT = """
import json, sys
from dagster import DagsterInstance, materialize
from trybank_assets.definitions import defs
from trybank_assets.jobs import LAKEHOUSE_GROUPS
from trybank_assets.lib.spark_tables import days_with_rows
from trybank_assets.resources import build_resources
from trybank_assets.settings import TrybankSettings
settings = TrybankSettings(lake_root=sys.argv[1], simulator_customers=100, spark_remote=sys.argv[2])
resources = build_resources(settings)
assets = [a for a in defs.assets if a.group_names_by_key[a.key] in LAKEHOUSE_GROUPS]
tags = {"dagster/asset_partition_range_start": "2026-03-01", "dagster/asset_partition_range_end": "2026-03-02"}
result = materialize(assets, resources=resources, tags=tags, instance=DagsterInstance.ephemeral())
session = resources["spark"].spark_session
print(json.dumps({
    "success": result.success,
    "session": type(session).__module__,
    "checks": {c.check_name: c.passed for c in result.get_asset_check_evaluations()},
    "gold_days": [str(d) for d in days_with_rows(session, resources["lake"].transaction_features)],
    "delta_versions": [
        e.materialization.metadata["delta_version"].value
        for e in result.get_asset_materialization_events()
        if "delta_version" in e.materialization.metadata
    ],
}))
"""


def _first_line_starting(stream, prefix: str, seconds: float) -> str | None:
    """The first line of ``stream`` that starts with ``prefix``; None at its end or after ``seconds``."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read_all() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read_all, daemon=True).start()
    deadline = time.monotonic() + seconds
    try:
        while (line := lines.get(timeout=max(deadline - time.monotonic(), 0))) is not None:
            if line.startswith(prefix):
                return line
    except queue.Empty:
        pass
    return None


def test_daily_assets_run_over_spark_connect(tmp_path):
    pytest.importorskip("grpc", reason="pyspark[connect] (a dev dependency) is not installed")
    token = uuid.uuid4().hex
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "TRYBANK_SPARK_CONNECT_TOKEN": token}
    server_log = tmp_path / "server.log"
    with open(server_log, "w") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("trybank")), "spark-server", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
    try:
        line = _first_line_starting(server.stdout, "port ", SERVER_START_SECONDS)
        assert line is not None, f"the Spark Connect server did not start: {server_log.read_text()[-3000:]}"
        # "localhost": pyspark speaks plain text to it; another host with a token would need TLS.
        url = f"sc://localhost:{int(line.split()[1])}/;token={token}"
        client = subprocess.run(
            [sys.executable, "-c", CLIENT, str(tmp_path / "lake"), url],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert client.returncode == 0, client.stderr[-3000:]
        summary = json.loads(client.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert summary["success"]
    assert summary["session"].startswith("pyspark.sql.connect")
    failed = {name for name, passed in summary["checks"].items() if not passed} - {"history_complete"}
    assert not failed
    assert summary["gold_days"] == ["2026-03-01", "2026-03-02"]  # read from the Delta log over Spark Connect
    assert summary["delta_versions"] and set(summary["delta_versions"]) == {0}  # each table's first commit


def test_a_plain_install_can_reach_spark_connect():
    """Command 1 installs the project without extras and runs everything over Spark Connect: pyspark's
    client needs its ``connect`` extra (grpcio-status, pandas, ...), which must come with the core
    dependencies, not only with the dev tools the tests install."""
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    core = [Requirement(r) for r in tomllib.loads(pyproject.read_text())["project"]["dependencies"]]
    pyspark = next(r for r in core if r.name == "pyspark")
    connect_needs = {
        Requirement(r).name
        for r in requires("pyspark")
        if Requirement(r).marker is not None and Requirement(r).marker.evaluate({"extra": "connect"})
    }
    assert connect_needs, "pyspark's metadata lists no connect extra"
    missing = set() if "connect" in pyspark.extras else connect_needs - {r.name for r in core}
    assert not missing, f"pyproject.toml's core dependencies lack Spark Connect's {sorted(missing)}"
