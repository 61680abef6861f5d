import subprocess
import sys
from datetime import date

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    Definitions,
    evaluate_automation_conditions,
    in_process_executor,
    materialize,
)

from trybank_assets.assets.gold import GOLD_SCHEMA
from trybank_assets.assets.silver import SILVER_SCHEMA
from trybank_assets.definitions import defs
from trybank_assets.jobs import daily_lakehouse_job, online_store_job
from trybank_assets.lib.spark_tables import read_days
from trybank_assets.resources.lake import LakeResource
from trybank_tests.conftest import DAILY_ASSETS, ONLINE_ASSETS, range_tags

# The asset graph as reviewed: a change to it must show up here.
EXPECTED_GRAPH = {
    "simulated_transactions": ("demo", set()),  # the suite runs the demo (trybank_tests/__init__.py)
    "bronze_transactions": ("bronze", {"simulated_transactions"}),
    "silver_transactions": ("silver", {"bronze_transactions"}),
    "customer_daily_aggregates": ("gold", {"silver_transactions"}),
    "terminal_daily_aggregates": ("gold", {"silver_transactions"}),
    "gold_transaction_features": (
        "gold",
        {"silver_transactions", "customer_daily_aggregates", "terminal_daily_aggregates"},
    ),
    "fraud_model": ("model", {"gold_transaction_features"}),
    "deployed_fraud_model": ("model", {"fraud_model"}),
    "online_customer_state": ("online", {"customer_daily_aggregates", "terminal_daily_aggregates"}),
    "prediction_log": ("monitoring", {"fraud_model"}),
}

EXPECTED_CHECKS = {
    ("silver_transactions", "transaction_id_unique"),
    ("silver_transactions", "keys_not_null"),
    ("silver_transactions", "reconciles_with_bronze"),
    ("customer_daily_aggregates", "counts_match_silver"),
    ("terminal_daily_aggregates", "counts_match_silver"),
    ("gold_transaction_features", "one_row_per_silver_transaction"),
    ("gold_transaction_features", "features_finite"),
    ("gold_transaction_features", "history_complete"),
    ("deployed_fraud_model", "promotion_gate"),
    ("prediction_log", "score_drift"),
    ("prediction_log", "feature_drift"),
    ("prediction_log", "decline_rate"),
}
RANGE_TAGS = range_tags("2026-03-01", "2026-03-03")


def test_definitions_load_without_beta_or_preview_warnings():
    """partitions.py silences the two Dagster warnings the daily assets earn on purpose (pytest ignores them all, so
    this loads the definitions in a process of its own, with those warnings as errors)."""
    load = (
        "import warnings, dagster; "
        "warnings.simplefilter('error', dagster.BetaWarning); warnings.simplefilter('error', dagster.PreviewWarning); "
        "import trybank_assets.definitions"
    )
    loaded = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr[-2000:]


def test_definitions_load_with_the_reviewed_graph():
    graph = defs.resolve_asset_graph()
    actual = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        actual[key.to_user_string()] = (node.group_name, {p.to_user_string() for p in node.parent_keys})
    assert actual == EXPECTED_GRAPH
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert checks == EXPECTED_CHECKS
    for key in graph.get_all_asset_keys():
        assert graph.get(key).description
    partitioned = [a for a in defs.assets if a.partitions_def is not None]
    unpartitioned = {"fraud_model", "deployed_fraud_model", "online_customer_state"}
    assert {a.key.to_user_string() for a in partitioned} == set(EXPECTED_GRAPH) - unpartitioned
    for assets_def in partitioned:
        assert assets_def.backfill_policy is not None
        assert "dagster/column_schema" in assets_def.specs_by_key[assets_def.key].metadata
    assert defs.resolve_job_def("daily_lakehouse_job") is not None
    # Nothing starts by itself unless TRYBANK_AUTOMATION_ENABLED says so.
    for sensor in ("trybank_automation", "late_bronze_files"):
        assert defs.resolve_sensor_def(sensor).default_status.value == "STOPPED"
    assert defs.resolve_schedule_def("lake_maintenance_daily").default_status.value == "STOPPED"
    assert defs.resolve_schedule_def("lake_maintenance_daily").job_name == "lake_maintenance_job"
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.automation_condition is not None, key
        assert node.code_version and node.owners and node.tags.get("layer"), key
    fresh = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).freshness_policy}
    assert fresh == set(EXPECTED_GRAPH) - {"fraud_model", "deployed_fraud_model", "prediction_log"}
    for check_key in graph.asset_check_keys:
        assert graph.get_check_spec(check_key).description, check_key


def _gold_rows(spark, lake: LakeResource, days: list[date]) -> list[tuple]:
    return sorted(tuple(r) for r in read_days(spark, lake.transaction_features, days, GOLD_SCHEMA).collect())


