"""Pipeline benchmark: bronze → gold in one single-run backfill, a one-day run, and the import.

    python benchmarks/pipeline.py [--days 30] [--customers 500] [--repeats 3]
    python benchmarks/pipeline.py --days 183 --customers 5000 --terminals 10000   # the bank-scale figure

Simulates the window once into bronze (a bank's export: its own source folder, as an import writes
it), then per repeat materializes the daily assets for the whole window in one run on a fresh copy of
that bronze, runs the last day alone (the daily job, Spark session already up), re-runs the last two
days as the UI would (`dg launch` in a new process, once on the long-lived Spark Connect server that
`scripts/up.sh` starts for the UI and once starting its own JVM), and times the DuckDB yardstick: the
classic window features (customer count and mean amount over 1/7/30 days, terminal count and fraud
share over delayed windows) in SQL over the same silver rows. Also imports the window as one Parquet
and one CSV file through `trybank ingest`'s code. Medians over the repeats; writes
benchmarks/results/pipeline.json (`transactions`, `wall_s`, `per_asset_s`, `duckdb_s`,
`gold_vs_duckdb`, `peak_rss_mb`, the same for `one_day`, `two_day_launch` and
`two_day_launch_own_jvm`, and `import`).
"""

import argparse
import json
import os
import platform
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from dagster import DagsterEventType, DagsterInstance, materialize
from pyspark.sql import functions as F

from trybank_assets.assets.silver import SILVER_SCHEMA
from trybank_assets.definitions import defs
from trybank_assets.file_import import ColumnMapping, ImportOptions, import_file
from trybank_assets.jobs import LAKEHOUSE_GROUPS
from trybank_assets.lake_layout import LakeLayout
from trybank_assets.lib.spark_tables import read_days
from trybank_assets.resources import build_resources
from trybank_assets.settings import TrybankSettings
from trybank_assets.simulator import SimulatorConfig, simulate_day
from trybank_assets.simulator.generator import encode_records

RESULT = Path(__file__).parent / "results" / "pipeline.json"
DAILY = [a for a in defs.assets if a.group_names_by_key[a.key] in LAKEHOUSE_GROUPS]
SOURCE = "bank-export"


def simulate(bronze_root: Path, days: list[date], customers: int) -> int:
    lake, config, rows = LakeLayout(bronze_root), SimulatorConfig(seed=42, n_customers=customers), 0
    for day in days:
        folder = lake.bronze_source_dir(day, SOURCE)
        folder.mkdir(parents=True, exist_ok=True)
        records = simulate_day(config, day)
        (folder / "part-00000.jsonl").write_bytes(encode_records(records))
        rows += len(records)
    return rows


def spark_server(log: Path) -> tuple[subprocess.Popen, str]:
    """A `trybank spark-server` as `scripts/up.sh` starts one for the UI's runs, and its URL once it serves."""
    token = secrets.token_hex(16)
    with log.open("w") as stderr:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("trybank")), "spark-server", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=os.environ | {"TRYBANK_SPARK_CONNECT_TOKEN": token},
        )
    line = server.stdout.readline()  # "port N" once serving; empty if it died
    if not line.startswith("port "):
        sys.exit(f"the Spark Connect server did not start:\n{log.read_text()[-3000:]}")
    return server, f"sc://localhost:{int(line.split()[1])}/;token={token}"


def launch(lake_root: Path, days: list[date], dagster_home: Path, spark_remote: str | None = None) -> float:
    """Wall seconds of `dg launch` materializing the daily assets over ``days`` in a new process, as the
    UI's backfill of that range does (same executor, one run): with ``spark_remote`` on that Spark Connect
    server's JVM, as `scripts/up.sh` runs the UI, else starting its own."""
    env = os.environ | {
        "TRYBANK_LAKE_ROOT": str(lake_root),
        "TRYBANK_SIMULATOR_ENABLED": "false",
        "TRYBANK_PARTITIONS_START": str(days[0] - timedelta(days=400)),
        "DAGSTER_HOME": str(dagster_home),
        **({"TRYBANK_SPARK_REMOTE": spark_remote} if spark_remote else {}),
    }
    dagster_home.mkdir(exist_ok=True)
    assets = ",".join(a.key.to_user_string() for a in DAILY)
    dg = Path(sys.executable).with_name("dg")  # this environment's, whether or not it is on PATH
    command = [str(dg), "launch", "--assets", assets, "--partition-range", f"{days[0]}...{days[-1]}"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=Path(__file__).parents[1], env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"dg launch failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def day_counts(bronze_root: Path, days: list[date]) -> dict[date, int]:
    """Bronze lines of each of ``days`` (every line of the simulated window is a valid transaction)."""
    lake = LakeLayout(bronze_root)
    return {
        d: sum(f.read_bytes().count(b"\n") for f in lake.bronze_source_dir(d, SOURCE).glob("*.jsonl")) for d in days
    }


def run(lake_root: Path, days: list[date], customers: int) -> tuple[float, dict[str, float]]:
    """One single-run materialization of the daily assets over ``days``: wall seconds and step seconds."""
    settings = TrybankSettings(lake_root=lake_root, simulator_customers=customers, simulator_enabled=False)
    tags = {"dagster/asset_partition_range_start": str(days[0]), "dagster/asset_partition_range_end": str(days[-1])}
    with DagsterInstance.ephemeral() as instance:
        started = time.perf_counter()
        result = materialize(DAILY, resources=build_resources(settings), tags=tags, instance=instance)
        wall = time.perf_counter() - started
        assert result.success
        steps = {
            e.step_key: e.dagster_event.event_specific_data.duration_ms / 1000
            for e in instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_SUCCESS)
        }
    return wall, steps


