"""The one place a SparkSession is configured: local[*] by default, a cluster by settings."""

from dagster_pyspark import LazyPySparkResource

from trybank_assets.settings import TrybankSettings

# Runtime SQL settings, valid for a local session and over Spark Connect alike.
_SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
}


def spark_conf(settings: TrybankSettings) -> dict[str, str]:
    conf = {**_SESSION_CONF, "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions)}
    if settings.spark_remote:
        return {"spark.remote": settings.spark_remote, **conf}
    conf |= {"spark.master": settings.spark_master, "spark.app.name": "trybank-lakehouse"}
    if settings.spark_master.startswith("local"):
        conf |= {
            "spark.driver.memory": settings.spark_driver_memory,
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.adaptive.enabled": "true",
        }
    return conf


def build_spark_resource(settings: TrybankSettings) -> LazyPySparkResource:
    """Lazy: assets that need no Spark (bronze) never pay for a JVM."""
    return LazyPySparkResource(spark_config=spark_conf(settings))
