"""Real-time serving: ingest, online features, scoring without Spark, prediction log."""
