"""A bank's own lake: imported rows only, the daily job run as a user runs it, no simulator."""

import hashlib
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from trybank_assets.assets.silver import SILVER_SCHEMA
from trybank_assets.cli import app
from trybank_assets.lib.spark_tables import read_days
from trybank_assets.resources.lake import LakeResource
from trybank_assets.settings import get_settings

DAYS = ("2026-03-10", "2026-03-11")
DAILY = ",".join(
    [
        "bronze_transactions",
        "silver_transactions",
        "customer_daily_aggregates",
        "terminal_daily_aggregates",
        "gold_transaction_features",
    ]
)


def _bronze_fingerprint(lake_root: Path) -> dict[str, str]:
    bronze = lake_root / "bronze" / "transactions"
    return {str(f.relative_to(bronze)): hashlib.sha256(f.read_bytes()).hexdigest() for f in bronze.rglob("*.jsonl")}


def test_the_daily_assets_over_an_imported_lake_hold_exactly_the_imported_rows(tmp_path, spark):
    lake_root = tmp_path / "lake"
    env = {
        **os.environ,
        "TRYBANK_LAKE_ROOT": str(lake_root),
        "TRYBANK_PARTITIONS_START": "2026-03-01",
        "TRYBANK_SIMULATOR_ENABLED": "false",
        "TRYBANK_SPARK_MASTER": "local[2]",
        "TRYBANK_SPARK_SHUFFLE_PARTITIONS": "2",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    (tmp_path / "dagster_home").mkdir()
    rows = [
        {
            "id": f"core-{i}",
            "ts": f"{DAYS[i % 2]} {10 + i % 12:02d}:00:00",
            "cust": i % 7,
            "term": i % 5,
            "amt": i * 1.1,
        }
        for i in range(40)
    ]
    source = tmp_path / "export.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    get_settings.cache_clear()
    try:
        maps = ["id", "ts", "cust", "term", "amt"]
        fields = ["transaction_id", "event_time", "customer_id", "terminal_id", "amount"]
        args = [a for f, c in zip(fields, maps, strict=True) for a in ("--map", f"{f}={c}")]
        imported = CliRunner().invoke(app, ["ingest", str(source), "--name", "core", *args], env=env)
    finally:
        get_settings.cache_clear()
    assert imported.exit_code == 0, imported.output
    assert "accepted 40, rejected 0" in imported.output
    before = _bronze_fingerprint(lake_root)

    listed = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "list", "-m", "trybank_assets.definitions"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert "simulated_transactions" not in listed.stdout and "bronze_transactions" in listed.stdout
    run = subprocess.run(
        [
            *(sys.executable, "-m", "dagster", "asset", "materialize", "-m", "trybank_assets.definitions"),
            *("--select", DAILY, "--partition-range", f"{DAYS[0]}...{DAYS[1]}"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    assert _bronze_fingerprint(lake_root) == before  # no asset wrote or rewrote a bronze row
    assert not list(lake_root.glob("bronze/transactions/*/source=simulator"))
    lake = LakeResource(root=str(lake_root))
    silver = read_days(spark, lake.silver_transactions, [date.fromisoformat(d) for d in DAYS], SILVER_SCHEMA)
    assert sorted(r["source_transaction_id"] for r in silver.collect()) == sorted(r["id"] for r in rows)
    assert {r["source"] for r in silver.select("source").distinct().collect()} == {"import-core"}
