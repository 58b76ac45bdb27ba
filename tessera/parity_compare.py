"""Online/offline parity, the pure part: compare values, classify, explain, summarize.

SPEC.md: a settled online row (its as_of older than the allowed lateness behind the stream's clock)
equals the offline value(k, as_of), exactly for counts and within 1e-9 relative for sums and ratios.
Nothing here touches Redis, Kafka or Spark, so every rule is unit-testable.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Literal, Union

from tessera.definitions import Feature, WindowedView

Value = Union[int, float, None]
Outcome = Literal["matched", "mismatched", "online_only_null", "offline_only_null", "both_null"]
Reason = Literal["late_event", "not_settled", "writer_lag", "unexplained"]
OUTCOMES: tuple[Outcome, ...] = ("matched", "mismatched", "online_only_null", "offline_only_null", "both_null")
REASONS: tuple[Reason, ...] = ("late_event", "not_settled", "writer_lag", "unexplained")
RELATIVE_TOLERANCE = 1e-9
# Sums of costs with a few decimals: a value that decayed to zero may keep float dust below this.
ABSOLUTE_TOLERANCE = 1e-9


def key_fraction(join_key: str, key: int) -> float:
    """Where a key falls in [0, 1): a stable hash, so a key is in a sample or not, in every run and
    for every view of its entity."""
    digest = hashlib.blake2b(f"{join_key}={key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def sample_keys(join_key: str, keys: list[int], fraction: float, max_keys: int) -> list[int]:
    """The keys whose hash falls below `fraction`, at most `max_keys` of them (lowest hashes first,
    so a smaller cap is a subset of a larger one)."""
    ranked = sorted((key_fraction(join_key, k), k) for k in set(keys))
    return sorted(k for h, k in ranked[:max_keys] if h < fraction)


def values_agree(op: str, online: Value, offline: Value) -> bool:
    if op in ("count", "distinct_days"):
        return int(online) == int(offline)  # type: ignore[arg-type]
    a, b = float(online), float(offline)  # type: ignore[arg-type]
    return math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=ABSOLUTE_TOLERANCE)


def outcome(op: str, online: Value, offline: Value) -> Outcome:
    if online is None and offline is None:
        return "both_null"
    if online is None:
        return "online_only_null"
    if offline is None:
        return "offline_only_null"
    return "matched" if values_agree(op, online, offline) else "mismatched"


def smape_term(online: Value, offline: Value) -> float | None:
    """2|a-b| / (|a|+|b|), 0 when both are 0; None unless both are values."""
    if online is None or offline is None:
        return None
    a, b = float(online), float(offline)
    denominator = abs(a) + abs(b)
    return 0.0 if denominator == 0 else 2 * abs(a - b) / denominator


def absent_value(feature: Feature) -> Value:
    """value(k, t) for a key with no event in any window at t: counts and sums 0, ratios null."""
    op = feature.aggregation.operation
    if op == "ratio":
        return None
    return 0.0 if op == "sum" else 0


@dataclass(frozen=True)
class OnlineRow:
    key: int
    as_of_ms: int
    values: dict[str, Value]


@dataclass(frozen=True)
class LateEvent:
    key: int
    event_id: str
    event_time: int


@dataclass
class FeatureTally:
    feature: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    smape_sum: float = 0.0
    smape_n: int = 0

    def add(self, result: Outcome, term: float | None) -> None:
        self.counts[result] += 1
        if term is not None:
            self.smape_sum += term
            self.smape_n += 1

    @property
    def compared(self) -> int:
        return sum(self.counts.values())

    @property
    def agreeing(self) -> int:
        return self.counts["matched"] + self.counts["both_null"]

    def as_dict(self) -> dict[str, object]:
        return {"feature": self.feature, **self.counts,
                "smape": self.smape_sum / self.smape_n if self.smape_n else 0.0,
                "match_rate": self.agreeing / self.compared if self.compared else 1.0}


@dataclass(frozen=True)
class Difference:
    key: int
    feature: str
    online: Value
    offline: Value
    as_of_ms: int
    reason: Reason
    smape: float

    def as_dict(self) -> dict[str, object]:
        return {"key": self.key, "feature": self.feature, "online": self.online, "offline": self.offline,
                "as_of_ms": self.as_of_ms, "reason": self.reason, "smape": self.smape}


@dataclass
class ViewParity:
    view: WindowedView
    keys: int = 0
    missing_online: int = 0
    settled: int = 0
    unsettled: int = 0
    tallies: dict[str, FeatureTally] = field(default_factory=dict)
    differences: list[Difference] = field(default_factory=list)
    explained: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))

    def __post_init__(self) -> None:
        self.tallies = {f.name: FeatureTally(f.name) for f in self.view.features}

    @property
    def compared(self) -> int:
        return sum(t.compared for t in self.tallies.values())

    @property
    def agreeing(self) -> int:
        return sum(t.agreeing for t in self.tallies.values())

    @property
    def match_rate(self) -> float:
        return self.agreeing / self.compared if self.compared else 1.0

    def worst(self, n: int) -> list[Difference]:
        return sorted(self.differences, key=lambda d: (-d.smape, d.key, d.feature))[:n]

    def as_dict(self, worst: int) -> dict[str, object]:
        return {"view": self.view.name, "keys": self.keys, "rows": self.settled + self.unsettled,
                "missing_online": self.missing_online, "settled": self.settled, "unsettled": self.unsettled,
                "compared": self.compared, "match_rate": self.match_rate,
                "features": [t.as_dict() for t in self.tallies.values()],
                "worst": [d.as_dict() for d in self.worst(worst)], "explained": dict(self.explained)}


@dataclass(frozen=True)
class Context:
    """What the data says beyond the two values: where the stream's clock is, which events came
    too late for the online path, and whether a writer is still behind."""

    stream_clock_ms: int
    late_events: dict[int, list[LateEvent]]  # by key
    writers_behind: int  # messages not yet committed by the job, the online writer or the archiver


def late_event_touches(view: WindowedView, late: list[LateEvent], as_of_ms: int) -> bool:
    """Is some late event of the key inside one of the view's windows at as_of?"""
    return any(e.event_time <= as_of_ms < view.last_leave(e.event_time) for e in late)


