"""Compile a windowed view into a Spark plan of its values at every instant they change.

Each event enters its features' windows at `enter` and leaves at ceil_g(enter + w) (SPEC.md). So a
key's value changes only at those instants: the plan emits +value at enter and -value at each
leave boundary, sums the deltas per (key, instant) and takes the running total per key. Sums run in
DECIMAL(38,18), so adding and removing the same cost cancels exactly and a quiet key decays to 0.
For a daily view the unit is one (key, UTC day) and it enters at the end of that day.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType

from tessera.definitions import Feature, WindowedView
from tessera.windows import DAY_MS, format_duration

EXACT = DecimalType(38, 18)
RUNNING_BUCKET_MS = 3_600_000  # see _running_totals


@dataclass(frozen=True)
class ChangePointPlan:
    view: WindowedView
    start_ms: int  # rows are emitted for instants in [start_ms, end_ms)
    end_ms: int

    @property
    def lookback_ms(self) -> int:
        """How far before start_ms events can still be in a window at start_ms."""
        return self.view.lookback_ms

    @property
    def additive(self) -> list[Feature]:
        return [f for f in self.view.features if f.aggregation.operation != "ratio"]


def _matches(feature: Feature) -> Column:
    condition = F.lit(True)
    for column, value in feature.aggregation.where.items():
        condition = condition & (F.col(column) == F.lit(value))
    return condition


def _unit_value(feature: Feature) -> Column:
    """What one unit row contributes to the feature while it is in the window."""
    op = feature.aggregation.operation
    if op == "count":
        return F.when(_matches(feature), F.lit(1)).otherwise(F.lit(0)).cast("long")
    if op == "sum":
        return F.when(_matches(feature), F.col(feature.aggregation.column).cast(EXACT)).otherwise(
            F.lit(0).cast(EXACT))
    if op == "distinct_days":
        return F.lit(1).cast("long")
    raise ValueError(f"{feature.ref}: {op} is not additive")


def _units(plan: ChangePointPlan, events: DataFrame) -> DataFrame:
    """(key, enter, value per feature): one row per event, or per (key, day) for a daily view."""
    view, key = plan.view, plan.view.entity.join_key
    if view.kind == "streaming":
        return events.select(F.col(key).alias("key"), F.col("event_time").alias("enter"),
                             *[_unit_value(f).alias(f.name) for f in plan.additive])
    day_end = (F.floor(F.col("event_time") / DAY_MS) + 1) * DAY_MS
    per_day = [F.sum(_unit_value(f)).alias(f.name) for f in plan.additive
               if f.aggregation.operation != "distinct_days"]
    daily = events.groupBy(F.col(key).alias("key"), day_end.cast("long").alias("enter")).agg(*per_day)
    for f in plan.additive:
        if f.aggregation.operation == "distinct_days":
            daily = daily.withColumn(f.name, F.lit(1).cast("long"))
    return daily


def _leave(enter: Column, window_ms: int, granularity_ms: int) -> Column:
    """ceil_g(enter + w) on non-negative epoch milliseconds."""
    return (F.floor((enter + F.lit(window_ms + granularity_ms - 1)) / granularity_ms) * granularity_ms).cast("long")


def _zero(feature: Feature) -> Column:
    return F.lit(0).cast(EXACT) if feature.aggregation.operation == "sum" else F.lit(0).cast("long")


def _running_totals(per_instant: DataFrame, features: list[Feature]) -> DataFrame:
    """The running total per key, in two levels: an opening balance per (key, hour) from the
    totals of the key's earlier hours, plus the running total within the hour. Spark buffers a whole
    window partition in memory, and a key's every instant is millions of rows for a heavy user or
    campaign; a (key, hour) partition and a per-key list of hours both stay small."""
    bucketed = per_instant.withColumn("bucket", F.floor(F.col("t") / F.lit(RUNNING_BUCKET_MS)))
    per_bucket = bucketed.groupBy("key", "bucket").agg(*[F.sum(f.name).alias(f.name) for f in features])
    earlier = Window.partitionBy("key").orderBy("bucket").rowsBetween(Window.unboundedPreceding, -1)
    opening = per_bucket.select("key", "bucket", *[
        F.coalesce(F.sum(f.name).over(earlier), _zero(f)).alias(f"__open_{f.name}") for f in features])
    within = Window.partitionBy("key", "bucket").orderBy("t").rowsBetween(Window.unboundedPreceding,
                                                                          Window.currentRow)
    return bucketed.join(opening, ["key", "bucket"]).select("key", "t", *[
        # Decimal + decimal widens past 38 digits and Spark then drops scale: cast back to EXACT.
        (F.col(f"__open_{f.name}") + F.sum(f.name).over(within)).cast(
            EXACT if f.aggregation.operation == "sum" else "long").alias(f.name) for f in features])


def change_points(plan: ChangePointPlan, events: DataFrame) -> DataFrame:
    """Rows (key, as_of_ms, feature values...) at every instant in the range where a value changes,
    plus one row per key at start_ms so a point-in-time lookup inside the range never needs an
    earlier range's rows."""
    view = plan.view
    units = _units(plan, events)
    features = plan.additive
    windows = sorted({f.window_ms for f in features})
    # One struct per instant this unit changes something: its enter, then each distinct leave.
    moments = [F.struct(F.col("enter").alias("t"), *[F.col(f.name).alias(f.name) for f in features])]
    for w in windows:
        moments.append(F.struct(
            _leave(F.col("enter"), w, view.granularity_of(w)).alias("t"),
            *[(-F.col(f.name) if f.window_ms == w else _zero(f)).alias(f.name) for f in features]))
    deltas = units.select("key", F.explode(F.array(*moments)).alias("m")).select("key", "m.*")
    snapshot = units.select("key").distinct().select(
        "key", F.lit(plan.start_ms).cast("long").alias("t"), *[_zero(f).alias(f.name) for f in features])
    deltas = deltas.where(F.col("t") < plan.end_ms).unionByName(snapshot)
    per_instant = deltas.groupBy("key", "t").agg(*[F.sum(f.name).alias(f.name) for f in features])
    values = _running_totals(per_instant, features)
    values = values.where((F.col("t") >= plan.start_ms) & (F.col("t") < plan.end_ms))
    out = [F.col("key").alias(view.entity.join_key), F.col("t").alias("as_of_ms")]
    for f in view.features:
        agg = f.aggregation
        if agg.operation == "ratio":
            suffix = format_duration(f.window_ms)
            num, den = F.col(f"{agg.numerator}_{suffix}"), F.col(f"{agg.denominator}_{suffix}")
            out.append(F.when(den == 0, F.lit(None).cast("double")).otherwise(
                num.cast("double") / den.cast("double")).alias(f.name))
        elif agg.operation == "sum":
            out.append(F.col(f.name).cast("double").alias(f.name))
        else:
            out.append(F.col(f.name).cast("long").alias(f.name))
    return values.select(*out)
