"""Model-quality benchmark: the project's model against the published baseline, same split, same protocol.

    python benchmarks/model_quality.py [--days 120] [--customers 5000] [--lake DIR]

Simulates a bank (about 2 terminals per customer) and writes it into bronze twice: with the
minimal schema of public fraud datasets (id, time, customer, terminal, amount, label) and with the
full one (plus countries, channel, category). Each lake goes through the daily assets to gold and
the fraud_model asset trains on the literature's split: 7 training days, a 7-day delay, 7 test
days ending on the last simulated day.

The baseline is computed independently of the project's feature code, in DuckDB SQL from silver's
plain columns, as the fraud-detection handbook defines it: the customer's transaction count and
mean amount over the last 1, 7 and 30 days (rolling, the transaction included), the terminal's
transaction count and fraud share over 1, 7 and 30 days ending 7 days before (labels are late),
night and weekend flags and the amount; a logistic regression on standardized features (numpy).
Both are judged on the same test rows under the same protocol (`model.evaluation`).

Writes benchmarks/results/model_quality.json: `baseline` and `model` (minimal schema), each with
`protocol` and `all_rows`; `schemas` with both schemas; `ablation` (feature set → protocol metrics).
"""

import argparse
import json
import os
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

import duckdb
import numpy as np
from dagster import DagsterInstance, RunConfig, materialize

from trybank_assets.assets.gold import GOLD_SCHEMA
from trybank_assets.assets.model import FraudModelConfig
from trybank_assets.assets.silver import SILVER_SCHEMA
from trybank_assets.bronze_contract import bronze_record
from trybank_assets.definitions import defs
from trybank_assets.features import FEATURE_NAMES
from trybank_assets.jobs import LAKEHOUSE_GROUPS
from trybank_assets.lib.spark_tables import read_days
from trybank_assets.model import registry
from trybank_assets.model.evaluation import protocol_metrics
from trybank_assets.model.trainer import first_fraud_days
from trybank_assets.model.training import Candidate, build_pipeline, labelled, scored_arrays
from trybank_assets.model.windows import TrainingWindow, days_between
from trybank_assets.resources import build_resources
from trybank_assets.resources.lake import LakeResource
from trybank_assets.settings import TrybankSettings
from trybank_assets.simulator import SimulatorConfig, simulate_day

RESULT = Path(__file__).parent / "results" / "model_quality.json"
MINIMAL_FIELDS = ("transaction_id", "event_time", "customer_id", "terminal_id", "amount", "is_fraud")
HEADLINE = ("roc_auc", "average_precision", "card_precision_at_100")
TRAIN_DAYS, DELAY_DAYS, TEST_DAYS = 7, 7, 7
AMOUNT_AND_TIME = ("amount", "hour_of_day", "is_night", "is_weekend")
WITH_CUSTOMER_WINDOWS = AMOUNT_AND_TIME + tuple(
    f"customer_{kind}_{n}d" for n in (1, 7, 30) for kind in ("txn_count", "mean_amount")
)
BASELINE_SET = WITH_CUSTOMER_WINDOWS + tuple(
    f"terminal_{kind}_{n}d" for n in (1, 7, 30) for kind in ("txn_count", "fraud_risk")
)
VELOCITY = tuple(
    f"{who}_{kind}_{suffix}"
    for who in ("customer", "terminal")
    for suffix in ("10min", "1h")
    for kind in ("txn_count", "amount")
)
FIRST_TIME_AT_TERMINAL = ("new_terminal_30d",)
TERMINAL_AMOUNT = ("terminal_mean_amount_30d", "amount_to_terminal_mean_ratio_30d")
DAY_WINDOWS = tuple(n for n in FEATURE_NAMES if n not in VELOCITY + FIRST_TIME_AT_TERMINAL + TERMINAL_AMOUNT)
ABLATION = {
    "amount and time": AMOUNT_AND_TIME,
    "+ customer windows": WITH_CUSTOMER_WINDOWS,
    "+ terminal risk (baseline set)": BASELINE_SET,
    "all day-window features": DAY_WINDOWS,
    "+ velocity (10 min, 1 h)": DAY_WINDOWS + VELOCITY,
    "+ velocity, first time at terminal": DAY_WINDOWS + VELOCITY + FIRST_TIME_AT_TERMINAL,
    "all features but velocity": tuple(n for n in FEATURE_NAMES if n not in VELOCITY),
    "all features": FEATURE_NAMES,
}


def write_bronze(lake: LakeResource, days: list[date], customers: int, minimal: bool) -> int:
    """The simulated days as one bronze source, optional fields dropped for the minimal schema."""
    config, written = SimulatorConfig(seed=42, n_customers=customers), 0
    for day in days:
        folder = lake.bronze_source_dir(day, "bank-export")
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for record in simulate_day(config, day):
            if minimal:
                kept = {k: record[k] for k in MINIMAL_FIELDS}
                cents = round(kept.pop("amount") * 100)
                record = bronze_record(
                    **{k: v for k, v in kept.items() if k != "event_time"},
                    event_time=datetime.fromisoformat(kept["event_time"]),
                    amount_cents=cents,
                )
            lines.append(json.dumps(record, separators=(",", ":")))
        (folder / "part-00000.jsonl").write_text("\n".join(lines) + "\n")
        written += len(lines)
    return written


