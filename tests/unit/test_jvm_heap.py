"""bench/jvm_heap.py reads `jstat -gc`'s columns by name (they differ between collectors and JDKs), and
`jcmd GC.class_histogram`'s live set."""
from __future__ import annotations

import pytest

from bench.jvm_heap import parse_class_histogram, parse_jstat_gc

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


# JDK 17's output (a few of its 706 rows), from a JVM holding one long[1_000_000].
JDK17_HISTOGRAM = """\
 num     #instances         #bytes  class name (module)
-------------------------------------------------------
   1:           909        8073064  [J (java.base@17.0.15)
   2:         13268         805072  [B (java.base@17.0.15)
   3:          3011         362496  java.lang.Class (java.base@17.0.15)
   4:         13108         314592  java.lang.String (java.base@17.0.15)
   5:          2160         174104  [Ljava.lang.Object; (java.base@17.0.15)
 705:             1             16  sun.nio.fs.NativeBuffers$1 (java.base@17.0.15)
 706:             1             16  sun.nio.fs.UnixFileAttributes$UnixAsBasicFileAttributes (java.base@17.0.15)
Total         60335       10862664
"""


def test_class_histogram_total_and_largest_classes() -> None:
    live = parse_class_histogram(JDK17_HISTOGRAM, top=2)
    assert live.total_mb == pytest.approx(10_862_664 / 2**20)
    assert live.top == (("[J", pytest.approx(8_073_064 / 2**20), 909), ("[B", pytest.approx(805_072 / 2**20), 13_268))
    with pytest.raises(ValueError):
        parse_class_histogram("9477:\ncom.sun.tools.attach.AttachNotSupportedException: Unable to open socket file")
