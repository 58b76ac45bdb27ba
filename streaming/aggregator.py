"""One key's windowed aggregates, kept exactly, as the streaming job holds them in keyed state.

Pure Python (no Flink), so the rules are unit-tested against a brute force without a cluster.
Every event falls into one bucket per window, named by its leave boundary ceil_g(t + w); the
running total of a window is the sum of its buckets whose boundary is still ahead. Totals are kept
in Decimal (exact for any float cost), so removing a bucket cancels exactly and a quiet key decays
to 0, never to a rounding residue.

`as_of` only moves forward per key: an emission is value(k, as_of) computed from every event of the
key received so far, and a correction for an out-of-order event is emitted at a later `as_of`, so
the newest row in the online store is always the best-known value for its own instant.
"""
from __future__ import annotations

import heapq
import json
from dataclasses import dataclass, field
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, localcontext
from typing import Any

from tessera.definitions import WindowedView
from tessera.windows import format_duration, last_leave, leave_boundary

try:
    import orjson as _orjson
except ImportError:  # the Flink environment
    _orjson = None  # type: ignore[assignment]

_ZERO = Decimal(0)
# Unbounded precision: a sum of floats is then exact (the default 28 digits, or any fixed precision,
# rounds sums of costs of different magnitudes, and a rounded total no longer decays to exactly 0).
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


@dataclass(frozen=True)
class ViewPlan:
    """What the aggregator needs of a view, compiled once from its declaration."""

    view: str
    key_field: str
    granularities: dict[int, int]                   # window length -> its g
    allowed_lateness_ms: int
    windows: tuple[int, ...]                        # distinct window lengths
    # per window: the additive features in it, as (name, op, column, where-items)
    slots: dict[int, tuple[tuple[str, str, str | None, tuple[tuple[str, str], ...]], ...]]
    ratios: tuple[tuple[str, str, str], ...]         # (feature, numerator feature, denominator feature)
    order: tuple[str, ...]                           # every feature name, in declaration order
    max_window_ms: int
    # How long a counted event_id is remembered (dedup). False: until the event has left every window
    # (a later copy adds to none). True, for a job whose stream clock survives restarts (the JVM
    # engine checkpoints it): until the clock is past the event's allowed lateness, since a later copy
    # is then late and never reaches the dedup check. That is seconds instead of a day of ids: the
    # state, its checkpoints and the job's memory stay flat under load.
    forget_at_lateness: bool = False

    @property
    def forgets_at_lateness(self) -> bool:
        # With a lateness longer than the longest window the last timer would come before the ids'
        # time, and they would be kept forever: such a view keeps the window rule.
        return self.forget_at_lateness and self.allowed_lateness_ms <= self.max_window_ms

    @classmethod
    def compile(cls, view: WindowedView) -> "ViewPlan":
        additive = [f for f in view.features if f.aggregation.operation in ("count", "sum")]
        unsupported = [f.ref for f in view.features if f.aggregation.operation not in ("count", "sum", "ratio")]
        if unsupported or view.kind != "streaming":
            raise ValueError(f"view {view.name!r} cannot be streamed: {unsupported or view.kind}")
        windows = tuple(sorted({f.window_ms for f in additive}))
        slots = {w: tuple((f.name, f.aggregation.operation, f.aggregation.column,
                           tuple(sorted(f.aggregation.where.items())))
                          for f in additive if f.window_ms == w) for w in windows}
        ratios = []
        for f in view.features:
            if f.aggregation.operation == "ratio":
                suffix = format_duration(f.window_ms)
                ratios.append((f.name, f"{f.aggregation.numerator}_{suffix}", f"{f.aggregation.denominator}_{suffix}"))
        return cls(view.name, view.entity.join_key, {w: view.granularity_of(w) for w in windows},
                   view.allowed_lateness_ms, windows, slots, tuple(ratios), tuple(f.name for f in view.features),
                   max(windows))

    def last_leave(self, t: int) -> int:
        """When an event at t has left every window."""
        return last_leave(t, self.granularities)

    def to_dict(self) -> dict[str, Any]:
        """The plan as the JVM engine reads it (jars/aggregator, Plan.java), so a feature is only ever
        declared in feature_repo/views.py, whichever engine runs it."""
        for _name, _op, _column, where in (s for w in self.windows for s in self.slots[w]):
            for field_name, value in where:
                # The JVM compares a filter value as a string; anything else would match differently there.
                if not isinstance(value, str):
                    raise ValueError(f"view {self.view!r}: where {field_name}={value!r} is not a string")
        return {
            "view": self.view, "key_field": self.key_field,
            "allowed_lateness_ms": self.allowed_lateness_ms,
            "windows": [{"window_ms": w, "granularity_ms": self.granularities[w],
                         "slots": [{"name": name, "op": op, "column": column, "where": [list(item) for item in where]}
                                   for name, op, column, where in self.slots[w]]}
                        for w in self.windows],
            "ratios": [list(r) for r in self.ratios],
            "order": list(self.order),
            "forgets_at_lateness": self.forgets_at_lateness,  # the rule decided here, once
        }

    def contributions(self, event: dict[str, Any], window: int) -> list[Any]:
        out: list[Any] = []
        for _name, op, column, where in self.slots[window]:
            hit = all(event.get(k) == v for k, v in where)
            if op == "count":
                out.append(1 if hit else 0)
            else:
                out.append(Decimal(event[column]) if hit else _ZERO)
        return out


