"""The per-partition stream clock: a lagging partition holds it back; an idle one does not.

`observe(partition, event_time, now_ms, written_ms)`: written_ms is the record's Kafka timestamp.
Where a test is not about the time written, records are read as they are written (written = now).
"""
from __future__ import annotations

from streaming.stream_clock import PartitionClock


def _live(clock: PartitionClock, partition: int, event_time: int | None, now_ms: int) -> int | None:
    return clock.observe(partition, event_time, now_ms, written_ms=now_ms)


def test_no_clock_until_every_active_partition_has_an_event_time() -> None:
    clock = PartitionClock(partitions=2, idle_ms=10_000)
    assert _live(clock, 0, 5_000, now_ms=1) is None
    assert _live(clock, 0, 9_000, now_ms=2) is None
    assert _live(clock, 1, 1_000, now_ms=3) == 1_000


def test_clock_is_the_minimum_and_never_goes_back() -> None:
    clock = PartitionClock(partitions=2, idle_ms=10_000)
    _live(clock, 0, 50_000, now_ms=1)
    assert _live(clock, 1, 20_000, now_ms=2) == 20_000
    assert _live(clock, 1, 30_000, now_ms=3) == 30_000
    assert _live(clock, 1, 25_000, now_ms=4) == 30_000  # an older event does not move it back
    assert _live(clock, 1, 60_000, now_ms=5) == 50_000


def test_an_idle_partition_stops_holding_the_clock_back() -> None:
    clock = PartitionClock(partitions=2, idle_ms=1_000)
    _live(clock, 0, 5_000, now_ms=10)
    assert _live(clock, 1, 2_000, now_ms=20) == 2_000
    for now in range(100, 1_001, 100):  # partition 0 live, a message every 100 ms
        assert _live(clock, 0, 9_000, now_ms=now) == 2_000
    assert _live(clock, 0, 9_500, now_ms=1_100) == 9_500  # partition 1 silent for over 1 s
    # A partition that never speaks goes idle one idle period after the run's first message.
    fresh = PartitionClock(partitions=3, idle_ms=1_000)
    _live(fresh, 0, 7_000, now_ms=10)
    assert _live(fresh, 1, 8_000, now_ms=20) is None
    for now in range(200, 1_001, 200):
        assert _live(fresh, 0, 7_500, now_ms=now) is None
    assert _live(fresh, 0, 7_600, now_ms=1_010) == 7_600


def test_a_long_gap_between_messages_counts_a_quarter_of_the_idle_period() -> None:
    """Processing time counts toward a partition's silence only while the job reads: a gap between
    two messages longer than a quarter of the idle period is the job not reading (a stall), not
    the partition being quiet."""
    clock = PartitionClock(partitions=2, idle_ms=1_000)
    _live(clock, 0, 5_000, now_ms=0)
    assert _live(clock, 1, 2_000, now_ms=10) == 2_000
    assert _live(clock, 0, 9_000, now_ms=5_000) == 2_000  # 5 s without a message: counted as 250 ms
    for now in range(5_100, 5_701, 100):
        assert _live(clock, 0, 9_000, now_ms=now) == 2_000
    assert _live(clock, 0, 9_500, now_ms=5_800) == 9_500  # 250 + 800 ms of reading: idle now


def test_a_slow_start_does_not_let_the_first_partition_read_set_the_clock_alone() -> None:
    """A job whose first message comes long after it started (a cold start, a restore) reads a
    backlog a partition at a time: partition 0's first minute before any of partition 1. Counted
    from the start, every partition was idle at the first message, the clock followed partition 0
    alone, and partition 1's backlog was late."""
    clock = PartitionClock(partitions=2, idle_ms=10_000)
    assert clock.tick(now_ms=60_000) is None  # nothing read yet: no clock, however long the start
    for i in range(60):  # the backlog was written a second apart, a minute before the job started
        assert clock.observe(0, 1_000 * i, now_ms=60_000 + i, written_ms=1_000 * i) is None  # waits for 1
    assert clock.observe(1, 0, now_ms=60_100, written_ms=0) == 0
    assert clock.observe(1, 30_000, now_ms=60_200, written_ms=30_000) == 30_000


