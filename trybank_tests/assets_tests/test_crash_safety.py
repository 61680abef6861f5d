"""Silver under kill -9 and re-runs: every day is the old or the new version, whole, and silver agrees
with its quarantine (issue 10).

A tiny lake of three days has two bronze states: A, and B = A plus a second source's file per day (new,
invalid and duplicate rows). The test knows each state's silver, quarantine and duplicates per day. The
kill test flips bronze to the other state and kills a Dagster run of silver (its own process and JVM) at a
random instant of each phase: starting, writing its files, just after its Delta commit.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from trybank_assets.assets.silver import QUARANTINE_SCHEMA, SILVER_SCHEMA, silver_transactions
from trybank_assets.lib.spark_tables import (
    VACUUM_RETENTION_CONF,
    maintain,
    read_days,
    read_quarantine_days,
)
from trybank_assets.resources import build_resources
from trybank_assets.resources.lake import LakeResource
from trybank_tests.conftest import data_files_on_disk, data_files_referenced, range_tags, small_bank_settings

DAYS = [date(2026, 3, 10) + timedelta(days=i) for i in range(3)]
RANGE_TAGS = range_tags(DAYS[0], DAYS[-1])
KILL_PHASES = ("starting", "writing", "committed")

# One Dagster run of silver over the range in its own process (and JVM), as a run worker would be.
RUN_SILVER = f"""
import sys
from dagster import DagsterInstance, materialize
from trybank_assets.assets.silver import silver_transactions
from trybank_assets.resources import build_resources
from trybank_assets.settings import TrybankSettings
settings = TrybankSettings(lake_root=sys.argv[1], spark_master="local[2]", spark_shuffle_partitions=2)
result = materialize(
    [silver_transactions], resources=build_resources(settings), tags={RANGE_TAGS!r},
    instance=DagsterInstance.ephemeral(),
)
sys.exit(0 if result.success else 1)
"""


def _record(day: date, n: int, **overrides) -> dict:
    record = {
        "transaction_id": str(uuid.UUID(int=random.Random(f"{day}{n}").getrandbits(128), version=4)),
        "event_time": f"{day}T{n % 24:02d}:{n % 60:02d}:00.000Z",
        "customer_id": f"C{n % 7}",
        "terminal_id": f"T{n % 5}",
        "amount": 10 + n / 100,
        "currency": "EUR",
        "merchant_country": "NL",
        "customer_country": "NL",
        "channel": "pos",
        "merchant_category": "grocery",
        "is_fraud": False,
        "fraud_scenario": None,
        "source_transaction_id": None,
    }
    return record | overrides


def _state_a(day: date, i: int) -> list[dict]:
    """20+i valid rows, 3 invalid ones, 2 exact retries: silver 20+i, quarantine 3, duplicates 2."""
    good = [_record(day, n) for n in range(20 + i)]
    bad = [_record(day, 100, amount="twelve"), _record(day, 101, currency="EURO"), _record(day, 102, channel="x" * 41)]
    return [*good, *bad, good[0], good[1]]


def _state_b_extra(day: date, i: int) -> list[dict]:
    """10 new valid rows, 2 invalid, 1 exact copy of an A row from another source: silver +10,
    quarantine +2, duplicates +1."""
    return [
        *[_record(day, 200 + n) for n in range(10)],
        _record(day, 300, amount=-3),
        _record(day, 301, merchant_country="Netherlands"),
        _record(day, 5),
    ]


EXPECTED = {
    "A": {d: {"bronze": 25 + i, "silver": 20 + i, "quarantine": 3, "duplicates": 2} for i, d in enumerate(DAYS)},
    "B": {d: {"bronze": 38 + i, "silver": 30 + i, "quarantine": 5, "duplicates": 3} for i, d in enumerate(DAYS)},
}


def _write_bronze(lake: LakeResource, state: str) -> None:
    for i, day in enumerate(DAYS):
        for source, rows in (("api", _state_a(day, i)), ("import-partner", _state_b_extra(day, i))):
            path = lake.bronze_source_dir(day, source) / "part-00000.jsonl"
            if source == "api" or state == "B":
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("".join(json.dumps(r) + "\n" for r in rows))
            else:
                path.unlink(missing_ok=True)


def _snapshot(spark, lake: LakeResource, version: int | None = None) -> dict[date, tuple]:
    """Per day: the silver transaction_ids and the quarantined (reason, source) pairs, sorted."""
    silver = read_days(spark, lake.silver_transactions, DAYS, SILVER_SCHEMA, version).select("date", "transaction_id")
    quarantine = read_quarantine_days(spark, lake.silver_transactions, DAYS, QUARANTINE_SCHEMA, version)
    ids = {d: [] for d in DAYS}
    for r in silver.collect():
        ids[r["date"]].append(r["transaction_id"])
    rejected = {d: [] for d in DAYS}
    for r in quarantine.select("date", "reason", "source").collect():
        rejected[r["date"]].append((r["reason"], r["source"]))
    return {d: (sorted(ids[d]), sorted(rejected[d])) for d in DAYS}


def _commits(table: Path) -> int:
    return sum(1 for p in (table / "_delta_log").glob("*.json"))


def _kill_run_at_random_instant(lake_root: Path, table: Path, rng: random.Random, phase: str) -> dict:
    """Start a silver run and SIGKILL its process group (Python and JVM at once, as kill -9 of a run worker)
    at a random instant of ``phase``: while it starts, while it writes its files, or just after its commit.
    Returns when it was killed and whether it had committed."""
    files_before = set(table.rglob("*.parquet"))
    commits_before = _commits(table)
    reached = {
        "starting": lambda: True,
        "writing": lambda: any(p not in files_before for p in table.rglob("*.parquet")),
        "committed": lambda: _commits(table) > commits_before,
    }[phase]
    delay = {"starting": rng.uniform(2.0, 8.0), "writing": rng.uniform(0.0, 0.5), "committed": rng.uniform(0.0, 1.0)}
    run = subprocess.Popen(
        [sys.executable, "-c", RUN_SILVER, str(lake_root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
    )
    started = time.monotonic()
    try:
        while run.poll() is None and not reached() and time.monotonic() - started < 180:
            time.sleep(0.02)
        time.sleep(delay[phase])
    finally:
        killed = run.poll() is None
        if killed:
            os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=60)
    return {
        "phase": phase,
        "after_s": round(time.monotonic() - started, 1),
        "killed": killed,
        "committed": _commits(table) > commits_before,
    }


@pytest.fixture(scope="module")
def silver_history(spark, tmp_path_factory) -> dict:
    """Silver run in process over bronze A, then B, then B again: table versions 0, 1, 2."""
    lake_root = tmp_path_factory.mktemp("crash") / "data_lake"
    lake = LakeResource(root=str(lake_root))
    resources = build_resources(small_bank_settings(lake_root))
    commits = []
    with DagsterInstance.ephemeral() as instance:
        for state in ("A", "B", "B"):
            _write_bronze(lake, state)
            result = materialize([silver_transactions], resources=resources, tags=RANGE_TAGS, instance=instance)
            assert result.success
            metadata = result.get_asset_materialization_events()[0].materialization.metadata
            commits.append((metadata["delta_version"].value, metadata["delta_operation"].value))
    return {"lake_root": lake_root, "lake": lake, "commits": commits}


def test_each_run_is_one_commit_of_silver_with_its_quarantine_and_a_rerun_changes_nothing(spark, silver_history):
    lake = silver_history["lake"]
    assert silver_history["commits"] == [(0, "WRITE"), (1, "WRITE"), (2, "WRITE")]
    history = spark.sql(f"DESCRIBE HISTORY delta.`{lake.silver_transactions}`").collect()
    assert [h["version"] for h in history] == [2, 1, 0]
    # Every version reconciles with one bronze state: silver and quarantine never disagree.
    for version, state in enumerate(("A", "B", "B")):
        for day, (silver, quarantine) in _snapshot(spark, lake, version).items():
            expected = EXPECTED[state][day]
            assert (len(silver), len(quarantine)) == (expected["silver"], expected["quarantine"]), (version, day)
            assert expected["bronze"] == len(silver) + len(quarantine) + expected["duplicates"]
    assert _snapshot(spark, lake, 2) == _snapshot(spark, lake, 1)


def test_a_killed_silver_run_leaves_every_day_old_or_new_and_whole(spark, silver_history):
    lake, lake_root = silver_history["lake"], silver_history["lake_root"]
    table = lake.silver_transactions
    snapshots = {"A": _snapshot(spark, lake, 0), "B": _snapshot(spark, lake, 1)}
    assert snapshots["A"] != snapshots["B"]

    seed = random.randrange(2**32)
    rng = random.Random(seed)
    current, outcomes = "B", []
    for phase in KILL_PHASES:
        target = "A" if current == "B" else "B"
        _write_bronze(lake, target)
        outcome = _kill_run_at_random_instant(lake_root, table, rng, phase)
        seen = _snapshot(spark, lake)
        states = {day: [s for s in ("A", "B") if snapshots[s][day] == seen[day]] for day in DAYS}
        assert all(states.values()), f"seed {seed}, kill {outcome}: a day is neither old nor new: {states}"
        # One commit for the range: the days flip together, never some old and some new.
        landed = {s for matches in states.values() for s in matches}
        assert len(landed) == 1, f"seed {seed}, kill {outcome}: days from different versions: {states}"
        current = landed.pop()
        assert current == (target if outcome["committed"] else ("B" if target == "A" else "A")), outcome
        outcomes.append({**outcome, "state": current})
    print(f"seed {seed}: {outcomes}")
    assert all(o["killed"] for o in outcomes), outcomes
    assert not outcomes[0]["committed"] and outcomes[-1]["committed"], outcomes

    # The files of killed writes belong to no version; VACUUM (retention 0 here) leaves only referenced ones.
    previous = spark.conf.get(VACUUM_RETENTION_CONF)
    spark.conf.set(VACUUM_RETENTION_CONF, "0")
    try:
        maintain(spark, table)
    finally:
        spark.conf.set(VACUUM_RETENTION_CONF, previous)
    assert data_files_on_disk(table) == data_files_referenced(spark, table)
    assert _snapshot(spark, lake) == snapshots[current]
