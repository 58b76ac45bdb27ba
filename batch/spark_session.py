"""A SparkSession from tessera's settings: local[2] by default, any master by configuration."""
from __future__ import annotations

import os

from pyspark.sql import SparkSession

from tessera.config import Settings


def spark_session(settings: Settings, app_name: str) -> SparkSession:
    s = settings.spark
    builder = (
        SparkSession.builder.master(s.master)
        .appName(app_name)
        .config("spark.driver.memory", s.driver_memory)
        .config("spark.sql.shuffle.partitions", str(s.shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        # Re-running a backfill range replaces exactly the date partitions it writes.
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        # UTC-adjusted microsecond timestamps: what pandas, pyarrow and Feast read as tz-aware UTC.
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if s.master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # else Spark binds to the first interface
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
    for key, value in s.conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
