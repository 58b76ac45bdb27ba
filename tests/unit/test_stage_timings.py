"""StageTimings: per-stage totals and worst pass over a span, reset by each summary."""
from __future__ import annotations

import pytest

from streaming.stage_timings import StageTimings


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_totals_worst_and_span_then_reset() -> None:
    clock = FakeClock()
    timings = StageTimings(clock)
    for seconds in (0.010, 0.250, 0.040):
        with timings.stage("consume"):
            clock.now += seconds
    with timings.stage("online"):
        clock.now += 0.020
    clock.now += 1.0  # outside any stage: counts in the span only
    assert timings.take_summary() == "last 1.3 s: consume 0.30 s (max 250 ms), online 0.02 s (max 20 ms)"
    clock.now += 2.0
    assert timings.take_summary() == "last 2.0 s: idle"


def test_a_failing_stage_is_still_counted() -> None:
    clock = FakeClock()
    timings = StageTimings(clock)
    with pytest.raises(ConnectionError):
        with timings.stage("online"):
            clock.now += 0.5
            raise ConnectionError("redis away")
    assert "online 0.50 s (max 500 ms)" in timings.take_summary()


def test_collections_are_a_stage_of_their_own() -> None:
    import gc

    timings = StageTimings()
    before = list(gc.callbacks)
    timings.track_gc()
    try:
        gc.collect()
    finally:
        gc.callbacks[:] = before
    assert "gc " in timings.take_summary()
