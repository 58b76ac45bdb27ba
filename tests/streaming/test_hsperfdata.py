"""bench/hsperfdata.py reads a live JVM's counters as jstat does: both must show the same heap."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bench import hsperfdata, jvm_heap

# Allocates into its old generation, collects once (a full collection), then idles: no collection
# between the two readings.
IDLE = """
public class Idle {
    static long[][] kept = new long[64][];
    public static void main(String[] args) throws Exception {
        for (int i = 0; i < kept.length; i++) kept[i] = new long[65536];
        System.gc();
        System.out.println("ready");
        Thread.sleep(120_000);
    }
}
"""


@pytest.fixture
def idle_jvm(tmp_path: Path):
    if shutil.which("java") is None or shutil.which("jstat") is None:
        pytest.fail("no java or jstat on PATH: run scripts/setup.sh")
    source = tmp_path / "Idle.java"
    source.write_text(IDLE)
    proc = subprocess.Popen(["java", "-XX:+UseParallelGC", "-Xmx128m", str(source)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_the_counters_agree_with_jstat(idle_jvm: int) -> None:
    mine = jvm_heap.from_counters(hsperfdata.read(idle_jvm))
    text = jvm_heap._ask("jstat", ["-gc", str(idle_jvm)], 60.0)
    assert text is not None
    theirs = jvm_heap.parse_jstat_gc(text)
    assert mine.full_gcs == theirs.full_gcs >= 1  # System.gc()
    assert mine.young_gcs == theirs.young_gcs
    assert mine.old_used_mb == pytest.approx(theirs.old_used_mb, abs=0.1) and mine.old_used_mb >= 30  # 32 MB kept
    assert mine.old_capacity_mb == pytest.approx(theirs.old_capacity_mb, abs=0.1)
    assert mine.gc_s == pytest.approx(theirs.gc_s, abs=0.0015)  # jstat rounds to ms


def test_sample_reads_the_counters_without_starting_a_process(idle_jvm: int,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"started a process: {args}")
    monkeypatch.setattr(subprocess, "run", no_process)  # jstat is a JVM of its own, seconds on a busy host
    heap = jvm_heap.sample(idle_jvm)
    assert heap is not None and heap.full_gcs >= 1 and heap.old_used_mb >= 30


def test_a_file_that_is_not_hsperfdata_is_refused() -> None:
    with pytest.raises(ValueError, match="bad magic"):
        hsperfdata.parse(b"\0" * 64)
