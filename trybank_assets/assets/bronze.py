"""Bronze: raw JSON lines exactly as the sources wrote them, one folder per UTC day and source."""

from datetime import date

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
)

from trybank_assets.automation import DAILY_CHAIN, DAILY_FRESHNESS
from trybank_assets.bronze_contract import BRONZE_FIELDS
from trybank_assets.partitions import daily_partitions, run_days
from trybank_assets.resources.lake import LakeResource
from trybank_assets.settings import get_settings

# The demo's simulator source (assets/demo.py), defined only when TRYBANK_SIMULATOR_ENABLED=true.
SIMULATED_TRANSACTIONS = "simulated_transactions"
_NON_STRING_FIELDS = {"amount": "number", "is_fraud": "boolean"}
BRONZE_COLUMNS = TableSchema(
    columns=[TableColumn(name, _NON_STRING_FIELDS.get(name, "string")) for name in BRONZE_FIELDS]
)


def count_complete_lines(lake: LakeResource, day: date) -> dict[str, int]:
    """Rows per source for ``day``; a line still being appended (no newline yet) is not counted."""
    counts: dict[str, int] = {}
    day_path = lake.bronze_day(day)
    if not day_path.is_dir():
        return counts
    for source_dir in sorted(day_path.glob("source=*")):
        source = source_dir.name.removeprefix("source=")
        counts[source] = 0
        for file in sorted(source_dir.glob("*.jsonl")):
            with open(file, "rb") as fh:
                counts[source] += sum(chunk.count(b"\n") for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""))
    return counts


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    # The demo's simulator is one more source; on a real lake it does not exist and bronze has no upstream.
    deps=[SIMULATED_TRANSACTIONS] if get_settings().simulator_enabled else [],
    group_name="bronze",
    automation_condition=DAILY_CHAIN,
    freshness_policy=DAILY_FRESHNESS,
    code_version="2",
    owners=["team:fraud-data-engineering"],
    tags={"domain": "fraud", "layer": "bronze"},
    kinds={"python", "json"},
    description=(
        "Raw card transactions as JSON lines under bronze/transactions/date=D/source=S/, written by the "
        "sources (file imports, the API, the demo simulator). Materializing a day registers and counts "
        "what the sources wrote for it; it never writes or rewrites a row."
    ),
    metadata={"dagster/column_schema": BRONZE_COLUMNS},
)
def bronze_transactions(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    days = run_days(context)
    per_source: dict[str, int] = {}
    without_files = []
    for day in days:
        day_counts = count_complete_lines(lake, day)
        if not day_counts:
            without_files.append(day.isoformat())
        context.add_asset_metadata(
            {
                "dagster/row_count": sum(day_counts.values()),
                "rows_by_source": MetadataValue.json(day_counts),
                "path": MetadataValue.path(str(lake.bronze_day(day))),
            },
            partition_key=day.isoformat(),
        )
        for source, rows in day_counts.items():
            per_source[source] = per_source.get(source, 0) + rows
    # One line for the run: each day's counts are in its materialization, and a log line per day is one more event
    # per day for Dagster to store (~30 ms each on the default SQLite instance).
    context.log.info(
        f"bronze {days[0]}..{days[-1]}: {per_source or 'no files'}"
        + (f"; days without files: {without_files}" if without_files and per_source else "")
    )
    return MaterializeResult(
        metadata={"run_rows": sum(per_source.values()), "run_rows_by_source": MetadataValue.json(per_source)}
    )
