"""The stream's event-time clock across Kafka partitions, as Flink's per-partition watermarks
would compute it: the minimum over partitions of the newest event time each has delivered.

A partition that has delivered nothing for `idle_ms` of processing time stops holding the clock
back (Flink's source idleness); until every partition has either spoken or gone idle there is no
clock, so nothing is judged late and no window is closed on a partial view of the topic.
The clock never moves backwards.

The idle period of a partition not heard yet runs from the run's first message, not from the
start: a job that takes longer than `idle_ms` to start reading (a cold start, a restore) would
otherwise find every partition idle at its first message, let the first partition read set the
clock alone, and judge the other partitions' backlog late.
"""
from __future__ import annotations


class PartitionClock:
    def __init__(self, partitions: int, idle_ms: int) -> None:
        self.partitions = partitions
        self.idle_ms = idle_ms
        self.newest: dict[int, int] = {}       # partition -> newest valid event time
        self.heard: dict[int, int] = {}        # partition -> processing time of its last message
        self.first_heard_ms: int | None = None  # processing time of the run's first message
        self.clock: int | None = None

    def observe(self, partition: int, event_time: int | None, now_ms: int) -> int | None:
        """Record a message (event_time None for an invalid one) and return the clock."""
        self.heard[partition] = now_ms
        if self.first_heard_ms is None:
            self.first_heard_ms = now_ms
        if event_time is not None and event_time > self.newest.get(partition, -1):
            self.newest[partition] = event_time
        return self.tick(now_ms)

    def tick(self, now_ms: int) -> int | None:
        if self.first_heard_ms is None:
            return self.clock  # nothing read yet in this run
        active = []
        for p in range(self.partitions):
            last_heard = self.heard.get(p, self.first_heard_ms)
            if now_ms - last_heard >= self.idle_ms:
                continue  # idle: does not hold the clock back
            if p not in self.newest:
                return self.clock  # an active partition with no event time yet: wait for it
            active.append(self.newest[p])
        if not active:
            candidates = list(self.newest.values())
            if not candidates or len(self.heard) == 0:
                return self.clock
            active = [max(candidates)]
        candidate = min(active)
        if self.clock is None or candidate > self.clock:
            self.clock = candidate
        return self.clock

    @property
    def newest_overall(self) -> int | None:
        return max(self.newest.values(), default=None)
