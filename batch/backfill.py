"""The Spark backfill: rebuild the offline store from the raw event history.

For each view and each UTC date in [start, end] it writes every row (key, event_timestamp=as_of,
features) at which a value changes, so the newest row at or before t is value(k, t) for any t in
the range. Output is partitioned by the as_of date and a re-run replaces exactly those partitions.
Each partition written is then indexed, its newest row per key, for `tessera materialize`
(batch/offline_index.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch.change_points import ChangePointPlan, change_points
from batch.offline_index import index_partitions, offline_source
from tessera.config import Settings
from tessera.definitions import Definitions, WindowedView
from tessera.offline_schema import CREATED_TIMESTAMP, EVENT_TIMESTAMP
from tessera.windows import DAY_MS


class BackfillError(RuntimeError):
    pass


@dataclass(frozen=True)
class ViewResult:
    view: str
    rows: int
    seconds: float


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


def read_events(spark: SparkSession, settings: Settings, first_day: date, last_day: date) -> DataFrame:
    """Valid events of the raw history with event dates in [first_day, last_day], one per event_id."""
    root = settings.raw_history_dir
    if not root.exists() or not any(root.glob("date=*/*.parquet")):
        raise BackfillError(f"no raw event history under {root}: write some with `tessera generate history` "
                            f"or run the stream")
    raw = spark.read.option("basePath", str(root)).parquet(str(root))
    in_range = raw.where((F.col("date") >= first_day.isoformat()) & (F.col("date") <= last_day.isoformat()))
    # Producers retry, so an event_id can appear more than once; it counts once.
    return in_range.dropDuplicates(["event_id"]).drop("date")


def offline_rows(plan: ChangePointPlan, events: DataFrame) -> DataFrame:
    values = change_points(plan, events)
    as_of = F.timestamp_millis(F.col("as_of_ms"))
    return (values.withColumn(EVENT_TIMESTAMP, as_of)
            .withColumn(CREATED_TIMESTAMP, F.current_timestamp())
            .withColumn("date", F.date_format(as_of, "yyyy-MM-dd"))
            .drop("as_of_ms"))


def backfill(spark: SparkSession, settings: Settings, definitions: Definitions, start: date, end: date,
             views: list[str] | None = None, say: Callable[[str], None] = print) -> list[ViewResult]:
    if end < start:
        raise BackfillError(f"--end {end} is before --start {start}")
    chosen: list[WindowedView] = [definitions.view(v) for v in views] if views else list(definitions.views.values())
    start_ms, end_ms = day_start_ms(start), day_start_ms(end) + DAY_MS
    plans = [ChangePointPlan(v, start_ms, end_ms) for v in chosen]
    lookback_days = max(-(-p.lookback_ms // DAY_MS) for p in plans)
    events = read_events(spark, settings, start - timedelta(days=lookback_days), end)
    events = events.persist(StorageLevel.MEMORY_AND_DISK)
    results = []
    try:
        count = events.count()
        say(f"backfill {start}..{end}: {count:,} distinct events (with {lookback_days} day(s) of look-back)")
        for plan in plans:
            began = time.monotonic()
            target = settings.offline_store_dir / plan.view.name
            rows = offline_rows(plan, events)
            rows.write.mode("overwrite").partitionBy("date").parquet(str(target))
            written = spark.read.parquet(str(target)).where(
                (F.col("date") >= start.isoformat()) & (F.col("date") <= end.isoformat())).count()
            indexing = time.monotonic()
            days = [f"date={(start + timedelta(days=i)).isoformat()}" for i in range((end - start).days + 1)]
            indexed = index_partitions(offline_source(plan.view, settings), days)
            seconds = time.monotonic() - began
            say(f"  {plan.view.name}: {written:,} rows -> {target}, {indexed} day(s) indexed for materialization "
                f"in {time.monotonic() - indexing:.1f} s ({seconds:.1f} s)")
            results.append(ViewResult(plan.view.name, written, seconds))
    finally:
        events.unpersist()
    return results