YARDSTICK_SQL = """
SELECT count(*), sum(c1 + c7 + c30 + m1 + m7 + m30 + t1 + t7 + t30 + f1 + f7 + f30) FROM (
    SELECT
        {features}
    FROM silver
)
"""


def duckdb_yardstick(silver: pa.Table) -> float:
    """Seconds for DuckDB to compute 12 classic window features over ``silver`` (in memory)."""
    day, delay, features = 86_400, 7, []
    for n, suffix in ((1, "1"), (7, "7"), (30, "30")):
        w = f"(PARTITION BY customer_id ORDER BY t RANGE BETWEEN {n * day} PRECEDING AND 1 PRECEDING)"
        features += [f"count(*) OVER {w} AS c{suffix}", f"coalesce(avg(amount) OVER {w}, 0) AS m{suffix}"]
        span = f"{(delay + n) * day} PRECEDING AND {delay * day} PRECEDING"
        far = f"(PARTITION BY terminal_id ORDER BY t RANGE BETWEEN {span})"
        features += [f"count(*) OVER {far} AS t{suffix}", f"coalesce(sum(fraud) OVER {far}, 0) AS f{suffix}"]
    con = duckdb.connect()
    con.register("raw", silver)
    con.execute("CREATE TABLE silver AS SELECT *, epoch(event_time) AS t, CAST(is_fraud AS INT) AS fraud FROM raw")
    started = time.perf_counter()
    con.execute(YARDSTICK_SQL.format(features=",\n        ".join(features))).fetchall()
    return time.perf_counter() - started


def import_times(bronze_root: Path, days: list[date], work: Path) -> dict:
    """`trybank ingest`'s code on the window as one Parquet and one CSV file (the handbook's columns)."""
    records = [json.loads(line) for f in sorted(bronze_root.rglob("*.jsonl")) for line in f.read_text().splitlines()]
    table = pa.table(
        {
            "TX_DATETIME": [r["event_time"] for r in records],
            "CUSTOMER_ID": [r["customer_id"] for r in records],
            "TERMINAL_ID": [r["terminal_id"] for r in records],
            "TX_AMOUNT": [r["amount"] for r in records],
            "TX_FRAUD": [int(r["is_fraud"]) for r in records],
        }
    )
    mapping = ColumnMapping(
        {"event_time": "TX_DATETIME", "customer_id": "CUSTOMER_ID", "terminal_id": "TERMINAL_ID"}
        | {"amount": "TX_AMOUNT", "is_fraud": "TX_FRAUD"}
    )
    out = {}
    for fmt in ("parquet", "csv"):
        path = work / f"export.{fmt}"
        pq.write_table(table, path) if fmt == "parquet" else pacsv.write_csv(table, path)
        lake = LakeLayout(work / f"import-{fmt}")
        started = time.perf_counter()
        summary = import_file(path, lake, "bench", mapping, options=ImportOptions(partitions_start=days[0]))
        seconds = time.perf_counter() - started
        out[fmt] = {
            "rows": summary.accepted,
            "seconds": round(seconds, 2),
            "rows_per_s": round(summary.accepted / seconds),
        }
    return out


