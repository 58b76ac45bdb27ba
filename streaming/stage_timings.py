"""Where a loop's wall clock goes, stage by stage, for its progress lines.

The writer's freshness is the job's plus what the writer's loop adds; which stage adds it (waiting
for Kafka, decoding, Redis, the Parquet files, the commit) is what an operator needs to see to act.
"""
from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from typing import Callable, Iterator


class StageTimings:
    """Seconds spent in each named stage since the last `take_summary()`, and the slowest single pass."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._totals: dict[str, float] = {}
        self._worst: dict[str, float] = {}
        self._since = self._clock()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = self._clock()
        try:
            yield
        finally:
            self.add(name, self._clock() - start)

    def add(self, name: str, seconds: float) -> None:
        self._totals[name] = self._totals.get(name, 0.0) + seconds
        if seconds > self._worst.get(name, 0.0):
            self._worst[name] = seconds

    def track_gc(self) -> None:
        """Count the interpreter's garbage collections as a stage of their own ("gc"): they run inside
        whichever stage allocated, so without this a long collection reads as a slow decode."""
        started: list[float] = []

        def callback(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                started[:] = [self._clock()]
            elif started:
                self.add("gc", self._clock() - started.pop())

        gc.callbacks.append(callback)

    def take_summary(self) -> str:
        """'consume 1.2 s (max 105 ms), ...' in first-seen order, over the wall clock since the last
        call; resets."""
        now = self._clock()
        span = now - self._since
        parts = [f"{name} {total:.2f} s (max {self._worst[name] * 1000:.0f} ms)"
                 for name, total in self._totals.items()]
        self._totals, self._worst, self._since = {}, {}, now
        return f"last {span:.1f} s: " + (", ".join(parts) if parts else "idle")
