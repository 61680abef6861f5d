"""Sensors: what runs because another run finished."""

from dagster import DagsterRunStatus, DefaultSensorStatus, RunRequest, RunStatusSensorContext, run_status_sensor

from trybank_assets.jobs import daily_lakehouse_job, online_store_job


@run_status_sensor(
    run_status=DagsterRunStatus.SUCCESS,
    monitored_jobs=[daily_lakehouse_job],
    request_job=online_store_job,
    # It only reacts to successful runs of the daily job (whose schedule is off by default), so it can be on.
    default_status=DefaultSensorStatus.RUNNING,
    description="After each successful daily_lakehouse_job run, rebuild online_customer_state for serving.",
)
def refresh_online_store(context: RunStatusSensorContext) -> RunRequest:
    return RunRequest(run_key=context.dagster_run.run_id)
