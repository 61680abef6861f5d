"""Demo only: the simulator as a bronze source, defined when ``TRYBANK_SIMULATOR_ENABLED=true``."""

from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, MetadataValue, asset

from trybank_assets.assets.bronze import BRONZE_COLUMNS, SIMULATED_TRANSACTIONS
from trybank_assets.automation import DAILY_CHAIN, DAILY_FRESHNESS
from trybank_assets.partitions import daily_partitions, run_days
from trybank_assets.resources.lake import LakeResource
from trybank_assets.resources.simulator import SimulatorResource
from trybank_assets.simulator import write_day


@asset(
    name=SIMULATED_TRANSACTIONS,
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="demo",
    automation_condition=DAILY_CHAIN,
    freshness_policy=DAILY_FRESHNESS,
    code_version="1",
    owners=["team:fraud-data-engineering"],
    tags={"domain": "fraud", "layer": "demo"},
    kinds={"python", "json"},
    description=(
        "Synthetic card transactions for the demo: one file per day under "
        "bronze/transactions/date=D/source=simulator/, rewritten whole (same seed, same bytes). "
        "Exists only when TRYBANK_SIMULATOR_ENABLED=true; a real lake never receives a synthetic row."
    ),
    metadata={"dagster/column_schema": BRONZE_COLUMNS},
)
def simulated_transactions(
    context: AssetExecutionContext, lake: LakeResource, simulator: SimulatorResource
) -> MaterializeResult:
    total = 0
    for day in run_days(context):
        path = lake.simulated_bronze_file(day)
        rows = write_day(simulator.config, day, path)
        context.add_asset_metadata(
            {"dagster/row_count": rows, "path": MetadataValue.path(str(path))}, partition_key=day.isoformat()
        )
        total += rows
    context.log.info(f"simulated {total} transactions")
    return MaterializeResult(metadata={"run_rows": total})
