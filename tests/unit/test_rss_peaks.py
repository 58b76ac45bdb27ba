"""RssPeaks: the largest reading per process since the last take(), not the last one."""
from __future__ import annotations

import os
import time

from bench.proc_tree import tree_rss_mb
from bench.rss_peaks import RssPeaks


def test_the_peak_outlives_a_freed_allocation() -> None:
    peaks = RssPeaks({"me": os.getpid()}, every_s=0.05).start()
    try:
        peaks.take()
        before = tree_rss_mb(os.getpid())
        block = bytearray(200 * 2**20)  # touched: resident, not only reserved
        time.sleep(0.3)  # several samples while it is held
        del block
        after = tree_rss_mb(os.getpid())
        peak = peaks.take()["me"]
        assert after < before + 100  # freed: a reading now would not see it
        assert peak >= before + 190
        assert peaks.take()["me"] < before + 100  # a take() starts a new peak
    finally:
        peaks.stop()


def test_a_process_that_is_gone_reads_nan() -> None:
    peaks = RssPeaks({"gone": 2**22 + 12345})
    value = peaks.take()["gone"]
    assert value != value
