"""Pipeline benchmark: a single-run backfill bronze → gold over a simulated window, in one process.

    python benchmarks/pipeline.py [--days 30] [--customers 5000] [--repeats 3]

Prints wall time and transactions/s per asset (medians over the repeats, each repeat on a fresh
lake) and writes benchmarks/results/pipeline.json.
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("TRYBANK_SIMULATOR_ENABLED", "true")  # the window is simulated by the demo source

from dagster import DagsterEventType, DagsterInstance, materialize

from trybank_assets.definitions import defs
from trybank_assets.jobs import LAKEHOUSE_GROUPS
from trybank_assets.resources import build_resources
from trybank_assets.settings import TrybankSettings

RESULT = Path(__file__).parent / "results" / "pipeline.json"


def run_once(first: date, last: date, customers: int) -> tuple[float, dict[str, float], int]:
    with tempfile.TemporaryDirectory() as lake, DagsterInstance.ephemeral() as instance:
        settings = TrybankSettings(lake_root=Path(lake), simulator_customers=customers)
        tags = {
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        }
        started = time.perf_counter()
        result = materialize(
            [a for a in defs.assets if a.group_names_by_key[a.key] in LAKEHOUSE_GROUPS],
            resources=build_resources(settings),
            tags=tags,
            instance=instance,
        )
        wall = time.perf_counter() - started
        assert result.success
        steps = {}
        for event in instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_SUCCESS):
            steps[event.step_key] = event.dagster_event.event_specific_data.duration_ms / 1000
        silver = next(
            e.materialization.metadata["silver_rows"].value
            for e in result.get_asset_materialization_events()
            if e.materialization.asset_key.to_user_string() == "gold_transaction_features"
        )
        return wall, steps, silver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--customers", type=int, default=5000, help="about 2 transactions per customer per day")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    first = date(2026, 6, 1)
    last = first + timedelta(days=args.days - 1)

    walls, steps_by_run, transactions = [], [], 0
    for i in range(args.repeats):
        wall, steps, transactions = run_once(first, last, args.customers)
        walls.append(wall)
        steps_by_run.append(steps)
        print(f"run {i + 1}/{args.repeats}: {wall:.1f} s wall, {transactions} transactions")

    per_asset = {}
    for step in steps_by_run[0]:
        seconds = statistics.median(run[step] for run in steps_by_run)
        per_asset[step] = {"median_s": round(seconds, 2), "transactions_per_s": round(transactions / seconds)}
    wall = statistics.median(walls)
    result = {
        "window": {"first": first.isoformat(), "last": last.isoformat(), "days": args.days},
        "customers": args.customers,
        "transactions": transactions,
        "transactions_per_day": round(transactions / args.days),
        "repeats": args.repeats,
        "wall_s_median": round(wall, 2),
        "wall_s_runs": [round(w, 2) for w in walls],
        "transactions_per_s_end_to_end": round(transactions / wall),
        "assets": per_asset,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "note": "wall time includes the SparkSession start of the first repeat only (later repeats reuse it)",
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\n{transactions} transactions over {args.days} days; median wall {wall:.1f} s "
        f"({result['transactions_per_s_end_to_end']} tx/s end to end)"
    )
    for step, figures in per_asset.items():
        print(f"  {step:28s} {figures['median_s']:7.2f} s  {figures['transactions_per_s']:>9} tx/s")
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
