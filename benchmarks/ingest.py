"""Import benchmark: `trybank ingest` of a large CSV in the handbook's column layout.

    python benchmarks/ingest.py [--rows 2000000] [--repeats 3]

Writes a CSV (TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD; naive timestamps,
integer ids, 0.1% bad rows), imports it into a fresh lake per repeat and writes
benchmarks/results/ingest.json with the median time and rows/s.
"""

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "history.csv"
        write_csv(source, args.rows)
        times, summary = [], None
        for i in range(args.repeats):
            lake = LakeLayout(str(Path(tmp) / f"lake{i}"))
            started = time.perf_counter()
            summary = import_file(source, lake, "benchmark", MAPPING)
            times.append(time.perf_counter() - started)
            print(f"run {i + 1}/{args.repeats}: {times[-1]:.1f} s — {summary.line()}")
        size_mb = source.stat().st_size / 1e6
    median = statistics.median(times)
    result = {
        "rows": args.rows,
        "file_mb": round(size_mb, 1),
        "accepted": summary.accepted,
        "rejected": summary.rejected,
        "days": len(summary.days),
        "repeats": args.repeats,
        "seconds_median": round(median, 2),
        "seconds_runs": [round(t, 2) for t in times],
        "rows_per_s": round(args.rows / median),
        # Whole process, CSV generation included: the import spills rows to disk, it does not hold them.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{args.rows} rows ({size_mb:.0f} MB): median {median:.1f} s, {result['rows_per_s']} rows/s, "
        f"peak RSS {result['peak_rss_mb']} MB; wrote {RESULT}"
    )


if __name__ == "__main__":
    main()
