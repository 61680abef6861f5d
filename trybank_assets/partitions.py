import warnings
from datetime import date, timedelta

from dagster import AssetExecutionContext, BetaWarning, DailyPartitionsDefinition, PreviewWarning

from trybank_assets.settings import get_settings

# Beta and preview in Dagster 1.13, used on purpose by every daily asset (each imports this module): one run per
# backfill range, and its check results per day.
warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy.*")
warnings.filterwarnings("ignore", category=PreviewWarning, message=".*partitions_def on an AssetCheckSpec.*")

daily_partitions = DailyPartitionsDefinition(
    start_date=get_settings().partitions_start.isoformat(), timezone="UTC", end_offset=0
)


def run_days(context: AssetExecutionContext) -> list[date]:
    """The UTC days this run materializes: one partition, or a whole single-run backfill range."""
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    return [first + timedelta(days=i) for i in range((end - first).days)]


def check_iso_day(cls, value: str | None) -> str | None:
    """Pydantic validator for optional YYYY-MM-DD run-config fields (Dagster config has no date type)."""
    if value is not None:
        date.fromisoformat(value)
    return value