def explain(view: WindowedView, row: OnlineRow, context: Context) -> Reason:
    if row.as_of_ms > context.stream_clock_ms - view.allowed_lateness_ms:
        return "not_settled"
    if late_event_touches(view, context.late_events.get(row.key, []), row.as_of_ms):
        return "late_event"
    if context.writers_behind > 0:
        return "writer_lag"
    return "unexplained"


def compare_view(view: WindowedView, keys: list[int], online: dict[int, OnlineRow],
                 offline: dict[int, dict[str, Value]], context: Context) -> ViewParity:
    """Tally every feature of every sampled key's online row against its offline value at as_of.
    Only settled rows count toward the match rate; a difference in an unsettled row is still
    listed, explained as not settled."""
    result = ViewParity(view, keys=len(keys))
    for key in keys:
        row = online.get(key)
        if row is None:
            result.missing_online += 1
            continue
        settled = row.as_of_ms <= context.stream_clock_ms - view.allowed_lateness_ms
        if settled:
            result.settled += 1
        else:
            result.unsettled += 1
        want = offline.get(key, {})
        reason: Reason | None = None
        for feature in view.features:
            got, expected = row.values.get(feature.name), want.get(feature.name, absent_value(feature))
            result_ = outcome(feature.aggregation.operation, got, expected)
            term = smape_term(got, expected)
            if settled:
                result.tallies[feature.name].add(result_, term)
            if result_ in ("matched", "both_null"):
                continue
            reason = reason or explain(view, row, context)
            result.differences.append(Difference(key, feature.name, got, expected, row.as_of_ms, reason,
                                                 term if term is not None else 2.0))
        if reason is not None:
            result.explained[reason] += 1
    return result
