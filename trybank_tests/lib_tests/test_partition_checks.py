"""Per-day counts for the checks: by an Observation while a write reads its rows, or by a read of the days."""

import random
from datetime import date, timedelta

from pyspark.sql import Observation
from pyspark.sql import functions as F

from trybank_assets.lib.partition_checks import (
    collect_days,
    count_by_day,
    counted_by_day,
    listed_by_day,
    rows_by_day,
)

FIRST = date(2025, 9, 1)


def test_per_day_counts_are_exact_over_many_partitions_and_a_year_of_days(spark):
    rng = random.Random(3)
    days = [FIRST + timedelta(days=i) for i in range(366)]
    rows = [(d, rng.random() < 0.1) for d in days for _ in range(rng.choice([0, 1, 2, rng.randint(3, 400)]))]
    rng.shuffle(rows)
    df = spark.createDataFrame(rows, "date date, flagged boolean").repartition(7)

    observed = Observation("per_day")
    watched = df.observe(observed, *count_by_day(days, "rows"), collect_days("flagged", F.col("flagged")))
    watched.write.format("noop").mode("overwrite").save()

    expected_rows = dict.fromkeys(days, 0)
    expected_flagged = dict.fromkeys(days, 0)
    for day, flagged in rows:
        expected_rows[day] += 1
        expected_flagged[day] += flagged
    assert counted_by_day(observed.get, days, "rows") == expected_rows
    assert listed_by_day(observed.get, days, "flagged") == expected_flagged
    assert rows_by_day(df) == {d: n for d, n in expected_rows.items() if n}


def test_count_by_day_of_no_rows_is_zero_for_every_day(spark):
    days = [FIRST, FIRST + timedelta(days=1)]
    observed = Observation("none")
    empty = spark.createDataFrame([], "date date")
    watched = empty.observe(observed, *count_by_day(days, "rows"), collect_days("flagged", F.lit(True)))
    watched.write.format("noop").mode("overwrite").save()
    zero = {FIRST: 0, FIRST + timedelta(days=1): 0}
    assert counted_by_day(observed.get, days, "rows") == listed_by_day(observed.get, days, "flagged") == zero
