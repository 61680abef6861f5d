"""The serving-time feature store, built from the daily aggregates."""

from datetime import date, timedelta

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from dagster_pyspark import LazyPySparkResource
from pydantic import Field, field_validator

from trybank_assets.assets.aggregates import CUSTOMER_AGGREGATES_SCHEMA, TERMINAL_AGGREGATES_SCHEMA
from trybank_assets.automation import ONLINE_STORE, ONLINE_STORE_FRESHNESS
from trybank_assets.features import TERMINAL_HABIT_DAYS, TERMINAL_LOOKBACK_DAYS
from trybank_assets.lib.spark_tables import day_range, read_days
from trybank_assets.online_store import write_store
from trybank_assets.partitions import check_iso_day
from trybank_assets.resources.lake import LakeResource


class OnlineStoreConfig(Config):
    as_of: str | None = Field(
        None, description="Last day (YYYY-MM-DD) in the store; default: the latest aggregated day."
    )

    check_day = field_validator("as_of")(check_iso_day)


@asset(
    deps=["customer_daily_aggregates", "terminal_daily_aggregates"],
    group_name="online",
    automation_condition=ONLINE_STORE,
    freshness_policy=ONLINE_STORE_FRESHNESS,
    code_version="2",
    owners=["team:fraud-data-engineering"],
    tags={"domain": "fraud", "layer": "online"},
    kinds={"spark", "sqlite"},
    description=(
        f"Online feature store: the last {TERMINAL_LOOKBACK_DAYS} days of customer and terminal daily aggregates "
        f"up to the latest materialized day, and the latest day in the last {TERMINAL_HABIT_DAYS} each customer "
        "used each terminal; one SQLite file under online/ swapped in atomically. Serving adds the day's stream "
        "of transactions on top to compute features exactly as gold does."
    ),
)
def online_customer_state(
    context: AssetExecutionContext, config: OnlineStoreConfig, spark: LazyPySparkResource, lake: LakeResource
) -> MaterializeResult:
    session = spark.spark_session
    as_of = date.fromisoformat(config.as_of) if config.as_of else day_range(session, lake.customer_daily_aggregates)[1]
    if as_of is None:
        raise ValueError("no customer_daily_aggregates partition yet: materialize the daily assets first")
    days = [as_of - timedelta(days=i) for i in range(TERMINAL_LOOKBACK_DAYS)]
    customers = read_days(session, lake.customer_daily_aggregates, days, CUSTOMER_AGGREGATES_SCHEMA).collect()
    terminals = read_days(session, lake.terminal_daily_aggregates, days, TERMINAL_AGGREGATES_SCHEMA).collect()
    last_used: dict[tuple[str, str], int] = {}
    for r in customers:
        day = r["date"].toordinal()
        if (as_of - r["date"]).days < TERMINAL_HABIT_DAYS:
            for terminal_id in r["terminal_ids"] or ():  # null on days aggregated before the column existed
                key = (r["customer_id"], terminal_id)
                last_used[key] = max(day, last_used.get(key, day))
    n_customers, n_terminals, n_pairs = write_store(
        lake.online_store,
        as_of,
        (
            (
                r["customer_id"],
                r["date"].toordinal(),
                r["txn_count"],
                r["amount_cents_sum"],
                r["amount_cents_sq_sum"],
                r["international_count"],
                r["last_event_us"],
            )
            for r in customers
        ),
        (
            (r["terminal_id"], r["date"].toordinal(), r["txn_count"], r["fraud_count"], r["amount_cents_sum"])
            for r in terminals
        ),
        ((customer_id, terminal_id, day) for (customer_id, terminal_id), day in last_used.items()),
    )
    context.log.info(
        f"online store as of {as_of}: {n_customers} customer-days, {n_terminals} terminal-days, "
        f"{n_pairs} customer-terminal pairs"
    )
    return MaterializeResult(
        metadata={
            "as_of": as_of.isoformat(),
            "customer_days": n_customers,
            "terminal_days": n_terminals,
            "customer_terminal_pairs": n_pairs,
            "dagster/row_count": n_customers + n_terminals + n_pairs,
            "path": MetadataValue.path(str(lake.online_store)),
        }
    )
