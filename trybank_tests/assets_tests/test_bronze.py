from datetime import date

from dagster import materialize

from trybank_assets.assets.bronze import bronze_transactions
from trybank_assets.resources import build_resources
from trybank_assets.resources.lake import LakeResource
from trybank_tests.conftest import range_tags, small_bank_settings


def test_a_range_run_counts_each_day_and_logs_once_naming_the_days_without_files(lake_root, instance):
    lake = LakeResource(root=str(lake_root))
    counts = {date(2026, 3, 1): {"import-a": 2, "api": 1}, date(2026, 3, 3): {"import-a": 3}}
    for day, sources in counts.items():
        for source, rows in sources.items():
            folder = lake.bronze_source_dir(day, source)
            folder.mkdir(parents=True, exist_ok=True)
            # The last line is still being appended: not counted.
            (folder / "part-0.jsonl").write_text('{"transaction_id": "x"}\n' * rows + '{"transaction_')

    result = materialize(
        [bronze_transactions],
        resources=build_resources(small_bank_settings(lake_root)),
        tags=range_tags("2026-03-01", "2026-03-03"),
        instance=instance,
    )

    assert result.success
    by_day = {
        m.partition: m.metadata["dagster/row_count"].value
        for m in result.asset_materializations_for_node("bronze_transactions")
    }
    assert by_day == {"2026-03-01": 3, "2026-03-02": 0, "2026-03-03": 3}
    logs = [
        e.user_message
        for e in instance.all_logs(result.run_id)
        if e.dagster_event is None and e.step_key == "bronze_transactions"
    ]
    assert logs == ["bronze 2026-03-01..2026-03-03: {'api': 1, 'import-a': 5}; days without files: ['2026-03-02']"]
