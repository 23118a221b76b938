"""The one place that builds and configures a SparkSession, and maps Arrow schemas to Spark."""
