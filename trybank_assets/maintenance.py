"""Delta table maintenance as a job of its own: OPTIMIZE, then VACUUM, of every table of the lake.

It ran inside every 10th write before, where it doubled that run's time (~7 s per table on 2 cores, four tables
in a daily run): a daily run or a UI backfill now only writes, and the lake is kept by this job, on its schedule
(``automation.py``) or by hand. A run of it while a run replaces days of the same table can make one of their
commits fail on Delta's conflict check (OPTIMIZE commits only where it compacts something); nothing is lost, the
failed run is run again.
"""

from pathlib import Path

from dagster import AssetKey, AssetObservation, MetadataValue, OpExecutionContext, job, op
from dagster_pyspark import LazyPySparkResource

from trybank_assets.lib.spark_tables import is_table, maintain
from trybank_assets.resources.lake import LakeResource


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
    description=(
        "OPTIMIZE (compacts any day still holding several small files) and VACUUM (deletes files unreferenced for "
        "longer than TRYBANK_DELTA_VACUUM_RETENTION_HOURS) each Delta table; what each did is an observation of "
        "the table's asset."
    )
)
def maintain_delta_tables(context: OpExecutionContext, spark: LazyPySparkResource, lake: LakeResource) -> None:
    for asset_key, table in delta_tables(lake).items():
        if not is_table(table):
            continue
        done = maintain(spark.spark_session, table)
        context.log.info(f"{asset_key.to_user_string()}: {done}")
        context.log_event(
            AssetObservation(asset_key=asset_key, metadata={**done, "path": MetadataValue.path(str(table))})
        )


@job(description="Compact and vacuum the lake's Delta tables (daily at 04:00 UTC with automation on).")
def lake_maintenance_job():
    maintain_delta_tables()
