"""Dagster's own cost of a single-run backfill of the lake's daily assets, by instance storage.

    python benchmarks/dagster_events.py [--days 183] [--repeats 3] [--postgres-url postgresql+psycopg2://...]

A range run of the daily assets stores, per day, a planned event and a materialization for each of the five
assets and an evaluation for each of their eight checks, besides its steps' own events. This benchmark times
that bookkeeping alone: the same asset keys, dependencies, partitions, backfill policy and checks as
`trybank_assets.definitions`, with bodies that do no Spark work but yield what the real steps yield (a
materialization per day with a row count, a partition filter and a five-row Markdown preview of the asset's
columns; each check's real result function per day). Runs on the in-memory instance (what
`benchmarks/pipeline.py` times), on Dagster's default SQLite storage in a fresh DAGSTER_HOME (what `scripts/up.sh`
and the UI use), and on PostgreSQL when given a URL (the README's production setting; needs
`pip install dagster-postgres`). Medians over the repeats; writes benchmarks/results/dagster_events.json
(`days`, `events_per_run`, and per storage `wall_s`, `runs_s`, `ms_per_event`).
"""

import argparse
import json
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    DagsterInstance,
    MaterializeResult,
    MetadataValue,
    materialize,
    multi_asset,
)

from trybank_assets.assets.aggregates import counts_match_silver
from trybank_assets.assets.gold import gold_check_results
from trybank_assets.assets.silver import KEY_COLUMNS, silver_check_results
from trybank_assets.definitions import defs
from trybank_assets.jobs import LAKEHOUSE_GROUPS
from trybank_assets.lib.metadata import markdown_table
from trybank_assets.lib.partition_checks import evaluations_by_day
from trybank_assets.partitions import daily_partitions, run_days

RESULT = Path(__file__).parent / "results" / "dagster_events.json"
ROWS_PER_DAY = 9_600


def _check_results(asset: str, check_names: list[str]):
    """The day's check results as the real asset computes them from passing figures."""
    if asset == "silver_transactions":
        balance = {
            "bronze_rows": ROWS_PER_DAY,
            "silver_rows": ROWS_PER_DAY,
            "quarantined_rows": 0,
            "duplicates_dropped": 0,
        }
        return silver_check_results(0, dict.fromkeys(KEY_COLUMNS, 0), balance)
    if asset == "gold_transaction_features":
        return gold_check_results(ROWS_PER_DAY, 0, ROWS_PER_DAY, {}, [])
    return [counts_match_silver(name, ROWS_PER_DAY, ROWS_PER_DAY) for name in check_names]


def _preview(columns: list[str]) -> MetadataValue:
    row = {c: "3f2c9a5e-8d41-4b7a-9c1e-5a6b7c8d9e0f" if c.endswith("_id") else 1234.5678 for c in columns}
    return MetadataValue.md(markdown_table(columns, [row] * 5))


def bookkeeping_twin(real: AssetsDefinition) -> AssetsDefinition:
    """``real``'s asset and checks with a body that only yields what the real step yields."""
    spec = next(iter(real.specs))
    name = real.key.to_user_string()
    schema = spec.metadata.get("dagster/column_schema")
    preview = _preview([c.name for c in schema.columns] if schema else ["transaction_id", "date"])
    check_names = [c.name for c in real.check_specs]

    @multi_asset(
        name=f"{name}_bookkeeping",
        specs=[spec],
        check_specs=list(real.check_specs),
        backfill_policy=real.backfill_policy,
    )
    def twin(context: AssetExecutionContext):
        days = run_days(context)
        for day in days:
            context.add_asset_metadata(
                {
                    "dagster/row_count": ROWS_PER_DAY,
                    "partition_filter": f"date = '{day}'",
                    "preview": preview,
                },
                partition_key=day.isoformat(),
            )
        yield MaterializeResult(
            metadata={
                "run_rows": ROWS_PER_DAY * len(days),
                "path": MetadataValue.path(f"/lake/{name}"),
                "delta_version": 1,
                "delta_operation": "WRITE",
                "delta_files_added": len(days),
            }
        )
        yield from evaluations_by_day(context, {d: _check_results(name, check_names) for d in days})

    return twin


def instance_factory(storage: str, root: Path, postgres_url: str | None):
    """Instances of ``storage``, all on one new DAGSTER_HOME (and, for PostgreSQL, one database)."""
    if storage == "in_memory":
        return DagsterInstance.ephemeral
    home = Path(tempfile.mkdtemp(dir=root, prefix=f"{storage}-"))
    config = "telemetry:\n  enabled: false\n"
    if storage == "postgres":
        config += f"storage:\n  postgres:\n    postgres_url: {postgres_url}\n"
    (home / "dagster.yaml").write_text(config)
    return lambda: DagsterInstance.from_config(str(home))


def timed_run(assets: list[AssetsDefinition], days: list[date], new_instance) -> tuple[float, int]:
    tags = {"dagster/asset_partition_range_start": str(days[0]), "dagster/asset_partition_range_end": str(days[-1])}
    with new_instance() as instance:
        started = time.perf_counter()
        result = materialize(assets, tags=tags, instance=instance)
        wall = time.perf_counter() - started
        assert result.success
        events = len(instance.all_logs(result.run_id))
    return wall, events


def _empty_postgres(url: str) -> None:
    """Drop Dagster's tables: the runs start from an empty instance, as the SQLite runs do."""
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=183)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--postgres-url", help="postgresql+psycopg2://user:password@host:port/db (its public schema is dropped first)"
    )
    args = parser.parse_args()

    daily = [a for a in defs.assets if a.group_names_by_key[a.key] in LAKEHOUSE_GROUPS]
    twins = [bookkeeping_twin(a) for a in daily]
    days = [daily_partitions.start.date() + timedelta(days=i) for i in range(args.days)]
    storages = ["in_memory", "sqlite"] + (["postgres"] if args.postgres_url else [])
    result: dict = {"days": args.days, "assets": [a.key.to_user_string() for a in daily], "storages": {}}
    with tempfile.TemporaryDirectory(prefix="dagster-events-") as root:
        for storage in storages:
            if storage == "postgres":
                _empty_postgres(args.postgres_url)
            new_instance = instance_factory(storage, Path(root), args.postgres_url)
            # A first one-day run creates the storage's tables, as a DAGSTER_HOME's first run does once.
            timed_run(twins, days[:1], new_instance)
            runs, events = [], 0
            for _ in range(args.repeats):
                wall, events = timed_run(twins, days, new_instance)
                runs.append(round(wall, 2))
                print(f"{storage}: {wall:.2f} s, {events} events", flush=True)
            wall = statistics.median(runs)
            result["events_per_run"] = events
            result["storages"][storage] = {
                "wall_s": wall,
                "runs_s": runs,
                "ms_per_event": round(wall / events * 1e3, 2),
            }
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
