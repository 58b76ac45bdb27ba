"""bench/jvm_heap.py reads `jstat -gc`'s columns by name (they differ between collectors and JDKs)."""
from __future__ import annotations

import pytest

from bench.jvm_heap import parse_jstat_gc

JDK17_PARALLEL = """\
    S0C         S1C         S0U         S1U          EC           EU           OC           OU          MC         MU       CCSC      CCSU     YGC     YGCT     FGC    FGCT     CGC    CGCT       GCT
    43520.0     43520.0         0.0     21760.5     262144.0     131072.0     699392.0     358400.0    61952.0    60241.2    7168.0    6581.9     41     6.120     1     4.700     -          -    10.820
"""


def test_reads_old_generation_and_collections_by_column_name() -> None:
    heap = parse_jstat_gc(JDK17_PARALLEL)
    assert heap.old_used_mb == pytest.approx(350.0) and heap.old_capacity_mb == pytest.approx(683.0)
    assert (heap.young_gcs, heap.full_gcs) == (41, 1) and heap.gc_s == pytest.approx(10.82)


def test_a_dash_counts_as_zero_and_a_missing_line_is_an_error() -> None:
    g1 = JDK17_PARALLEL.replace("     1     4.700", "     0     0.000")
    assert parse_jstat_gc(g1).full_gcs == 0
    with pytest.raises(ValueError):
        parse_jstat_gc("sun.jvmstat.monitor.MonitorException: 1 not found")
