"""One local SparkSession for the whole suite; Dagster runs in tests reuse it (getOrCreate)."""

import os
import shutil
from pathlib import Path

import pytest
from dagster import DagsterInstance, RunConfig, materialize
from pyspark.sql import SparkSession

from trybank_assets.assets.model import FraudModelConfig, PromotionConfig
from trybank_assets.assets.online import OnlineStoreConfig
from trybank_assets.definitions import defs
from trybank_assets.jobs import LAKEHOUSE_GROUPS
from trybank_assets.resources import build_resources
from trybank_assets.resources.lake import LakeResource
from trybank_assets.resources.spark import spark_conf
from trybank_assets.settings import TrybankSettings

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

SMALL_BANK_CUSTOMERS = 200


def range_tags(first: object, last: object) -> dict[str, str]:
    """The tags of one run over the daily partitions ``first``..``last`` (dates or ISO strings), as a UI backfill
    of that range under a single-run backfill policy sets them."""
    return {"dagster/asset_partition_range_start": str(first), "dagster/asset_partition_range_end": str(last)}


def small_bank_settings(lake_root: Path) -> TrybankSettings:
    return TrybankSettings(
        lake_root=lake_root,
        simulator_customers=SMALL_BANK_CUSTOMERS,
        spark_shuffle_partitions=2,
        spark_master="local[2]",
    )


def data_files_on_disk(table: Path) -> set[str]:
    """Every Parquet data file in a Delta table's folder, referenced by a version or not."""
    return {str(p) for p in table.rglob("*.parquet") if "_delta_log" not in p.parts}


def data_files_referenced(spark: SparkSession, table: Path) -> set[str]:
    """The data files the table's current version reads."""
    files = spark.read.format("delta").load(str(table)).select("_metadata.file_path").distinct().collect()
    return {r["file_path"].removeprefix("file:") for r in files}


@pytest.fixture(scope="session")
def spark() -> SparkSession:
    builder = SparkSession.builder
    for key, value in spark_conf(small_bank_settings(Path("unused"))).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def lake_root(tmp_path: Path) -> Path:
    return tmp_path / "data_lake"


@pytest.fixture
def resources(lake_root: Path, spark: SparkSession) -> dict:
    return build_resources(small_bank_settings(lake_root))


@pytest.fixture
def instance() -> DagsterInstance:
    with DagsterInstance.ephemeral() as inst:
        yield inst


# 40 days: serving's longest windows (customer 30 days, terminal 37 days back) and the online
# store's 37-day trim are all reached by the last days' transactions.
BANK_FIRST, BANK_LAST = "2026-02-05", "2026-03-16"
MODEL_NAMES = ("fraud_model", "deployed_fraud_model")
DAILY_ASSETS = [a for a in defs.assets if a.group_names_by_key[a.key] in LAKEHOUSE_GROUPS]
MODEL_ASSETS = [a for a in defs.assets if a.key.path[0] in MODEL_NAMES]
ONLINE_ASSETS = [a for a in defs.assets if a.key.path[0] == "online_customer_state"]
# 20 training days (about 70 frauds) and a 7-day test window: a model that beats chance clearly
# (test_bank_model.py), with one validation fold to keep training to a few dozen seconds.
SMALL_TRAINING = FraudModelConfig(
    train_days=20,
    delay_days=2,
    test_days=7,
    validation_days=3,
    validation_folds=1,
    gbt_max_iter=5,
    card_precision_k=10,
)


@pytest.fixture(scope="session")
def trained_bank(spark, tmp_path_factory) -> dict:
    """40 simulated days (300 customers) through gold, a promoted model, an online store as of the
    day before the last, so serving can replay the last day."""
    settings = small_bank_settings(tmp_path_factory.mktemp("bank") / "data_lake")
    settings = settings.model_copy(update={"simulator_customers": 300})
    resources = build_resources(settings)
    with DagsterInstance.ephemeral() as instance:
        assert materialize(
            DAILY_ASSETS, resources=resources, tags=range_tags(BANK_FIRST, BANK_LAST), instance=instance
        ).success
        # The gate judges the protocol's ROC AUC: a handful of newly defrauded customers in a bank this
        # small, too few for a floor. That the model beats chance is asserted on all the test window's
        # frauds instead (assets_tests/test_bank_model.py); the floor itself is tested with one no model can reach.
        first_run = materialize(
            MODEL_ASSETS,
            resources=resources,
            instance=instance,
            run_config=RunConfig(
                ops={"fraud_model": SMALL_TRAINING, "deployed_fraud_model": PromotionConfig(min_roc_auc=0.0)}
            ),
        )
        assert first_run.success
        assert materialize(
            ONLINE_ASSETS,
            resources=resources,
            instance=instance,
            run_config=RunConfig(ops={"online_customer_state": OnlineStoreConfig(as_of="2026-03-15")}),
        ).success
        yield {
            "settings": settings,
            "resources": resources,
            "instance": instance,
            "lake": LakeResource(root=str(settings.lake_root)),
            "first_run": first_run,
        }


@pytest.fixture
def serving_lake(trained_bank, tmp_path) -> Path:
    """A fresh lake holding a copy of the bank's model registry and online store (as of 2026-03-15)."""
    source = Path(trained_bank["settings"].lake_root)
    lake = tmp_path / "serving_lake"
    for part in ("models", "online"):
        shutil.copytree(source / part, lake / part, symlinks=True)
    return lake
