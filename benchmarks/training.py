"""Training benchmark: the fraud_model training run on about 600k gold rows (issue 13: at most 60 s).

    python benchmarks/training.py --lake DIR [--train-days 60] [--runs 3]

DIR is a lake with gold (and silver, which the feature spec reads) already written, such as the
183-day bank of `benchmarks/pipeline.py --days 183 --customers 5000 --terminals 10000`; the runs
write their versions into its model registry. Each run is the asset's whole training (the asset
calls the same function with the same arguments): gold read and cached, the prequential
validation of every candidate, the finalists' refit, calibration, test scoring and metrics, the
registry write with the portable scorers, the drift baseline and the curves. All runs share one
Spark session, as runs in one Dagster process do; the first pays for the JIT warm-up.

Writes benchmarks/results/training.json: `rows` (training rows), `seconds` (median wall time of a
run), `seconds_runs`, `per_stage_s` (medians per stage), `per_stage_s_runs`, and the quality of
each run's chosen model (protocol figures on the test window), so a faster run is seen not to be
a worse model.
"""

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

from trybank_assets.assets.gold import GOLD_SCHEMA
from trybank_assets.assets.silver import SILVER_SCHEMA
from trybank_assets.lib.spark_tables import day_range, read_days
from trybank_assets.model.trainer import TrainingSpec, feature_availability, train_fraud_model
from trybank_assets.resources import build_resources
from trybank_assets.settings import TrybankSettings

RESULT = Path(__file__).parent / "results" / "training.json"
TARGET_S = 60.0
QUALITY = ("roc_auc", "average_precision", "card_precision_at_100", "recall_at_1pct_fpr")


def train_once(spark, lake, spec: TrainingSpec):
    return train_fraud_model(
        spark,
        read_gold=lambda days: read_days(spark, lake.transaction_features, days, GOLD_SCHEMA),
        gold_days=day_range(spark, lake.transaction_features),
        registry_root=lake.fraud_model_registry,
        spec=spec,
        feature_spec=lambda window: feature_availability(
            read_days(spark, lake.silver_transactions, window.train_days, SILVER_SCHEMA)
        ),
        log=print,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, required=True, help="a lake with gold written")
    parser.add_argument("--train-days", type=int, default=60, help="about 10k rows a day in the 183-day bank")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = TrybankSettings(lake_root=args.lake, simulator_enabled=False)
    resources = build_resources(settings)
    spark, lake = resources["spark"].spark_session, resources["lake"]
    spec = TrainingSpec(train_days=args.train_days)

    runs = []
    for run in range(args.runs):
        started = time.perf_counter()
        trained = train_once(spark, lake, spec)
        seconds = time.perf_counter() - started
        runs.append((seconds, trained))
        stages = "  ".join(f"{k} {v:.1f}" for k, v in trained.stage_seconds.items())
        print(f"run {run + 1}: {seconds:.1f} s, {trained.metrics['train_rows']} rows; {stages}")

    metrics = runs[-1][1].metrics
    seconds = statistics.median(s for s, _ in runs)
    stage_names = list(runs[-1][1].stage_seconds)
    result = {
        "rows": metrics["train_rows"],
        "seconds": round(seconds, 1),
        "seconds_runs": [round(s, 1) for s, _ in runs],
        "target_s": TARGET_S,
        "target_met": seconds <= TARGET_S,
        "per_stage_s": {k: round(statistics.median(t.stage_seconds[k] for _, t in runs), 1) for k in stage_names},
        "per_stage_s_runs": [{k: round(v, 1) for k, v in t.stage_seconds.items()} for _, t in runs],
        "quality_runs": [
            {"candidate": t.metrics["candidate"], **{k: round(t.metrics[k], 4) for k in QUALITY}} for _, t in runs
        ],
        "train_window": metrics["train_window"],
        "test_window": metrics["test_window"],
        "test_rows": metrics["test_rows"],
        "spec": {
            "train_days": spec.train_days,
            "validation_folds": spec.validation_folds,
            "validation_days": spec.validation_days,
            "gbt_max_iter": spec.gbt_max_iter,
            "candidates": list(metrics["candidates"]),
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "spark_master": settings.spark_master},
        "command": f"python benchmarks/training.py --lake LAKE --train-days {args.train_days} --runs {args.runs}",
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"median {seconds:.1f} s over {args.runs} runs; wrote {RESULT}")


if __name__ == "__main__":
    main()
