"""The per-partition stream clock: a lagging partition holds it back; an idle one does not."""
from __future__ import annotations

from streaming.stream_clock import PartitionClock


def test_no_clock_until_every_active_partition_has_an_event_time() -> None:
    clock = PartitionClock(partitions=2, idle_ms=10_000, started_ms=0)
    assert clock.observe(0, 5_000, now_ms=1) is None
    assert clock.observe(0, 9_000, now_ms=2) is None
    assert clock.observe(1, 1_000, now_ms=3) == 1_000


def test_clock_is_the_minimum_and_never_goes_back() -> None:
    clock = PartitionClock(partitions=2, idle_ms=10_000, started_ms=0)
    clock.observe(0, 50_000, now_ms=1)
    assert clock.observe(1, 20_000, now_ms=2) == 20_000
    assert clock.observe(1, 30_000, now_ms=3) == 30_000
    assert clock.observe(1, 25_000, now_ms=4) == 30_000  # an older event does not move it back
    assert clock.observe(1, 60_000, now_ms=5) == 50_000


def test_an_idle_partition_stops_holding_the_clock_back() -> None:
    clock = PartitionClock(partitions=2, idle_ms=1_000, started_ms=0)
    clock.observe(0, 5_000, now_ms=10)
    assert clock.observe(1, 2_000, now_ms=20) == 2_000
    assert clock.observe(0, 9_000, now_ms=900) == 2_000
    assert clock.observe(0, 9_500, now_ms=1_100) == 9_500  # partition 1 silent for over 1 s
    # A partition that never speaks goes idle one idle period after the start.
    fresh = PartitionClock(partitions=3, idle_ms=1_000, started_ms=0)
    fresh.observe(0, 7_000, now_ms=10)
    assert fresh.observe(1, 8_000, now_ms=20) is None
    assert fresh.tick(now_ms=1_001) == 7_000


def test_invalid_messages_keep_a_partition_active_without_an_event_time() -> None:
    clock = PartitionClock(partitions=2, idle_ms=1_000, started_ms=0)
    clock.observe(0, 5_000, now_ms=10)
    assert clock.observe(1, None, now_ms=20) is None
