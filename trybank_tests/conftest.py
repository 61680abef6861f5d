"""One local SparkSession for the whole suite; Dagster runs in tests reuse it (getOrCreate)."""

import os
from pathlib import Path

import pytest
from dagster import DagsterInstance
from pyspark.sql import SparkSession

from trybank_assets.resources import build_resources
from trybank_assets.resources.spark import spark_conf
from trybank_assets.settings import TrybankSettings

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

SMALL_BANK_CUSTOMERS = 200


def small_bank_settings(lake_root: Path) -> TrybankSettings:
    return TrybankSettings(
        lake_root=lake_root,
        simulator_customers=SMALL_BANK_CUSTOMERS,
        spark_shuffle_partitions=2,
        spark_master="local[2]",
    )


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
