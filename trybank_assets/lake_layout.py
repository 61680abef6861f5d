"""Where each dataset lives in the lake (no Dagster import: serving and the CLI use it too)."""

from datetime import date
from pathlib import Path


def day_dir(table: Path, day: date) -> Path:
    return table / f"date={day.isoformat()}"


def earliest_day(folder: Path) -> date | None:
    """The oldest ``date=`` folder of raw files (bronze), or None when it has none.

    Not for the Delta tables: their folders also hold files of old and aborted versions
    (``lib/spark_tables.day_range`` reads their days from the Delta log).
    """
    days = sorted(p.name.removeprefix("date=") for p in folder.glob("date=*") if p.is_dir())
    return date.fromisoformat(days[0]) if days else None


class LakePaths:
    """Layout of the lake under ``self.root``; mixed into the Dagster resource and ``LakeLayout``."""

    root: str

    @property
    def path(self) -> Path:
        return Path(self.root)

    @property
    def bronze_transactions(self) -> Path:
        return self.path / "bronze" / "transactions"

    def bronze_day(self, day: date) -> Path:
        return day_dir(self.bronze_transactions, day)

    def bronze_source_dir(self, day: date, source: str) -> Path:
        return self.bronze_day(day) / f"source={source}"

    def simulated_bronze_file(self, day: date) -> Path:
        """The simulator's one file per day, rewritten whole (and identical) on every run."""
        return self.bronze_source_dir(day, "simulator") / "part-00000.jsonl"

    @property
    def silver_transactions(self) -> Path:
        return self.path / "silver" / "transactions"

    @property
    def customer_daily_aggregates(self) -> Path:
        return self.path / "gold" / "customer_daily_aggregates"

    @property
    def terminal_daily_aggregates(self) -> Path:
        return self.path / "gold" / "terminal_daily_aggregates"

    @property
    def transaction_features(self) -> Path:
        return self.path / "gold" / "transaction_features"

    @property
    def prediction_log(self) -> Path:
        return self.path / "gold" / "prediction_log"

    @property
    def online_store(self) -> Path:
        return self.path / "online" / "customer_state.sqlite"

    @property
    def api_ingest_index(self) -> Path:
        """The transaction_ids the API accepted lately (SQLite), for idempotent retries."""
        return self.path / "bronze" / "api_ingest_index.sqlite"

    @property
    def predictions(self) -> Path:
        return self.path / "predictions"

    @property
    def fraud_model_registry(self) -> Path:
        return self.path / "models" / "fraud_model"


class LakeLayout(LakePaths):
    def __init__(self, root: str | Path) -> None:
        self.root = str(root)
