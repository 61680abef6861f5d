"""Gold's intra-day windows over event time: the customer's and the terminal's velocity, and whether the
customer already used the terminal earlier today.

Range windows over ``event_us`` within one (key, UTC day), ending one microsecond before the transaction:
events at the same instant never see each other, and a window reaches back at most to 00:00 UTC, as
``features.VELOCITY_WINDOWS`` defines them. Counts and integer cent sums, so the result is exact.
"""

from pyspark.sql import Column, Window
from pyspark.sql import functions as F

from trybank_assets.features import VELOCITY_WINDOWS

MICROS_PER_SECOND = 1_000_000


def velocity_columns(who: str) -> list[Column]:
    """Over rows with ``{who}_id`` (customer or terminal), date, event_us and amount_cents: for each velocity
    window suffix S, ``{who}_count_S`` and ``{who}_cents_S``."""
    cents = F.col("amount_cents")
    by_time = Window.partitionBy(f"{who}_id", "date").orderBy("event_us")
    columns = []
    for suffix, seconds, _ in VELOCITY_WINDOWS:
        frame = by_time.rangeBetween(-seconds * MICROS_PER_SECOND, -1)
        columns.append(F.count(F.lit(1)).over(frame).alias(f"{who}_count_{suffix}"))
        columns.append(F.coalesce(F.sum(cents).over(frame), F.lit(0)).alias(f"{who}_cents_{suffix}"))
    return columns


def earlier_at_terminal_today() -> Column:
    """The customer's transactions at the same terminal earlier the same UTC day."""
    earlier = (
        Window.partitionBy("customer_id", "terminal_id", "date")
        .orderBy("event_us")
        .rangeBetween(Window.unboundedPreceding, -1)
    )
    return F.count(F.lit(1)).over(earlier)