def test_range_materializes_in_one_run_and_a_rerun_gives_the_same_rows(spark, lake_root, resources, instance):
    lake = LakeResource(root=str(lake_root))
    assets = DAILY_ASSETS
    result = materialize(assets, resources=resources, tags=RANGE_TAGS, instance=instance)
    assert result.success
    materialized = {
        (e.materialization.asset_key.to_user_string(), e.materialization.partition)
        for e in result.get_asset_materialization_events()
    }
    days = ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert materialized == {(a.key.to_user_string(), d) for a in DAILY_ASSETS for d in days}
    assert len(instance.get_run_records()) == 1
    # A fresh demo starts clean: history before the lake's first day of data is not a gap.
    failed = [c for c in result.get_asset_check_evaluations() if not c.passed]
    assert not failed, failed

    dates = [date.fromisoformat(d) for d in days]
    # One run, yet each day's materialization carries that day's own figures, not the run's.
    per_day = {
        (e.materialization.asset_key.to_user_string(), e.materialization.partition): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    for d in dates:
        gold_rows = read_days(spark, lake.transaction_features, [d], GOLD_SCHEMA).count()
        silver_rows = read_days(spark, lake.silver_transactions, [d], SILVER_SCHEMA).count()
        assert per_day[("gold_transaction_features", str(d))]["dagster/row_count"].value == gold_rows
        assert per_day[("silver_transactions", str(d))]["dagster/row_count"].value == silver_rows
        assert per_day[("bronze_transactions", str(d))]["dagster/row_count"].value == silver_rows  # all valid
        header, _, *rows = per_day[("gold_transaction_features", str(d))]["preview"].value.splitlines()
        date_at = [c.strip() for c in header.strip("|").split("|")].index("date")
        assert rows and {[c.strip() for c in r.strip("|").split("|")][date_at] for r in rows} == {str(d)}
    # Each day's checks judge that day's figures, recorded on that day and aimed at its materialization.
    evaluations = {
        (c.asset_key.to_user_string(), c.check_name, c.partition): c for c in result.get_asset_check_evaluations()
    }
    daily = {a.key.to_user_string() for a in DAILY_ASSETS}
    assert set(evaluations) == {(a, name, d) for a, name in EXPECTED_CHECKS if a in daily for d in days}
    for d in days:
        rows = {
            a: per_day[(a, d)]["dagster/row_count"].value for a in ("silver_transactions", "gold_transaction_features")
        }
        assert (
            evaluations[("silver_transactions", "reconciles_with_bronze", d)].metadata["silver_rows"].value
            == rows["silver_transactions"]
        )
        for aggregates in ("customer_daily_aggregates", "terminal_daily_aggregates"):
            figures = evaluations[(aggregates, "counts_match_silver", d)].metadata
            assert (
                figures["aggregated_transactions"].value == figures["silver_rows"].value == rows["silver_transactions"]
            )
        gold_check = evaluations[("gold_transaction_features", "one_row_per_silver_transaction", d)]
        assert (
            gold_check.metadata["gold_rows"].value == rows["gold_transaction_features"] == rows["silver_transactions"]
        )
        materialization = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey("gold_transaction_features"), asset_partitions=[d]), limit=1
        ).records[0]
        assert gold_check.target_materialization_data.storage_id == materialization.storage_id
    # Each day of each table is written as one file (all rows are valid: silver's quarantine side has none).
    for asset in (
        "silver_transactions",
        "customer_daily_aggregates",
        "terminal_daily_aggregates",
        "gold_transaction_features",
    ):
        assert per_day[(asset, days[0])]["delta_files_added"].value == len(days), asset
    run_rows = per_day[("gold_transaction_features", days[0])]["run_rows"].value
    assert run_rows == sum(per_day[("gold_transaction_features", d)]["dagster/row_count"].value for d in days)
    before = _gold_rows(spark, lake, dates)
    assert len(before) == len({r[0] for r in before}) > 500
    # The rerun goes through the daily job, as an operator would.
    jobs = Definitions(
        assets=[*DAILY_ASSETS, *ONLINE_ASSETS],
        jobs=[daily_lakehouse_job, online_store_job],
        resources=resources,
        executor=in_process_executor,
    )
    daily_job = jobs.resolve_job_def("daily_lakehouse_job")
    rerun = daily_job.execute_in_process(partition_key="2026-03-02", instance=instance)
    assert rerun.success
    assert _gold_rows(spark, lake, dates) == before
    mats = instance.get_latest_materialization_event(AssetKey("gold_transaction_features"))
    assert mats.dagster_event.partition == "2026-03-02"

    assert jobs.resolve_job_def("online_store_job").execute_in_process(instance=instance).success
    assert lake.online_store.is_file()
    settled = evaluate_automation_conditions(defs=jobs, instance=instance)

    # A backfill from the UI runs as an asset job, not as a job anything could watch: the store's
    # condition sees its parents updated whatever the run, and asks for one rebuild.
    assert materialize(
        DAILY_ASSETS, resources=resources, tags=range_tags("2026-03-02", "2026-03-03"), instance=instance
    ).success
    after_backfill = evaluate_automation_conditions(defs=jobs, instance=instance, cursor=settled.cursor)
    assert after_backfill.get_num_requested(AssetKey("online_customer_state")) == 1
    again = evaluate_automation_conditions(defs=jobs, instance=instance, cursor=after_backfill.cursor)
    assert again.get_num_requested(AssetKey("online_customer_state")) == 0
