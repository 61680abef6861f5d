"""The code location: every asset, check, resource, job, schedule and sensor of the lakehouse.

When things run by themselves is declared on the assets (automation conditions) and carried out by
the automation sensors (``automation.py``); the lake's maintenance has a schedule (``maintenance.py``).
``TRYBANK_AUTOMATION_ENABLED`` turns them on.
"""

from dagster import Definitions, in_process_executor

from trybank_assets.assets.aggregates import customer_daily_aggregates, terminal_daily_aggregates
from trybank_assets.assets.bronze import bronze_transactions
from trybank_assets.assets.demo import simulated_transactions
from trybank_assets.assets.gold import gold_transaction_features
from trybank_assets.assets.model import deployed_fraud_model, fraud_model
from trybank_assets.assets.monitoring import prediction_log
from trybank_assets.assets.online import online_customer_state
from trybank_assets.assets.silver import silver_transactions
from trybank_assets.automation import automation_sensor, late_bronze_files
from trybank_assets.jobs import daily_lakehouse_job, daily_monitoring_job, model_job, online_store_job
from trybank_assets.maintenance import lake_maintenance_job, lake_maintenance_schedule
from trybank_assets.resources import build_resources
from trybank_assets.settings import get_settings

settings = get_settings()

defs = Definitions(
    assets=[
        *([simulated_transactions] if settings.simulator_enabled else []),
        bronze_transactions,
        silver_transactions,
        customer_daily_aggregates,
        terminal_daily_aggregates,
        gold_transaction_features,
        fraud_model,
        deployed_fraud_model,
        online_customer_state,
        prediction_log,
    ],
    resources=build_resources(settings),
    jobs=[daily_lakehouse_job, online_store_job, daily_monitoring_job, model_job, lake_maintenance_job],
    schedules=[lake_maintenance_schedule],
    sensors=[automation_sensor, late_bronze_files],
    # One process and so one JVM per run: a step per subprocess would start Spark (~7 s) per step.
    executor=in_process_executor,
)
