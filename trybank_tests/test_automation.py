"""Declarative automation: late bronze files, and the online store after any run of its parents."""

import os
import time
from datetime import date

from dagster import DagsterInstance, RunRequest, SkipReason, build_sensor_context, materialize

from trybank_assets.automation import late_bronze_files
from trybank_assets.resources.lake import LakeResource
from trybank_tests.conftest import DAILY_ASSETS

DAY = date(2026, 3, 10)


BRONZE_ONLY = [a for a in DAILY_ASSETS if a.key.path[0] in ("simulated_transactions", "bronze_transactions")]


def test_a_late_bronze_file_marks_its_day_for_rematerialization(lake_root, resources, instance):
    lake = LakeResource(root=str(lake_root))
    assert materialize(BRONZE_ONLY, resources=resources, partition_key=str(DAY), instance=instance).success

    def evaluate(cursor):
        context = build_sensor_context(instance=instance, cursor=cursor, resources={"lake": lake})
        return late_bronze_files(context), context.cursor

    nothing_new, cursor = evaluate(None)
    assert isinstance(nothing_new, SkipReason), nothing_new  # every file is older than its materialization

    late = lake.bronze_source_dir(DAY, "api") / "part-late.jsonl"
    late.parent.mkdir(parents=True, exist_ok=True)
    late.write_text("{}\n")
    later = time.time() + 5
    os.utime(late, (later, later))
    requests, cursor = evaluate(cursor)
    assert [(r.partition_key, type(r)) for r in requests] == [(str(DAY), RunRequest)]

    again, _ = evaluate(cursor)
    assert isinstance(again, SkipReason)  # seen once, requested once


def test_new_files_of_a_day_never_materialized_wait_for_the_chain(lake_root):
    lake = LakeResource(root=str(lake_root))
    folder = lake.bronze_source_dir(DAY, "api")
    folder.mkdir(parents=True)
    (folder / "part-0.jsonl").write_text("{}\n")
    with DagsterInstance.ephemeral() as fresh:
        context = build_sensor_context(instance=fresh, resources={"lake": lake})
        assert isinstance(late_bronze_files(context), SkipReason)
