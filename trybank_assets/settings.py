"""Every knob of the lakehouse, read once from ``TRYBANK_*`` environment variables.

The defaults are the embedded single machine: local Spark, files under ``data_lake/``.
A cluster is a change of ``TRYBANK_SPARK_MASTER`` (``spark://…``) or ``TRYBANK_SPARK_REMOTE``
(Spark Connect ``sc://…``), never a change of code.
"""

from datetime import date
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class TrybankSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRYBANK_", extra="ignore")

    lake_root: Path = Field(
        default=PROJECT_ROOT / "data_lake",
        description="Root of the lake: bronze/ silver/ gold/ online/ predictions/ models/.",
    )
    spark_master: str = Field(default="local[*]", description="Spark master URL (local[*], spark://host:7077).")
    spark_remote: str | None = Field(
        default=None, description="Spark Connect URL (sc://host:15002); wins over spark_master."
    )
    spark_connect_token: SecretStr | None = Field(
        default=None,
        description=(
            "Token `trybank spark-server` requires of its clients; they send it in TRYBANK_SPARK_REMOTE "
            "(sc://localhost:15002/;token=…)."
        ),
    )
    spark_driver_memory: str = "2g"
    spark_driver_java_options: str = Field(
        default="-XX:+UseParallelGC",
        description=(
            "JVM options of a local Spark driver, whose threads run every task (spark.driver.extraJavaOptions). "
            "The parallel collector suits batch work on few cores: G1's concurrent marking and write barriers "
            "take CPU from the tasks."
        ),
    )
    spark_shuffle_partitions: int = Field(default=4, ge=1)
    delta_vacuum_retention_hours: int = Field(
        default=168,
        ge=0,
        description=(
            "VACUUM deletes Delta files unreferenced for this long; a reader of an older table version (a long "
            "query, time travel) needs its files for as long as it runs."
        ),
    )
    partitions_start: date = Field(
        default=date(2026, 1, 1), description="First daily partition (UTC event date) of every asset."
    )
    simulator_enabled: bool = Field(
        default=False,
        description=(
            "Demo only: add the simulated_transactions asset, which writes synthetic source=simulator files "
            "into bronze. Off, nothing in the lake is invented (`scripts/up.sh` turns it on)."
        ),
    )
    automation_enabled: bool = Field(
        default=False,
        description=(
            "Run the declarative automation (trybank_assets/automation.py): the daily chain at 00:30 UTC, the "
            "online store after its aggregates, late bronze files re-materialized, weekly retraining, Delta "
            "maintenance at 04:00 UTC. Off, nothing starts on its own."
        ),
    )
    import_workers: int | None = Field(
        default=None,
        ge=1,
        description="Processes `trybank ingest` converts a file's rows in (from its second batch of 65,536); unset: "
        "one per core.",
    )
    simulator_seed: int = 42
    simulator_customers: int = Field(default=3000, ge=10)

    api_key: SecretStr | None = Field(
        default=None, description="When set, write and admin endpoints require it in the X-API-Key header."
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_max_body_bytes: int = Field(default=1_000_000, ge=1024)
    api_max_batch: int = Field(default=1000, ge=1)
    api_max_future_seconds: int = Field(default=300, ge=0, description="How far ahead of the clock event_time may be.")
    api_max_lateness_days: float = Field(
        default=7, gt=0, description="How old an event_time the API still accepts (older days are already built)."
    )
    api_opentelemetry: bool = Field(
        default=False,
        description=(
            "FastAPI's OpenTelemetry bridge (traces, metrics, logs to configured OTel providers); off by "
            "default, the API exports Prometheus metrics on /metrics. On, /predict leaves its fast path and "
            "takes the full middleware stack so that it is traced."
        ),
    )
    model_poll_seconds: float = Field(default=1.0, gt=0, description="How often serving checks models/.../current.")
    prediction_flush_rows: int = Field(default=1000, ge=1, description="Rows that wake the prediction-log writer.")
    prediction_flush_seconds: float = Field(default=2.0, gt=0, description="Longest a prediction waits in memory.")
    prediction_segment_seconds: float = Field(
        default=60.0, gt=0, description="Age at which a prediction-log file is published (one file per minute)."
    )
    prediction_max_open_files: int = Field(
        default=32, ge=1, description="Prediction-log segments open at once; the least recently written is published."
    )
    online_feature_cache_size: int = Field(
        default=100_000, ge=1, description="(key, day) sums of the online store cached per customers and terminals."
    )
    store_max_age_days: float | None = Field(
        default=None,
        gt=0,
        description="Serving refuses an online store whose as_of is older than this many days (unset: any age).",
    )
    api_protect_ops: bool = Field(default=False, description="Put /metrics and /ready behind the API key too.")
    api_keep_alive_seconds: int = Field(default=5, ge=1, description="Idle time before a keep-alive connection closes.")
    api_header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Time a client has to send a request's headers, from its first byte."
    )
    api_body_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Time a client has to send a request's body, after its headers."
    )

    @model_validator(mode="after")
    def _remote_or_master(self) -> "TrybankSettings":
        if self.spark_remote is not None and not self.spark_remote.startswith("sc://"):
            raise ValueError(f"TRYBANK_SPARK_REMOTE must start with sc://, got {self.spark_remote!r}")
        return self


@lru_cache(maxsize=1)
def get_settings() -> TrybankSettings:
    return TrybankSettings()
