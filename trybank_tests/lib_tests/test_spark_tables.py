"""The lake's Delta table I/O: exact day replacement in one commit, committed days."""

from datetime import date, timedelta

import pytest
from pyspark.errors import AnalysisException
from pyspark.sql.types import DateType, LongType, StructField, StructType

from trybank_assets.lib.spark_tables import day_range, days_with_rows, read_commit, read_days, replace_days

SCHEMA = StructType([StructField("n", LongType()), StructField("date", DateType())])
D1, D2, D3 = (date(2026, 3, 1) + timedelta(days=i) for i in range(3))


def _rows(spark, *days: date, per_day: int = 3):
    return spark.createDataFrame([(i, d) for d in days for i in range(per_day)], SCHEMA)


def _counts(spark, table) -> dict[date, int]:
    days = read_days(spark, table, [D1, D2, D3], SCHEMA).groupBy("date").count().collect()
    return {r["date"]: r["count"] for r in days}


def test_a_range_write_replaces_exactly_its_days_and_empties_those_without_rows(spark, tmp_path):
    table = tmp_path / "t"
    assert (read_days(spark, table, [D1], SCHEMA).count(), day_range(spark, table)) == (0, (None, None))
    first = replace_days(_rows(spark, D1, D2, D3), table, [D1, D2, D3])
    assert (first.version, first.operation, first.rows_by_day) == (0, "WRITE", {D1: 3, D2: 3, D3: 3})

    second = replace_days(_rows(spark, D1, per_day=5), table, [D1, D2])
    assert (second.version, second.rows_by_day) == (1, {D1: 5, D2: 0})
    assert _counts(spark, table) == {D1: 5, D3: 3}
    assert days_with_rows(spark, table) == [D1, D3]
    assert days_with_rows(spark, table, among=[D2, D3]) == [D3] and days_with_rows(spark, table, among=[]) == []
    assert day_range(spark, table) == (D1, D3)
    assert read_days(spark, table, [D2], SCHEMA, version=0).count() == 3  # the old version stays readable


def test_a_row_outside_the_run_days_fails_the_write_and_commits_nothing(spark, tmp_path):
    table = tmp_path / "t"
    replace_days(_rows(spark, D1), table, [D1])
    with pytest.raises(AnalysisException, match="DELTA_REPLACE_WHERE_MISMATCH"):
        replace_days(_rows(spark, D1, D2), table, [D1])
    assert spark.sql(f"DESCRIBE HISTORY delta.`{table}`").count() == 1
    assert _counts(spark, table) == {D1: 3}


def test_a_commits_rows_read_from_its_files_are_the_versions_rows_of_its_days(spark, tmp_path):
    table = tmp_path / "lake[1]" / "t"  # glob characters in the path are read as themselves
    replace_days(_rows(spark, D1, D2, D3), table, [D1, D2, D3])
    commit = replace_days(_rows(spark, D1, D2, per_day=5), table, [D1, D2])

    rows = sorted(tuple(r) for r in read_commit(spark, commit, SCHEMA).collect())
    assert rows == sorted(tuple(r) for r in read_days(spark, table, [D1, D2], SCHEMA, version=commit.version).collect())
    assert {d: sum(1 for _, day in rows if day == d) for d in (D1, D2)} == {D1: 5, D2: 5}
    later = replace_days(_rows(spark, D1, per_day=2), table, [D1])
    assert read_commit(spark, commit, SCHEMA).count() == 10  # still the commit's rows after a later one
    assert read_commit(spark, later, SCHEMA).select("date").distinct().collect() == [(D1,)]