def test_a_stalled_job_does_not_find_the_partitions_with_a_backlog_idle() -> None:
    """The job reads a backlog written at 1,000 records a second and stalls for 30 s (backpressure,
    a GC pause) after a record of partition 0. The next records come from partition 0 first: by
    processing time alone, partition 1 was silent for 30 s, went idle, and the clock followed
    partition 0 past partition 1's backlog, which was then judged late."""
    clock = PartitionClock(partitions=2, idle_ms=10_000)
    now = 1_000_000
    for i in range(2_000):  # two seconds of the backlog, read in 200 ms
        assert clock.observe(i % 2, i, now_ms=now + i // 10, written_ms=i) in (None, i - 1, i - 2)
    now += 30_000  # the stall
    for i in range(2_000, 4_000, 2):  # partition 0's next run of records, read before partition 1's
        assert clock.observe(0, i, now_ms=now, written_ms=i) == 1_999  # held at partition 1's newest
    assert clock.observe(1, 2_001, now_ms=now + 1, written_ms=2_001) == 2_001


def test_a_busy_partition_read_by_bytes_is_not_idle() -> None:
    """A backlog is read by bytes, a few hundred records of each partition in turn. Partition 0 has
    ten times partition 1's traffic, so each turn reaches ten times further into partition 1's
    time written: after a while the job has read partition 1 more than the idle period further than
    partition 0. Partition 0 is delivering all along, so it must keep holding the clock back."""
    clock = PartitionClock(partitions=2, idle_ms=10_000)
    busy = quiet = 0  # the time written reached in each partition, ms
    now = 0
    for _ in range(200):  # a turn: 300 records of each, read in 30 ms
        for _ in range(300):
            busy += 10  # 100 records a second
            quiet += 100  # 10 records a second
            now += 0.05
            clock.observe(0, busy, now_ms=int(now), written_ms=busy)
            clock.observe(1, quiet, now_ms=int(now), written_ms=quiet)
    assert quiet - busy > 10 * 10_000  # partition 1 was read far more than the idle period further
    assert clock.clock == busy


def test_a_stall_while_one_partition_reads_older_writes_does_not_make_it_idle() -> None:
    """A seed backlog is written to both partitions at once, the live stream starts a minute later,
    and the job reads partition 1's seed while partition 0 has moved on to live records (written a
    minute later). Then the job stalls for 12 s (a GC pause on a starved machine). Its silence by
    processing time and by time written were each over the idle period, so partition 1 went idle
    and the rest of its seed was judged late (2,728 events in one soak)."""
    clock = PartitionClock(partitions=2, idle_ms=10_000)
    now, seed_from = 1_000_000, 1_700_000_000_000  # the seed's event times: 300 s, 300 ms apart
    for i in range(1_000):  # both partitions' seeds, written at 0 to 1 s
        clock.observe(i % 2, seed_from + 300 * i, now_ms=now, written_ms=i)
    assert clock.clock == seed_from + 300 * 998
    now += 10
    for i in range(300):  # partition 0's live records (written 60 s later) and partition 1's seed
        clock.observe(0, seed_from + 600_000 + i, now_ms=now, written_ms=60_000 + i)
        assert clock.observe(1, seed_from + 300 * (1_001 + 2 * i), now_ms=now, written_ms=1_000 + i) == \
            seed_from + 300 * (1_001 + 2 * i)
    held = clock.clock
    now += 12_000  # the stall
    assert clock.observe(0, seed_from + 601_000, now_ms=now, written_ms=61_000) == held  # 1 still holds it


def test_invalid_messages_keep_a_partition_active_without_an_event_time() -> None:
    clock = PartitionClock(partitions=2, idle_ms=1_000)
    _live(clock, 0, 5_000, now_ms=10)
    assert _live(clock, 1, None, now_ms=20) is None