def plans_to_json(plans: list[ViewPlan]) -> str:
    """Every view of a job, for the JVM engine's Aggregate (one keyed operator for all views)."""
    return json.dumps({"version": 1, "views": [p.to_dict() for p in plans]}, separators=(",", ":"))


@dataclass
class KeyAggregator:
    """All a key needs: per window its open buckets (by leave boundary, with a heap of the
    boundaries) and running totals, the event ids it has counted, and the last as_of emitted.
    Pickled whole into Flink's keyed state."""

    buckets: dict[int, dict[int, list[Any]]] = field(default_factory=dict)
    heads: dict[int, list[int]] = field(default_factory=dict)
    totals: dict[int, list[Any]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)                 # event ids counted and remembered
    forget: list[tuple[int, str]] = field(default_factory=list)  # heap of (when it may be forgotten, id)
    last_as_of: int = -1
    max_event_time: int = -1

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint written by an earlier version: the first kept the counted ids as a
        dict of id -> when it may be forgotten, without the heap."""
        if isinstance(state.get("seen"), dict):
            remembered: dict[str, int] = state["seen"]
            state = {**state, "seen": set(remembered), "forget": [(when, i) for i, when in remembered.items()]}
            heapq.heapify(state["forget"])
        self.__dict__.update(state)

    def add(self, plan: ViewPlan, event: dict[str, Any]) -> list[int] | None:
        """Count the event; returns the new leave boundaries (for timers), or None for a duplicate."""
        event_id = event["event_id"]
        if event_id in self.seen:
            return None
        t = event["event_time"]
        new_boundaries = []
        with localcontext(_EXACT):
            for w in plan.windows:
                leave = leave_boundary(t, w, plan.granularities[w])
                if leave <= self.last_as_of:
                    continue  # it has already left this window for every instant still to come
                values = plan.contributions(event, w)
                window_buckets = self.buckets.setdefault(w, {})
                totals = self.totals.setdefault(w, [0 if op == "count" else _ZERO
                                                    for _n, op, _c, _w in plan.slots[w]])
                bucket = window_buckets.get(leave)
                if bucket is None:
                    window_buckets[leave] = list(values)
                    heapq.heappush(self.heads.setdefault(w, []), leave)
                    new_boundaries.append(leave)
                else:
                    for i, v in enumerate(values):
                        bucket[i] += v
                for i, v in enumerate(values):
                    totals[i] += v
        # Remembered while a later copy could still count (ViewPlan.forget_at_lateness).
        # (Whole seconds by the lateness rule: the JVM engine then keeps one forget entry per second.)
        forget = (-(-(t + plan.allowed_lateness_ms) // 1000) * 1000 if plan.forgets_at_lateness
                  else plan.last_leave(t))
        self.seen.add(event_id)
        heapq.heappush(self.forget, (forget, event_id))
        self.max_event_time = max(self.max_event_time, t)
        return new_boundaries

    def advance(self, as_of: int, forget: bool = True) -> None:
        """Drop everything that has left the windows by `as_of` (which only moves forward), and with
        `forget` the ids remembered until then."""
        with localcontext(_EXACT):
            for w, heap in self.heads.items():
                window_buckets, totals = self.buckets[w], self.totals[w]
                while heap and heap[0] <= as_of:
                    for i, v in enumerate(window_buckets.pop(heapq.heappop(heap))):
                        totals[i] -= v
        if forget:
            self.forget_through(as_of)
        self.last_as_of = as_of

    def forget_through(self, bound: int) -> None:
        while self.forget and self.forget[0][0] <= bound:
            self.seen.discard(heapq.heappop(self.forget)[1])

    def values(self, plan: ViewPlan) -> dict[str, Any]:
        """value(k, last_as_of): ints for counts, floats for sums, ratios None when undefined."""
        out: dict[str, Any] = {}
        for w in plan.windows:
            totals = self.totals.get(w)
            for i, (name, op, _c, _wh) in enumerate(plan.slots[w]):
                v = totals[i] if totals else 0
                out[name] = int(v) if op == "count" else float(v)
        for name, num, den in plan.ratios:
            out[name] = None if not out[den] else out[num] / out[den]
        return {name: out[name] for name in plan.order}

    def is_empty(self) -> bool:
        return not any(self.heads.values()) and not self.seen


def next_as_of(agg: KeyAggregator, candidate: int) -> int:
    """The instant of the next emission: the candidate, but strictly after the last one."""
    return max(candidate, agg.last_as_of + 1, agg.max_event_time)


@dataclass(frozen=True)
class FeatureRow:
    """One online value: value(key, as_of) of every feature of the view."""

    view: str
    key: int
    as_of: int
    values: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps({"view": self.view, "key": self.key, "as_of": self.as_of, "values": self.values},
                          separators=(",", ":"))

    @staticmethod
    def from_json(raw: bytes | str) -> "FeatureRow":
        obj = _loads(raw)
        return FeatureRow(obj["view"], obj["key"], obj["as_of"], obj["values"])


def _loads(raw: bytes | str) -> Any:
    # The sink parses every row, and orjson (the platform environment has it) does so several times faster.
    # json stays the fallback: the Flink environment has no orjson, and orjson refuses NaN/Infinity.
    if _orjson is not None:
        try:
            return _orjson.loads(raw)
        except _orjson.JSONDecodeError:
            pass
    return json.loads(raw)


def on_event(plan: ViewPlan, agg: KeyAggregator, key: int, event: dict[str, Any]
             ) -> tuple[FeatureRow | None, list[int]]:
    """Count an on-time event; returns the row to emit (None for a duplicate) and timers to set."""
    boundaries = agg.add(plan, event)
    if boundaries is None:
        return None, []
    as_of = next_as_of(agg, event["event_time"])
    # as_of may run ahead of the stream clock (an early event): the lateness rule forgets by the clock.
    agg.advance(as_of, forget=not plan.forgets_at_lateness)
    if plan.forgets_at_lateness and event["clock"] is not None:
        agg.forget_through(event["clock"] - 1)  # a copy of any of these, from now on, is late
    return FeatureRow(plan.view, key, as_of, agg.values(plan)), boundaries


def on_timer(plan: ViewPlan, agg: KeyAggregator, key: int, boundary: int) -> FeatureRow | None:
    """The stream clock passed a leave boundary: emit the decayed value unless already newer."""
    if plan.forgets_at_lateness:
        agg.forget_through(boundary)  # every event from now on carries a clock past the boundary
    if agg.last_as_of >= boundary:
        return None
    agg.advance(boundary, forget=not plan.forgets_at_lateness)
    return FeatureRow(plan.view, key, boundary, agg.values(plan))
