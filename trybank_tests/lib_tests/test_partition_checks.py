"""Per-day figures for the checks: observed while a write reads its rows, or by a read of the days."""

import itertools
import random
from datetime import date, timedelta

from pyspark.sql import Observation
from pyspark.sql import functions as F

from trybank_assets.lib.partition_checks import (
    collect_days,
    day_fingerprint,
    fingerprint_matches,
    listed_by_day,
    rows_by_day,
)

FIRST = date(2025, 9, 1)


def test_the_day_fingerprint_matches_the_exact_per_day_account_and_no_other(spark):
    rng = random.Random(3)
    days = [FIRST + timedelta(days=i) for i in range(366)]
    rows = [(d, rng.random() < 0.1) for d in days for _ in range(rng.choice([0, 1, 2, rng.randint(3, 400)]))]
    rng.shuffle(rows)
    df = spark.createDataFrame(rows, "date date, flagged boolean").repartition(7)

    observed = Observation("per_day")
    watched = df.observe(observed, *day_fingerprint("rows", F.lit(True)), collect_days("flagged", F.col("flagged")))
    watched.write.format("noop").mode("overwrite").save()

    expected_rows = dict.fromkeys(days, 0)
    expected_flagged = dict.fromkeys(days, 0)
    for day, flagged in rows:
        expected_rows[day] += 1
        expected_flagged[day] += flagged
    got = observed.get
    assert fingerprint_matches(got, "rows", expected_rows)
    assert listed_by_day(got, days, "flagged") == expected_flagged
    assert rows_by_day(df) == {d: n for d, n in expected_rows.items() if n}

    busy = [d for d in days if expected_rows[d] > 3]
    # A row moved to the next day, or between any two days, is seen.
    for first, second in [*itertools.pairwise(busy), *(rng.sample(busy, 2) for _ in range(2000))]:
        moved = expected_rows | {first: expected_rows[first] - 1, second: expected_rows[second] + 1}
        assert not fingerprint_matches(got, "rows", moved)
    assert not fingerprint_matches(got, "rows", expected_rows | {busy[0]: expected_rows[busy[0]] - 1})
    assert not fingerprint_matches(got, "rows", expected_rows | {busy[0]: expected_rows[busy[0]] + 1})


def test_the_day_fingerprint_counts_only_the_rows_asked_for_and_no_rows_match_nothing(spark):
    days = [FIRST, FIRST + timedelta(days=1)]
    rows = spark.createDataFrame([(FIRST, True), (FIRST, False), (days[1], False)], "date date, counted boolean")
    observed = Observation("some")
    rows.observe(observed, *day_fingerprint("rows", F.col("counted"))).write.format("noop").mode("overwrite").save()
    assert fingerprint_matches(observed.get, "rows", {FIRST: 1, days[1]: 0})
    assert not fingerprint_matches(observed.get, "rows", {FIRST: 2, days[1]: 1})

    observed = Observation("none")
    empty = spark.createDataFrame([], "date date")
    watched = empty.observe(observed, *day_fingerprint("rows", F.lit(True)), collect_days("flagged", F.lit(True)))
    watched.write.format("noop").mode("overwrite").save()
    zero = {FIRST: 0, FIRST + timedelta(days=1): 0}
    assert fingerprint_matches(observed.get, "rows", zero)
    assert listed_by_day(observed.get, days, "flagged") == zero
