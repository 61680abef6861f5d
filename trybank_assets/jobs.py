"""Jobs for running a part of the graph by hand (or from a script); when they run by themselves is
the assets' automation conditions' business (``automation.py``)."""

from dagster import AssetSelection, define_asset_job

# "demo" holds the simulator, defined only when TRYBANK_SIMULATOR_ENABLED=true.
LAKEHOUSE_GROUPS = ("demo", "bronze", "silver", "gold")

daily_lakehouse_job = define_asset_job(
    "daily_lakehouse_job",
    selection=AssetSelection.groups(*LAKEHOUSE_GROUPS),
    description=(
        "Bronze → silver → daily aggregates → gold features for one UTC day (or a range, in one run); "
        "in the demo, the simulator's files first."
    ),
)

online_store_job = define_asset_job(
    "online_store_job",
    selection=AssetSelection.assets("online_customer_state"),
    description="Rebuild the serving store from the latest daily aggregates; the API picks it up within a second.",
)

daily_monitoring_job = define_asset_job(
    "daily_monitoring_job",
    selection=AssetSelection.groups("monitoring"),
    description="The API's predictions of one UTC day as a table, with drift checks against the model's test window.",
)

model_job = define_asset_job(
    "model_job",
    selection=AssetSelection.assets("fraud_model", "deployed_fraud_model"),
    description="Train on the latest gold window and promote the new version if it passes the promotion gate.",
)
