from trybank_assets.resources.spark import spark_conf
from trybank_assets.settings import TrybankSettings


def test_the_local_driver_runs_the_garbage_collector_the_settings_name(spark):
    """The options reach the JVM of the suite's session: spark-submit puts them on its command line at its start."""
    management = spark.sparkContext._jvm.java.lang.management.ManagementFactory
    collectors = {bean.getName() for bean in management.getGarbageCollectorMXBeans()}
    assert collectors == {"PS Scavenge", "PS MarkSweep"}  # -XX:+UseParallelGC, the default


def test_driver_java_options_are_a_setting_of_local_sessions_only():
    options = "-XX:+UseG1GC -XX:MaxGCPauseMillis=100"
    assert spark_conf(TrybankSettings(spark_driver_java_options=options))["spark.driver.extraJavaOptions"] == options
    assert "spark.driver.extraJavaOptions" not in spark_conf(TrybankSettings(spark_remote="sc://spark:15002"))
