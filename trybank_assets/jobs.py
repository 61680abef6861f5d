from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    build_schedule_from_partitioned_job,
    define_asset_job,
)

# "demo" holds the simulator, defined only when TRYBANK_SIMULATOR_ENABLED=true.
LAKEHOUSE_GROUPS = ("demo", "bronze", "silver", "gold")

daily_lakehouse_job = define_asset_job(
    "daily_lakehouse_job",
    selection=AssetSelection.groups(*LAKEHOUSE_GROUPS),
    description=(
        "Bronze → silver → daily aggregates → gold features for one UTC day (or a range, in one run); "
        "in the demo, the simulator's files first."
    ),
)

# Runs shortly after midnight UTC for the day that just ended; off until someone turns it on.
daily_lakehouse_schedule = build_schedule_from_partitioned_job(
    daily_lakehouse_job, hour_of_day=0, minute_of_hour=30, default_status=DefaultScheduleStatus.STOPPED
)

online_store_job = define_asset_job(
    "online_store_job",
    selection=AssetSelection.assets("online_customer_state"),
    description="Rebuild the serving store from the latest daily aggregates; the API picks it up within a second.",
)

daily_monitoring_job = define_asset_job(
    "daily_monitoring_job",
    selection=AssetSelection.groups("monitoring"),
    description="The API's predictions of one UTC day as a table, with drift checks against the model's test window.",
)

# Before the lakehouse job: yesterday's last prediction-log segment is published within a minute of midnight.
daily_monitoring_schedule = build_schedule_from_partitioned_job(
    daily_monitoring_job, hour_of_day=0, minute_of_hour=15, default_status=DefaultScheduleStatus.STOPPED
)

model_job = define_asset_job(
    "model_job",
    selection=AssetSelection.assets("fraud_model", "deployed_fraud_model"),
    description="Train on the latest gold window and promote the new version if it passes the promotion gate.",
)

# Weekly, Monday 02:00 UTC, after the Sunday partition is in gold.
weekly_model_schedule = ScheduleDefinition(
    job=model_job, cron_schedule="0 2 * * 1", execution_timezone="UTC", default_status=DefaultScheduleStatus.STOPPED
)
