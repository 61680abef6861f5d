"""Asset check results per day, also when one run materializes a range of days.

Dagster attaches an ``AssetCheckResult`` to a partition only when its step materializes exactly one;
a single-run backfill's results would land on no day, so the UI could not say which day failed. The
daily assets' checks therefore declare the daily partitions (``daily_check``) and each asset yields one
``AssetCheckEvaluation`` per check and day of its run, aimed at that day's materialization, after its
``MaterializeResult``; then each check's empty output, as Dagster does for an ``AssetCheckResult``.
The figures behind them are counted per day: in the aggregations the checks run anyway, or by an
``Observation`` while the write reads its input (``count_by_day``).
"""

from collections.abc import Iterator, Mapping
from datetime import date

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetRecordsFilter,
    MaterializeResult,
    Output,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from trybank_assets.partitions import daily_partitions

# What a daily asset's step yields: its materialization, then its checks' evaluations per day.
DailyAssetEvents = Iterator[MaterializeResult | AssetCheckEvaluation | Output]


def daily_check(name: str, asset: str, description: str) -> AssetCheckSpec:
    """A check of a daily asset, evaluated once per day the asset's run materializes."""
    return AssetCheckSpec(name, asset=asset, description=description, partitions_def=daily_partitions)


def count_by_day(days: list[date], name: str, condition: Column | None = None) -> list[Column]:
    """Observation aggregates: each day's rows (those meeting ``condition``), read back by ``counted_by_day``."""
    of_day = [F.col("date") == F.lit(d) for d in days]
    return [
        F.count_if(day if condition is None else day & condition).alias(f"{name}_{d.isoformat()}")
        for d, day in zip(days, of_day, strict=True)
    ]


def counted_by_day(observed: Mapping[str, int], days: list[date], name: str) -> dict[date, int]:
    return {d: observed[f"{name}_{d.isoformat()}"] for d in days}


def repeated_ids_by_day(df: DataFrame) -> dict[date, int]:
    """Rows whose ``transaction_id`` an earlier row of ``df`` already has (on an earlier day, or the same
    one), counted on the day of the repeat: an id sent again the next day fails that day's check."""
    first = Window.partitionBy("transaction_id").orderBy("date")
    repeats = (
        df.select("transaction_id", "date")
        .withColumn("_nth", F.row_number().over(first))
        .where("_nth > 1")
        .groupBy("date")
        .count()
        .collect()
    )
    return {r["date"]: r["count"] for r in repeats}


def evaluations_by_day(
    context: AssetExecutionContext, results_by_day: Mapping[date, list[AssetCheckResult]]
) -> Iterator[AssetCheckEvaluation | Output]:
    """Each day's results as evaluations of that day, aimed at the day's materialization by this run
    (yielded after the ``MaterializeResult``, so those materializations are stored); then the checks'
    outputs, which a step must yield."""
    asset_key = context.asset_key
    keys = [d.isoformat() for d in results_by_day]
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=keys), limit=len(keys)
    ).records
    targets = {
        r.partition_key: AssetCheckEvaluationTargetMaterializationData(
            storage_id=r.storage_id, run_id=r.run_id, timestamp=r.timestamp
        )
        for r in records
        if r.run_id == context.run.run_id
    }
    for day, results in results_by_day.items():
        for result in results:
            yield AssetCheckEvaluation(
                asset_key=asset_key,
                check_name=result.check_name,
                passed=result.passed,
                metadata=result.metadata,
                severity=result.severity,
                description=result.description,
                partition=day.isoformat(),
                target_materialization_data=targets.get(day.isoformat()),
                blocking=False,
            )
    for output_name in context.assets_def.check_specs_by_output_name:
        yield Output(None, output_name=output_name)
