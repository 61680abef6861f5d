"""The fraud model: metrics, the Spark training pipelines, the registry and the Spark-free scorer."""
