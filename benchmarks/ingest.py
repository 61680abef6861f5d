"""Import benchmark: `trybank ingest` of a large CSV and Parquet file in the handbook's column layout.

    python benchmarks/ingest.py [--rows 2000000] [--repeats 3]

Writes a CSV (TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD; naive timestamps,
integer ids, 0.1% bad rows) and the same rows as Parquet with the types pyarrow reads from the CSV
(timestamp, int64, double, int64), imports each into a fresh lake per repeat and writes
benchmarks/results/ingest.json: the CSV's median time and rows/s at the top level (as before the
Parquet was measured) and both formats under ``formats``.
"""

import argparse
import json
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from trybank_assets.file_import import ColumnMapping, import_file
from trybank_assets.lake_layout import LakeLayout

RESULT = Path(__file__).parent / "results" / "ingest.json"
MAPPING = ColumnMapping(
    columns={
        "event_time": "TX_DATETIME",
        "customer_id": "CUSTOMER_ID",
        "terminal_id": "TERMINAL_ID",
        "amount": "TX_AMOUNT",
        "is_fraud": "TX_FRAUD",
    }
)


def write_csv(path: Path, rows: int) -> None:
    rng = np.random.default_rng(1)
    seconds = np.sort(rng.integers(0, 180 * 86_400, size=rows))
    stamps = np.datetime64("2026-01-01T00:00:00") + seconds.astype("timedelta64[s]")
    amounts = np.round(rng.gamma(2.0, 30.0, size=rows) + 0.01, 2)
    bad = rng.random(rows) < 0.001
    with open(path, "w") as fh:
        fh.write("TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD\n")
        for stamp, c, t, a, f, b in zip(
            np.datetime_as_string(stamps).tolist(),
            rng.integers(0, 5000, size=rows).tolist(),
            rng.integers(0, 10000, size=rows).tolist(),
            amounts.tolist(),
            (rng.random(rows) < 0.008).astype(int).tolist(),
            bad.tolist(),
            strict=True,
        ):
            fh.write(f"{stamp.replace('T', ' ')},{c},{t},{-a if b else a},{f}\n")


def measure(source: Path, rows: int, repeats: int, work: Path) -> dict:
    """Import ``source`` into a fresh lake ``repeats`` times: the median and every run."""
    times, summary = [], None
    for i in range(repeats):
        lake = LakeLayout(str(work / f"lake-{source.suffix[1:]}{i}"))
        started = time.perf_counter()
        summary = import_file(source, lake, "benchmark", MAPPING)
        times.append(time.perf_counter() - started)
        print(f"{source.name} run {i + 1}/{repeats}: {times[-1]:.1f} s — {summary.line()}")
        shutil.rmtree(lake.path)  # ~0.7 GB of bronze per 2M rows
    median = statistics.median(times)
    return {
        "file_mb": round(source.stat().st_size / 1e6, 1),
        "accepted": summary.accepted,
        "rejected": summary.rejected,
        "days": len(summary.days),
        "seconds_median": round(median, 2),
        "seconds_runs": [round(t, 2) for t in times],
        "rows_per_s": round(rows / median),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv_file, parquet_file = Path(tmp) / "history.csv", Path(tmp) / "history.parquet"
        write_csv(csv_file, args.rows)
        pq.write_table(pacsv.read_csv(csv_file), parquet_file)
        formats = {
            "csv": measure(csv_file, args.rows, args.repeats, Path(tmp)),
            "parquet": measure(parquet_file, args.rows, args.repeats, Path(tmp)),
        }
    result = {
        "rows": args.rows,
        **{k: v for k, v in formats["csv"].items() if k != "rows_per_s"},
        "repeats": args.repeats,
        "rows_per_s": formats["csv"]["rows_per_s"],
        # Whole process, file generation included: the import spills rows to disk, it does not hold them.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        # The largest converting process's (forked: pages it shares with this process count too).
        "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "formats": formats,
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    for fmt, figures in formats.items():
        print(
            f"{fmt}: {args.rows} rows ({figures['file_mb']:.0f} MB), median {figures['seconds_median']:.1f} s, "
            f"{figures['rows_per_s']} rows/s"
        )
    print(f"peak RSS {result['peak_rss_mb']} MB, of a worker {result['worker_peak_rss_mb']} MB; wrote {RESULT}")


if __name__ == "__main__":
    main()
