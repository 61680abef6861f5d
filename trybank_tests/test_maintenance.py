"""The lake maintenance job, run by Dagster on a real Delta table: compaction, vacuum, observations."""

from datetime import date

from dagster import AssetKey, DagsterEventType
from pyspark.sql.types import DateType, LongType, StructField, StructType

from trybank_assets.definitions import defs
from trybank_assets.lib.spark_tables import VACUUM_RETENTION_CONF, read_days, replace_days
from trybank_assets.maintenance import delta_tables, lake_maintenance_job
from trybank_assets.resources import build_resources
from trybank_assets.resources.lake import LakeResource
from trybank_tests.conftest import data_files_on_disk, data_files_referenced, small_bank_settings

SCHEMA = StructType([StructField("n", LongType()), StructField("date", DateType())])
D1, D2 = date(2026, 3, 1), date(2026, 3, 2)


def test_every_maintained_table_belongs_to_an_asset(tmp_path):
    tables = delta_tables(LakeResource(root=str(tmp_path)))
    assert set(tables) <= defs.resolve_asset_graph().get_all_asset_keys()
    assert len(set(tables.values())) == len(tables)


def test_maintenance_job_compacts_vacuums_and_observes_each_table(spark, lake_root, instance):
    settings = small_bank_settings(lake_root).model_copy(update={"delta_vacuum_retention_hours": 0})
    table = lake_root / "gold" / "terminal_daily_aggregates"
    replace_days(spark.createDataFrame([(1, D1), (2, D2)], SCHEMA), table, [D1, D2])
    replace_days(spark.createDataFrame([(3, D1)], SCHEMA), table, [D1])  # D1's first file is now unreferenced
    for n in (4, 5):  # another writer's small appends: D2 holds three files
        spark.createDataFrame([(n, D2)], SCHEMA).write.format("delta").mode("append").save(str(table))
    before = sorted(r["n"] for r in read_days(spark, table, [D1, D2], SCHEMA).collect())
    assert len(data_files_on_disk(table)) == 5
    # Silver's log is damaged: its maintenance fails, the other tables' goes on, and the run fails naming it.
    broken_log = lake_root / "silver" / "transactions" / "_delta_log"
    broken_log.mkdir(parents=True)
    (broken_log / "00000000000000000000.json").write_text("not a Delta commit\n")

    previous = spark.conf.get(VACUUM_RETENTION_CONF)
    try:
        result = lake_maintenance_job.execute_in_process(
            resources=build_resources(settings), instance=instance, raise_on_error=False
        )
    finally:
        spark.conf.set(VACUUM_RETENTION_CONF, previous)

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    assert "silver_transactions" in failure.event_specific_data.error.message
    assert sorted(r["n"] for r in read_days(spark, table, [D1, D2], SCHEMA).collect()) == before == [2, 3, 4, 5]
    # D2's three files compacted into one; VACUUM deleted D1's old file and D2's three.
    assert len(data_files_on_disk(table)) == 2 and data_files_on_disk(table) == data_files_referenced(spark, table)
    observations = [
        e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_OBSERVATION
    ]
    # The other tables of the lake do not exist yet: skipped, not failed; silver's is not observed.
    assert [o.asset_key for o in observations] == [AssetKey("terminal_daily_aggregates")]
    done = {k: v.value for k, v in observations[0].metadata.items() if k != "path"}
    assert done == {"optimize_files_removed": 3, "optimize_files_added": 1, "vacuum_files_deleted": 4}
