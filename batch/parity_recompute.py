"""The offline side of a parity check: value(k, as_of) recomputed by the Spark backfill's own plan
from the raw history, for a sample of keys, without writing anything.

It reuses batch.change_points (the plan the backfill writes to the offline store) rather than
reading the offline store, because the stream's writer appends its own rows there: comparing the
stream with itself would prove nothing.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from batch.backfill import read_events
from batch.change_points import ChangePointPlan, change_points
from tessera.config import Settings
from tessera.definitions import WindowedView
from tessera.parity_compare import Value


def _day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).date()


def offline_values_at(spark: SparkSession, settings: Settings, view: WindowedView,
                      targets: dict[int, int]) -> dict[int, dict[str, Value]]:
    """For each key -> as_of_ms in `targets`, the view's values at that instant; a key with no event
    in any window at its as_of is left out (its values are the absent ones)."""
    if not targets:
        return {}
    key = view.entity.join_key
    start_ms, end_ms = min(targets.values()), max(targets.values()) + 1
    plan = ChangePointPlan(view, start_ms, end_ms)
    first_day = _day(start_ms - plan.lookback_ms) - timedelta(days=1 if view.kind == "daily" else 0)
    events = read_events(spark, settings, first_day, _day(end_ms)).where(F.col(key).isin(list(targets)))
    points = change_points(plan, events)
    wanted = spark.createDataFrame([(k, t) for k, t in targets.items()], f"{key} long, target_ms long")
    # The newest change point at or before each key's as_of is value(k, as_of).
    newest = (points.join(wanted, key).where(F.col("as_of_ms") <= F.col("target_ms"))
              .groupBy(key).agg(F.max_by(F.struct(*view.feature_names), F.col("as_of_ms")).alias("v")))
    out: dict[int, dict[str, Value]] = {}
    for row in newest.collect():
        out[int(row[key])] = {name: row["v"][name] for name in view.feature_names}
    return out

