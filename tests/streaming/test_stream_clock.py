"""The per-partition stream clock: a lagging partition holds it back; an idle one does not."""
from __future__ import annotations

from streaming.stream_clock import PartitionClock


def test_no_clock_until_every_active_partition_has_an_event_time() -> None:
    clock = PartitionClock(partitions=2, idle_ms=10_000)
    assert clock.observe(0, 5_000, now_ms=1) is None
    assert clock.observe(0, 9_000, now_ms=2) is None
    assert clock.observe(1, 1_000, now_ms=3) == 1_000


def test_clock_is_the_minimum_and_never_goes_back() -> None:
    clock = PartitionClock(partitions=2, idle_ms=10_000)
    clock.observe(0, 50_000, now_ms=1)
    assert clock.observe(1, 20_000, now_ms=2) == 20_000
    assert clock.observe(1, 30_000, now_ms=3) == 30_000
    assert clock.observe(1, 25_000, now_ms=4) == 30_000  # an older event does not move it back
    assert clock.observe(1, 60_000, now_ms=5) == 50_000


def test_an_idle_partition_stops_holding_the_clock_back() -> None:
    clock = PartitionClock(partitions=2, idle_ms=1_000)
    clock.observe(0, 5_000, now_ms=10)
    assert clock.observe(1, 2_000, now_ms=20) == 2_000
    assert clock.observe(0, 9_000, now_ms=900) == 2_000
    assert clock.observe(0, 9_500, now_ms=1_100) == 9_500  # partition 1 silent for over 1 s
    # A partition that never speaks goes idle one idle period after the run's first message.
    fresh = PartitionClock(partitions=3, idle_ms=1_000)
    fresh.observe(0, 7_000, now_ms=10)
    assert fresh.observe(1, 8_000, now_ms=20) is None
    assert fresh.observe(0, 7_500, now_ms=1_009) is None
    assert fresh.tick(now_ms=1_010) == 7_500


def test_a_slow_start_does_not_let_the_first_partition_read_set_the_clock_alone() -> None:
    """A job whose first message comes long after it started (a cold start, a restore) reads a
    backlog a partition at a time: partition 0's first minute before any of partition 1. Counted
    from the start, every partition was idle at the first message, the clock followed partition 0
    alone, and partition 1's backlog was late."""
    clock = PartitionClock(partitions=2, idle_ms=10_000)
    assert clock.tick(now_ms=60_000) is None  # nothing read yet: no clock, however long the start
    for i in range(60):
        assert clock.observe(0, 1_000 * i, now_ms=60_000 + i) is None  # waits for partition 1
    assert clock.observe(1, 0, now_ms=60_100) == 0
    assert clock.observe(1, 30_000, now_ms=60_200) == 30_000


def test_invalid_messages_keep_a_partition_active_without_an_event_time() -> None:
    clock = PartitionClock(partitions=2, idle_ms=1_000)
    clock.observe(0, 5_000, now_ms=10)
    assert clock.observe(1, None, now_ms=20) is None
