"""When assets materialize by themselves: declarative automation and freshness, in one place.

Each asset names its condition in its decorator; the conditions only act while the automation
sensors run, which they do when ``TRYBANK_AUTOMATION_ENABLED=true`` (default off, so a demo never
starts work on its own; the same setting starts the maintenance schedule). With it on:

- the daily chain (demo source, bronze, silver, aggregates, gold) materializes yesterday at 00:30
  UTC, each asset once its parents have;
- the online store follows its aggregates eagerly, whatever run materialized them (a job, a
  schedule, a backfill from the UI);
- a day whose bronze gets a new file after it was materialized (late data) is re-materialized
  through the chain (``late_bronze_files``);
- prediction monitoring runs at 00:15 UTC, the model retrains on Mondays at 02:00 UTC and the
  promotion gate follows each new model;
- the lake's Delta tables are compacted and vacuumed daily at 04:00 UTC (``maintenance.py``'s schedule).
"""

import os
from datetime import timedelta

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    FreshnessPolicy,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from trybank_assets.lake_layout import LakePaths
from trybank_assets.resources.lake import LakeResource
from trybank_assets.settings import get_settings

DAILY_CHAIN = AutomationCondition.on_cron("30 0 * * *", cron_timezone="UTC")
PREDICTION_MONITORING = AutomationCondition.on_cron("15 0 * * *", cron_timezone="UTC")
WEEKLY_RETRAINING = AutomationCondition.on_cron("0 2 * * 1", cron_timezone="UTC")
AFTER_PARENTS = AutomationCondition.eager()
# Eager, but not held back by parent days never materialized: the store reads the days it has.
ONLINE_STORE = AutomationCondition.eager().without(~AutomationCondition.any_deps_missing())

# Yesterday is due at 00:30 and takes minutes: a day and two hours is late, a day and six is failing.
DAILY_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=30), warn_window=timedelta(hours=26))
ONLINE_STORE_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=30), warn_window=timedelta(hours=26))

BRONZE = AssetKey("bronze_transactions")


def _status() -> DefaultSensorStatus:
    return DefaultSensorStatus.RUNNING if get_settings().automation_enabled else DefaultSensorStatus.STOPPED


automation_sensor = AutomationConditionSensorDefinition(
    "trybank_automation",
    target=AssetSelection.all(),
    default_status=_status(),
    description="Evaluates every asset's automation condition (TRYBANK_AUTOMATION_ENABLED turns it on).",
)


def newest_bronze_file_per_day(lake: LakePaths) -> dict[str, float]:
    """Each bronze day's newest file modification time, from a scan of the day folders."""
    newest: dict[str, float] = {}
    for day_dir in lake.bronze_transactions.glob("date=*"):
        day = day_dir.name.removeprefix("date=")
        for source_dir in day_dir.glob("source=*"):
            with os.scandir(source_dir) as files:
                for entry in files:
                    if entry.name.endswith(".jsonl"):
                        newest[day] = max(newest.get(day, 0.0), entry.stat().st_mtime)
    return newest


def _materialized_at(context: SensorEvaluationContext, day: str) -> float | None:
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=BRONZE, asset_partitions=[day]), limit=1
    ).records
    return records[0].timestamp if records else None


@sensor(
    asset_selection=AssetSelection.groups("demo", "bronze", "silver", "gold"),
    minimum_interval_seconds=300,
    default_status=_status(),
    description=(
        "Late data: when a bronze day that was already materialized gets a new or rewritten file, "
        "re-materialize that day from bronze through gold (TRYBANK_AUTOMATION_ENABLED turns it on)."
    ),
)
def late_bronze_files(context: SensorEvaluationContext, lake: LakeResource):
    newest = newest_bronze_file_per_day(lake)
    # Only days with a file newer than the last look need a lookup of their materialization.
    changed = {day: mtime for day, mtime in newest.items() if mtime > float(context.cursor or 0.0)}
    if not changed:
        return SkipReason("no new bronze file since the last look")
    context.update_cursor(str(max(changed.values())))
    late = []
    for day, mtime in sorted(changed.items()):
        materialized_at = _materialized_at(context, day)
        if materialized_at is not None and mtime > materialized_at:
            late.append(day)
    if not late:
        return SkipReason(f"no file newer than its day's materialization among {sorted(changed)}")
    return [RunRequest(run_key=f"late-bronze-{day}-{changed[day]}", partition_key=day) for day in late]
