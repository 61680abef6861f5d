"""Delta table maintenance as a job of its own: OPTIMIZE, then VACUUM, of every table of the lake.

It ran inside every 10th write before, where it doubled that run's time (~7 s per table on 2 cores, four tables
in a daily run): a daily run or a UI backfill now only writes, and the lake is kept by this job, daily at 04:00
UTC with automation on, or by hand.

Overlapping a run that writes the same table is safe while the VACUUM retention
(``TRYBANK_DELTA_VACUUM_RETENTION_HOURS``, default 168) is longer than any run: VACUUM deletes only files
unreferenced for longer, and a write's files are unreferenced until it commits. OPTIMIZE commits only where it
compacts something; that commit and a run's replacement of the same day can conflict, and Delta then fails the
later one, which loses nothing and is run again.
"""

from collections.abc import Iterator
from pathlib import Path

from dagster import (
    AssetKey,
    AssetObservation,
    DefaultScheduleStatus,
    Failure,
    MetadataValue,
    OpExecutionContext,
    ScheduleDefinition,
    job,
    op,
)
from dagster_pyspark import LazyPySparkResource

from trybank_assets.lib.spark_tables import is_table, maintain
from trybank_assets.resources.lake import LakeResource
from trybank_assets.settings import get_settings


def delta_tables(lake: LakeResource) -> dict[AssetKey, Path]:
    """Each Delta table of the lake, by the asset that writes it."""
    return {
        AssetKey("silver_transactions"): lake.silver_transactions,
        AssetKey("customer_daily_aggregates"): lake.customer_daily_aggregates,
        AssetKey("terminal_daily_aggregates"): lake.terminal_daily_aggregates,
        AssetKey("gold_transaction_features"): lake.transaction_features,
        AssetKey("prediction_log"): lake.prediction_log,
    }


@op(
    out={},
    description=(
        "OPTIMIZE (compacts any day still holding several small files) and VACUUM (deletes files unreferenced for "
        "longer than TRYBANK_DELTA_VACUUM_RETENTION_HOURS) each Delta table; what each did is an observation of "
        "the table's asset. A table that fails does not keep the others from being maintained."
    ),
)
def maintain_delta_tables(
    context: OpExecutionContext, spark: LazyPySparkResource, lake: LakeResource
) -> Iterator[AssetObservation]:
    failed = {}
    for asset_key, table in delta_tables(lake).items():
        if not is_table(table):
            continue
        try:
            done = maintain(spark.spark_session, table)
        except Exception as error:  # reported below, after the other tables
            context.log.error(f"{asset_key.to_user_string()}: {error}")
            failed[asset_key.to_user_string()] = str(error).splitlines()[0]
            continue
        context.log.info(f"{asset_key.to_user_string()}: {done}")
        # Yielded, not context.log_event: logged events are stored when the op returns, so a failure would drop them.
        yield AssetObservation(asset_key=asset_key, metadata={**done, "path": MetadataValue.path(str(table))})
    if failed:
        raise Failure(f"maintenance failed on {sorted(failed)}", metadata={"errors": MetadataValue.json(failed)})


@job(description="Compact and vacuum the lake's Delta tables (daily at 04:00 UTC with automation on).")
def lake_maintenance_job():
    maintain_delta_tables()


lake_maintenance_schedule = ScheduleDefinition(
    name="lake_maintenance_daily",
    job=lake_maintenance_job,
    cron_schedule="0 4 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING
    if get_settings().automation_enabled
    else DefaultScheduleStatus.STOPPED,
    description=(
        "Compacts and vacuums the lake's Delta tables after the night's runs (TRYBANK_AUTOMATION_ENABLED turns it on)."
    ),
)
