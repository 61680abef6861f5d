"""The one place a SparkSession is configured: local[*] by default, a cluster by settings."""

import os
import sys

from dagster_pyspark import LazyPySparkResource

from trybank_assets.features import FEATURE_NAMES
from trybank_assets.lib.spark_tables import VACUUM_RETENTION_CONF
from trybank_assets.settings import TrybankSettings

# delta-spark 4.4.0 is the newest Delta release built for a Spark line pip installs (4.2, pinned in
# pyproject.toml with the delta-spark wheel, which holds only Python). Spark's Ivy fetches the jar and its
# dependencies from Maven Central at session start (cached in ~/.ivy2 after the first time).
DELTA_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"

# Python workers (gold's mapInArrow) run PYSPARK_PYTHON, else "python3" from PATH, which may lack numpy and pyarrow
# (Spark ignores spark.pyspark.python there). They run this interpreter unless the operator chose another.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

UNIQUE_PER_ROW_COLUMNS = ("transaction_id", "source_transaction_id", "event_time", *FEATURE_NAMES)

# Static: a JVM takes them at its start. A Spark Connect server needs them at its own start (a client
# cannot add them); a local session or a spark:// driver gets them from spark_conf.
SERVER_START_CONF = {
    "spark.jars.packages": DELTA_PACKAGE,
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    # A lake on a local disk (file://): Hadoop's default local file system writes a .crc side file beside every
    # file it creates, ~4 ms a file, and a run writes one file per table and day. Parquet keeps its own page
    # checksums; Delta's log goes through another API (FileContext) and keeps its own. Other schemes (s3a://,
    # hdfs://) are not affected.
    "spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
    # Spark keeps 100 compiled classes of generated code; one day's chain of the daily assets generates more, so
    # every run generates, compiles and JIT-compiles its code again (41% of a warm one-day run's CPU in the JIT).
    # One-day runs 3-5 in a JVM, JVMs alternating: 100 entries ~30 s, 2,000 entries ~21 s (the same day each run);
    # 17.8 against 14.7 s on consecutive days, whose date literals are new code. Peak RSS unchanged.
    "spark.sql.codegen.cache.maxEntries": "2000",
}


def _session_conf(settings: TrybankSettings) -> dict[str, str]:
    """Runtime SQL settings, valid for a local session and over Spark Connect alike."""
    parallelism = str(settings.spark_shuffle_partitions)
    return {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": parallelism,
        # Delta replays its log with 50 tasks and VACUUM lists files with 10,000 by default: sized for huge
        # tables, minutes of task overhead on 2 cores. The shuffle parallelism fits the lake it serves.
        "spark.databricks.delta.snapshotPartitions": parallelism,
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": parallelism,
        # VACUUM's retention is TRYBANK_DELTA_VACUUM_RETENTION_HOURS (default 168, Delta's own); Delta's check
        # would refuse a shorter one that an operator chose on purpose.
        VACUUM_RETENTION_CONF: str(settings.delta_vacuum_retention_hours),
        # Delta keeps min/max statistics of a new table's first 32 columns for data skipping. Every table here
        # leads with its keys (ids, event time); statistics of gold's feature columns skip nothing and cost
        # ~10 s of a 1.8M-row write.
        "spark.databricks.delta.properties.defaults.dataSkippingNumIndexedCols": "5",
        "spark.databricks.delta.retentionDurationCheck.enabled": "false",
        # Under a byte limit, Spark measures the Arrow batch it sends a Python worker after every row (15% of
        # gold's JVM time on 183 days); at Int.MaxValue it does not, and batches stay bounded by
        # spark.sql.execution.arrow.maxRecordsPerBatch (10,000 rows).
        "spark.sql.execution.arrow.maxBytesPerBatch": str(2**31 - 1),
        # Aggregates with object buffers (the customer aggregates' collect_set of terminals) as sort aggregates:
        # Spark's object hash aggregate holds 128 groups, then falls back to sorting the rest with each group's
        # set serialized. The customer aggregates of 183 days written to Delta: 22.9 s hash, 19.1 s sort (medians
        # of reps 1-3, alternating); one day 4.4 / 3.9 s. Grouped aggregates of plain columns are unaffected.
        "spark.sql.execution.useObjectHashAggregateExec": "false",
        # Gold's 1.85M rows of 183 days: zstd 10.4 s to write, 177 MB; snappy (Spark's default) 11.1 s, 255 MB;
        # reads as fast. Every reader of the lake (Spark, pyarrow, DuckDB) reads zstd Parquet.
        "spark.sql.parquet.compression.codec": "zstd",
        # Parquet tries a dictionary for every column before falling back to plain encoding once it outgrows a
        # page; for columns nearly unique per row (ids, gold's features) that attempt is pure cost (gold's 1.8M
        # rows as plain Parquet: 17.7 s with dictionaries, 10.8 s without). Spark hands runtime settings to the
        # Parquet writer, per column by name; Delta's writer options do not reach it.
        **{f"parquet.enable.dictionary#{name}": "false" for name in UNIQUE_PER_ROW_COLUMNS},
    }


def spark_conf(settings: TrybankSettings) -> dict[str, str]:
    conf = _session_conf(settings)
    if settings.spark_remote:
        return {"spark.remote": settings.spark_remote, **conf}
    conf |= {"spark.master": settings.spark_master, "spark.app.name": "trybank-lakehouse", **SERVER_START_CONF}
    if settings.spark_master.startswith("local"):
        conf |= {
            "spark.driver.memory": settings.spark_driver_memory,
            # The daily assets over 183 days, second run in a JVM: G1 (Java's default) 197.2 s, the parallel collector
            # 183.2 s, peak RSS 2,784 / 2,720 MB; silver alone, two JVMs each: 92.0 / 87.6 against 83.8 / 83.0 s.
            "spark.driver.extraJavaOptions": settings.spark_driver_java_options,
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.adaptive.enabled": "true",
        }
    return conf


def connect_server_conf(settings: TrybankSettings, host: str, port: int) -> dict[str, str]:
    """A local session like the embedded default's that also serves Spark Connect on ``host``:``port``: runs
    pointed at it (``TRYBANK_SPARK_REMOTE=sc://host:port``) share its warm JVM and Python workers instead of
    starting their own."""
    local = spark_conf(settings.model_copy(update={"spark_remote": None}))
    token = settings.spark_connect_token
    return local | {
        "spark.plugins": "org.apache.spark.sql.connect.SparkConnectPlugin",
        "spark.connect.grpc.binding.address": host,
        "spark.connect.grpc.binding.port": str(port),
        **({"spark.connect.authenticate.token": token.get_secret_value()} if token else {}),
    }


def build_spark_resource(settings: TrybankSettings) -> LazyPySparkResource:
    """Lazy: assets that need no Spark (bronze) never pay for a JVM."""
    return LazyPySparkResource(spark_config=spark_conf(settings))
