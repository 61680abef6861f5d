"""A cluster is a config change: the same assets run over Spark Connect with TRYBANK_SPARK_REMOTE.

pyspark's pip package ships the jars to start a local Spark Connect server; the test starts one
in a subprocess and materializes the daily assets through it from another, as a client would.
"""

import json
import os
import subprocess
import sys
import time

import pytest

SERVER = """
import os, sys, time
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
from pyspark.sql import SparkSession
spark = SparkSession.builder.remote("local[2]").getOrCreate()
spark.range(1).count()
print("TOKEN", os.environ.get("SPARK_CONNECT_AUTHENTICATE_TOKEN", ""), flush=True)
sys.stdin.read()  # serve until the test closes our stdin
"""

CLIENT = """
import json, sys
from dagster import DagsterInstance, materialize
from trybank_assets.definitions import defs
from trybank_assets.jobs import LAKEHOUSE_GROUPS
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
}))
"""


def test_daily_assets_run_over_spark_connect(tmp_path):
    pytest.importorskip("grpc", reason="pyspark[connect] (a dev dependency) is not installed")
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        deadline = time.monotonic() + 120
        token = None
        while time.monotonic() < deadline and token is None:
            line = server.stdout.readline()
            if line.startswith("TOKEN"):
                token = line.split(maxsplit=1)[1].strip() if len(line.split()) > 1 else ""
            elif not line and server.poll() is not None:
                break
        assert token is not None, "the Spark Connect server did not start"
        url = "sc://localhost:15002" + (f"/;token={token}" if token else "")
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
        server.stdin.close()
        server.wait(timeout=60)
    assert summary["success"]
    assert summary["session"].startswith("pyspark.sql.connect")
    failed = {name for name, passed in summary["checks"].items() if not passed} - {"history_complete"}
    assert not failed
    assert sorted(p.name for p in (tmp_path / "lake" / "gold" / "transaction_features").glob("date=*")) == [
        "date=2026-03-01",
        "date=2026-03-02",
    ]