def jvm_peak_rss_mb() -> int:
    """The Spark driver JVM's peak resident memory (VmHWM), read from /proc: it is this process's child."""
    peak = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(os.getpid()) and fields.get("Name", "").strip() == "java":
            peak = max(peak, int(fields["VmHWM"].split()[0]) // 1024)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--customers", type=int, default=500, help="about 2 transactions per customer per day")
    parser.add_argument("--terminals", type=int, help="the simulator draws 2 per customer; checked, not set")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-import", action="store_true")
    args = parser.parse_args()
    if args.terminals is not None and args.terminals != 2 * args.customers:
        parser.error("the simulator has 2 terminals per customer: --terminals must be 2 x --customers")
    first = date(2026, 1, 1)
    days = [first + timedelta(days=i) for i in range(args.days)]

    work = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    bronze = work / "bronze-template"
    transactions = simulate(bronze, days, args.customers)
    print(f"{transactions} transactions over {args.days} days ({args.customers} customers)")

    walls, steps, one_day, one_day_steps, two_days, two_days_embedded, yardstick = [], [], [], [], [], [], []
    server, spark_remote = spark_server(work / "spark-server.log")
    for i in range(args.repeats):
        lake_root = work / f"lake-{i}"
        shutil.copytree(bronze, lake_root)
        wall, step = run(lake_root, days, args.customers)
        walls.append(wall)
        steps.append(step)
        day_wall, day_steps = run(lake_root, days[-1:], args.customers)
        one_day.append(day_wall)
        one_day_steps.append(day_steps)
        two_days.append(launch(lake_root, days[-2:], work / f"dagster-home-{i}", spark_remote))
        two_days_embedded.append(launch(lake_root, days[-2:], work / f"dagster-home-embedded-{i}"))
        resources = build_resources(TrybankSettings(lake_root=lake_root))
        silver = read_days(
            resources["spark"].spark_session, LakeLayout(lake_root).silver_transactions, days, SILVER_SCHEMA
        )
        columns = ("customer_id", "terminal_id", "event_time", "is_fraud")
        yardstick.append(duckdb_yardstick(silver.select(*columns, F.col("amount").cast("double")).toArrow()))
        print(
            f"run {i + 1}/{args.repeats}: {wall:.1f} s, one day {day_wall:.1f} s, two days by dg launch "
            f"{two_days[-1]:.1f} s (own JVM {two_days_embedded[-1]:.1f} s), DuckDB {yardstick[-1]:.2f} s"
        )
        shutil.rmtree(lake_root)
    server.terminate()
    server.wait()

    def medians(runs: list[dict[str, float]]) -> dict[str, float]:
        return {step: round(statistics.median(run[step] for run in runs), 2) for step in runs[0]}

    per_asset = medians(steps)
    last_days = {d.isoformat(): n for d, n in day_counts(bronze, days[-2:]).items()}
    duckdb_s = statistics.median(yardstick)
    gold_s = per_asset["gold_transaction_features"]
    result = {
        "transactions": transactions,
        "days": args.days,
        "customers": args.customers,
        "wall_s": round(statistics.median(walls), 2),
        "wall_s_runs": [round(w, 2) for w in walls],
        "transactions_per_s": round(transactions / statistics.median(walls)),
        "per_asset_s": per_asset,
        "duckdb_s": round(duckdb_s, 3),
        "gold_vs_duckdb": round(gold_s / duckdb_s, 2),
        "peak_rss_mb": jvm_peak_rss_mb(),
        "python_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "one_day": {
            "transactions": last_days[days[-1].isoformat()],
            "wall_s": round(statistics.median(one_day), 2),
            "wall_s_runs": [round(w, 2) for w in one_day],
            "per_asset_s": medians(one_day_steps),
            "note": "materialize() in this process: the Spark session is already up",
        },
        "two_day_launch": {
            "transactions": sum(last_days.values()),
            "wall_s": round(statistics.median(two_days), 2),
            "wall_s_runs": [round(w, 2) for w in two_days],
            "note": (
                "dg launch of the last two days in a new process, as a UI backfill under scripts/up.sh: Python and "
                "Dagster start, Spark is the long-lived `trybank spark-server` (started before run 1, so run 1 "
                "includes its warm-up)"
            ),
        },
        "two_day_launch_own_jvm": {
            "wall_s": round(statistics.median(two_days_embedded), 2),
            "wall_s_runs": [round(w, 2) for w in two_days_embedded],
            "note": "the same launch without a Spark server: the run starts its own JVM (the embedded default)",
        },
        "import": None if args.skip_import else import_times(bronze, days, work),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "note": "peak_rss_mb is the Spark driver JVM's high-water mark; python_peak_rss_mb this process's",
    }
    shutil.rmtree(work)
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("wall_s", "per_asset_s", "duckdb_s", "gold_vs_duckdb")}, indent=2))
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
