"""The stream's event-time clock across Kafka partitions, as Flink's per-partition watermarks
would compute it: the minimum over partitions of the newest event time each has delivered.

An idle partition stops holding the clock back (Flink's source idleness); until every partition
has either spoken or gone idle there is no clock, so nothing is judged late and no window is
closed on a partial view of the topic. The clock never moves backwards.

A partition is idle when it has been silent both for `idle_ms` of processing time and while the
job read `idle_ms` further into the topic, measured by the Kafka timestamps (the time written) of
the records read. Either measure alone judges a partition with a backlog idle:
- processing time alone, whenever the job stalls for the idle period (backpressure, a GC pause, a
  slow start): the first record after the stall found every other partition silent for that long,
  and the clock ran ahead of their backlog (the soak's seed events judged late at the job's start);
- time written alone, when the source reads a backlog by bytes: a busy partition's records span
  less time than a quiet one's, so the job reads further into the quiet one, and the busy one,
  though delivering, would look silent.
A partition that is really idle is silent by both. And processing time counts only while the job
reads: a gap between two messages counts at most a quarter of the idle period (Flink's own answer
is an idle timer that pauses while the source is backpressured). Else a stall of the idle period
(a 10 s GC pause on a starved machine) while one partition's backlog was written earlier than
another's (a seed written before the live stream) met both conditions at once.

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
        self.max_gap_ms = idle_ms // 4          # the most one gap between messages counts
        self.newest: dict[int, int] = {}       # partition -> newest valid event time
        # partition -> reading time at its last message; a partition not heard yet counts from the
        # run's first message, at reading time 0
        self.heard: dict[int, int] = {}
        self.written: dict[int, int] = {}      # partition -> latest time written of its messages
        self.first_written_ms = 0               # time written of the run's first message
        self.read_to_ms = 0                     # latest time written of any message read
        self.reading_ms = 0                     # processing time spent reading, at the last message
        self.last_now_ms: int | None = None     # processing time of the last message
        self.clock: int | None = None

    def observe(self, partition: int, event_time: int | None, now_ms: int, written_ms: int) -> int | None:
        """Record a message (event_time None for an invalid one) and return the clock. `written_ms`
        is the record's Kafka timestamp."""
        if self.last_now_ms is None:
            self.first_written_ms = self.read_to_ms = written_ms
        self.reading_ms = self._reading_at(now_ms)
        self.last_now_ms = now_ms
        self.heard[partition] = self.reading_ms
        self.written[partition] = max(written_ms, self.written.get(partition, written_ms))
        self.read_to_ms = max(self.read_to_ms, written_ms)
        if event_time is not None and event_time > self.newest.get(partition, -1):
            self.newest[partition] = event_time
        return self.tick(now_ms)

    def _reading_at(self, now_ms: int) -> int:
        if self.last_now_ms is None:
            return self.reading_ms
        return self.reading_ms + min(max(now_ms - self.last_now_ms, 0), self.max_gap_ms)

    def idle(self, partition: int, now_ms: int) -> bool:
        silent_ms = self._reading_at(now_ms) - self.heard.get(partition, 0)
        read_past_ms = self.read_to_ms - self.written.get(partition, self.first_written_ms)
        return silent_ms >= self.idle_ms and read_past_ms >= self.idle_ms

    def tick(self, now_ms: int) -> int | None:
        if self.last_now_ms is None:
            return self.clock  # nothing read yet in this run
        active = []
        for p in range(self.partitions):
            if self.idle(p, now_ms):
                continue  # does not hold the clock back
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