def build_gold(lake_root: Path, days: list[date], customers: int, minimal: bool) -> dict:
    settings = TrybankSettings(lake_root=lake_root, simulator_customers=customers, simulator_enabled=False)
    resources = build_resources(settings)
    lake = resources["lake"]
    if (lake.transaction_features / f"date={days[-1]}").exists():
        print(f"  reusing gold in {lake_root}")
        return resources
    started = time.perf_counter()
    rows = write_bronze(lake, days, customers, minimal)
    print(f"  bronze: {rows} transactions over {len(days)} days ({time.perf_counter() - started:.0f} s)")
    started = time.perf_counter()
    tags = {"dagster/asset_partition_range_start": str(days[0]), "dagster/asset_partition_range_end": str(days[-1])}
    daily = [a for a in defs.assets if a.group_names_by_key[a.key] in LAKEHOUSE_GROUPS]
    with DagsterInstance.ephemeral() as instance:
        assert materialize(daily, resources=resources, tags=tags, instance=instance).success
    print(f"  bronze → gold in one run: {time.perf_counter() - started:.0f} s")
    return resources


def train_project_model(resources: dict, window: TrainingWindow) -> dict:
    config = FraudModelConfig(
        train_end=window.train_end.isoformat(),
        train_days=TRAIN_DAYS,
        delay_days=DELAY_DAYS,
        test_days=TEST_DAYS,
        validation_days=2,
        validation_folds=3,
    )
    model_assets = [a for a in defs.assets if a.key.path[0] == "fraud_model"]
    started = time.perf_counter()
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            model_assets, resources=resources, instance=instance, run_config=RunConfig(ops={"fraud_model": config})
        )
    assert result.success
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key.path == ["fraud_model"])
    version = event.materialization.metadata["version"].value
    print(f"  fraud_model {version}: {time.perf_counter() - started:.0f} s")
    return registry.read_metrics(resources["lake"].fraud_model_registry, version)


BASELINE_SQL = """
WITH tx AS (
    SELECT *, epoch(event_time) AS t FROM silver
),
customer AS (
    SELECT transaction_id,
        {customer}
    FROM tx
),
terminal AS (
    SELECT transaction_id,
        {terminal}
    FROM tx
)
SELECT tx.transaction_id, tx.customer_id, tx.date, tx.amount, CAST(tx.is_fraud AS DOUBLE) AS label,
    CAST(hour(tx.event_time) <= 6 AS DOUBLE) AS is_night,
    CAST(isodow(tx.event_time) >= 6 AS DOUBLE) AS is_weekend,
    customer.* EXCLUDE (transaction_id), terminal.* EXCLUDE (transaction_id)
FROM tx JOIN customer USING (transaction_id) JOIN terminal USING (transaction_id)
"""


def baseline_features(silver) -> dict[str, np.ndarray]:
    """The handbook's baseline features, in DuckDB SQL over silver's plain columns."""
    day = 86_400
    customer, terminal = [], []
    for n in (1, 7, 30):
        w = f"(PARTITION BY customer_id ORDER BY t RANGE BETWEEN {n * day} PRECEDING AND CURRENT ROW)"
        customer += [f"count(*) OVER {w} AS customer_nb_tx_{n}d", f"avg(amount) OVER {w} AS customer_avg_amount_{n}d"]
        delayed = (
            f"(PARTITION BY terminal_id ORDER BY t RANGE BETWEEN {(DELAY_DAYS + n) * day} PRECEDING AND CURRENT ROW)"
        )
        delay = f"(PARTITION BY terminal_id ORDER BY t RANGE BETWEEN {DELAY_DAYS * day} PRECEDING AND CURRENT ROW)"
        count = f"(count(*) OVER {delayed} - count(*) OVER {delay})"
        frauds = f"(sum(CAST(is_fraud AS INT)) OVER {delayed} - sum(CAST(is_fraud AS INT)) OVER {delay})"
        terminal += [
            f"{count} AS terminal_nb_tx_{n}d",
            f"CASE WHEN {count} > 0 THEN {frauds} / {count} ELSE 0 END AS terminal_risk_{n}d",
        ]
    sql = BASELINE_SQL.format(customer=",\n        ".join(customer), terminal=",\n        ".join(terminal))
    table = duckdb.sql(sql).fetch_arrow_table()
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}


BASELINE_INPUTS = (
    "amount",
    "is_night",
    "is_weekend",
    *[f"customer_{k}_{n}d" for n in (1, 7, 30) for k in ("nb_tx", "avg_amount")],
    *[f"terminal_{k}_{n}d" for n in (1, 7, 30) for k in ("nb_tx", "risk")],
)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-4, iterations: int = 50) -> np.ndarray:
    """Logistic regression by Newton's method (intercept first), on already standardized ``x``."""
    x = np.column_stack([np.ones(len(x)), x])
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 0.5 * (1.0 + np.tanh(0.5 * (x @ w)))
        gradient = x.T @ (p - y) + l2 * len(y) * np.r_[0.0, w[1:]]
        hessian = (x * (p * (1 - p))[:, None]).T @ x + l2 * len(y) * np.diag(np.r_[0.0, np.ones(len(w) - 1)])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.max(np.abs(step)) < 1e-9:
            break
    return w


