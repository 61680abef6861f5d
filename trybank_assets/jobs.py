from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    build_schedule_from_partitioned_job,
    define_asset_job,
)

LAKEHOUSE_GROUPS = ("bronze", "silver", "gold")

daily_lakehouse_job = define_asset_job(
    "daily_lakehouse_job",
    selection=AssetSelection.groups(*LAKEHOUSE_GROUPS),
    description="Bronze → silver → daily aggregates → gold features for one UTC day (or a range, in one run).",
)

# Runs shortly after midnight UTC for the day that just ended; off until someone turns it on.
daily_lakehouse_schedule = build_schedule_from_partitioned_job(
    daily_lakehouse_job, hour_of_day=0, minute_of_hour=30, default_status=DefaultScheduleStatus.STOPPED
)