def baseline_metrics(spark, lake: LakeResource, window: TrainingWindow, first_fraud: dict) -> dict:
    days = days_between(window.train_start - timedelta(days=DELAY_DAYS + 30), window.test_end)
    silver = read_days(spark, lake.silver_transactions, days, SILVER_SCHEMA).select(
        "transaction_id", "customer_id", "terminal_id", "event_time", "amount", "is_fraud", "date"
    )
    features = baseline_features(silver.withColumn("amount", silver["amount"].cast("double")).toArrow())
    in_days = np.array(features["date"].tolist())
    train = (in_days >= window.train_start) & (in_days <= window.train_end)
    test = (in_days >= window.test_start) & (in_days <= window.test_end)
    x = np.column_stack([features[name].astype(float) for name in BASELINE_INPUTS])
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    x = (x - mean) / np.where(std > 0, std, 1.0)
    w = fit_logistic(x[train], features["label"][train])
    scores = 0.5 * (1.0 + np.tanh(0.5 * (np.column_stack([np.ones(len(x)), x]) @ w)))
    scored = {
        "probability": scores[test],
        "label": features["label"][test],
        "date": in_days[test],
        "customer_id": features["customer_id"][test],
        "amount": features["amount"][test],
    }
    return protocol_metrics(scored, 0.5, 100, first_fraud, DELAY_DAYS)


def ablation(spark, lake: LakeResource, window: TrainingWindow, first_fraud: dict, candidate: Candidate) -> dict:
    """The chosen candidate refitted on nested feature sets: what each group adds, under the protocol."""
    read = lambda days: read_days(spark, lake.transaction_features, days, GOLD_SCHEMA)  # noqa: E731
    train, test = labelled(read(window.train_days)).cache(), labelled(read(window.test_days)).cache()
    table = {}
    for name, features in ABLATION.items():
        model = build_pipeline(candidate, features).fit(train)
        metrics = protocol_metrics(scored_arrays(model, test), 0.5, 100, first_fraud, DELAY_DAYS)["protocol"]
        table[name] = {k: round(metrics[k], 4) for k in HEADLINE}
        print(f"    {name:40s} " + "  ".join(f"{k} {table[name][k]:.3f}" for k in HEADLINE))
    train.unpersist()
    test.unpersist()
    return table


def headline(metrics: dict) -> dict:
    return {part: {k: round(metrics[part][k], 4) for k in HEADLINE} for part in ("protocol", "all_rows")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--lake", type=Path, help="keep the lakes here (and reuse their gold on a re-run)")
    args = parser.parse_args()
    first = date(2026, 1, 1)
    days = days_between(first, first + timedelta(days=args.days - 1))
    window = TrainingWindow.ending_on(days[-1], TRAIN_DAYS, DELAY_DAYS, TEST_DAYS)
    root = args.lake or Path(tempfile.mkdtemp(prefix="model-quality-"))
    print(f"{args.days} days from {first}, {args.customers} customers; split {window}")

    schemas = {}
    for schema in ("minimal", "full"):
        print(f"{schema} schema")
        resources = build_gold(root / schema, days, args.customers, minimal=schema == "minimal")
        spark = resources["spark"].spark_session
        lake = resources["lake"]
        model = train_project_model(resources, window)
        gold = read_days(spark, lake.transaction_features, days_between(first, window.test_end), GOLD_SCHEMA)
        first_fraud = first_fraud_days(gold)
        baseline = baseline_metrics(spark, lake, window, first_fraud)
        chosen = Candidate(model["candidate"], model["algorithm"], model["params"])
        print(f"  ablation ({chosen.name}, protocol):")
        schemas[schema] = {
            "baseline": headline(baseline),
            "model": {**headline(model), "candidate": model["candidate"]},
            "ablation": ablation(spark, lake, window, first_fraud, chosen),
        }
        for who in ("baseline", "model"):
            print(
                f"  {who:9s} protocol " + "  ".join(f"{k} {schemas[schema][who]['protocol'][k]:.3f}" for k in HEADLINE)
            )
        schemas[schema]["model_beats_baseline"] = {
            k: schemas[schema]["model"]["protocol"][k] > schemas[schema]["baseline"]["protocol"][k] for k in HEADLINE
        }

    result = {
        **{k: schemas["minimal"][k] for k in ("baseline", "model", "ablation", "model_beats_baseline")},
        "schemas": schemas,
        "split": {
            "train": [str(window.train_start), str(window.train_end)],
            "delay_days": DELAY_DAYS,
            "test": [str(window.test_start), str(window.test_end)],
        },
        "bank": {"days": args.days, "customers": args.customers, "first_day": str(first)},
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
