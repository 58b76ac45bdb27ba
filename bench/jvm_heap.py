"""A JVM's heap and collector figures (its hsperfdata counters, as `jstat -gc` shows them), for
benchmarks that must tell a heap filling up from a process whose RSS is flat only because its heap
was committed and touched at start."""
from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass

import psutil

from bench import hsperfdata


@dataclass(frozen=True)
class HeapSample:
    old_used_mb: float
    old_capacity_mb: float
    young_gcs: int
    full_gcs: int
    gc_s: float  # wall time in collections since the JVM started


def java_pid(root: int | None) -> int | None:
    """The first `java` process in root's tree (PyFlink's launcher starts the mini-cluster's JVM)."""
    if root is None:
        return None
    try:
        proc = psutil.Process(root)
        for p in [proc, *proc.children(recursive=True)]:
            if p.name() == "java":
                return p.pid
    except psutil.NoSuchProcess:
        pass
    return None


def parse_jstat_gc(text: str) -> HeapSample:
    """`jstat -gc` prints a header line and a value line; columns in KB, counts, seconds."""
    header, values = (line.split() for line in text.strip().splitlines()[-2:])
    row = dict(zip(header, values))

    def num(name: str) -> float:
        value = row.get(name, "-")
        return 0.0 if value == "-" else float(value)
    return HeapSample(num("OU") / 1024, num("OC") / 1024, int(num("YGC")), int(num("FGC")), num("GCT"))


def _ask(tool: str, args: list[str], timeout_s: float) -> str | None:
    """What a JDK tool (jstat, jcmd) prints; None when there is no such tool, it fails, or it does not
    answer in time."""
    path = shutil.which(tool)
    if path is None:
        return None
    try:
        done = subprocess.run([path, *args], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None
    return done.stdout if done.returncode == 0 else None


def from_counters(counters: dict[str, int | str]) -> HeapSample:
    """jstat -gc's OU, OC, YGC, FGC and GCT from the counters it computes them from."""
    def num(name: str) -> int:
        value = counters.get(name, 0)
        return value if isinstance(value, int) else 0
    old = [f"sun.gc.generation.1.space.{i}" for i in range(num("sun.gc.generation.1.spaces"))]
    ticks = sum(num(f"sun.gc.collector.{i}.time") for i in range(3))  # young, full, concurrent pauses
    return HeapSample(sum(num(f"{s}.used") for s in old) / 2**20, sum(num(f"{s}.capacity") for s in old) / 2**20,
                      num("sun.gc.collector.0.invocations"), num("sun.gc.collector.1.invocations"),
                      ticks / (num("sun.os.hrt.frequency") or 1))


def sample(pid: int | None) -> HeapSample | None:
    """From the JVM's hsperfdata file (bench/hsperfdata.py: no process started); else from jstat.
    None when there is no JVM, or jstat is needed and missing or does not answer within 5 s."""
    if pid is None:
        return None
    try:
        return from_counters(hsperfdata.read(pid))
    except (OSError, ValueError, struct.error):
        pass
    text = _ask("jstat", ["-gc", str(pid)], 5.0)
    try:
        return parse_jstat_gc(text) if text is not None else None
    except (ValueError, StopIteration):
        return None


@dataclass(frozen=True)
class LiveHeap:
    """What a full collection leaves: the heap's live objects, in all and by class (largest first)."""

    total_mb: float
    top: tuple[tuple[str, float, int], ...]  # (class, MB, instances)


def parse_class_histogram(text: str, top: int = 6) -> LiveHeap:
    """`jcmd <pid> GC.class_histogram`: rows '  1:  <instances>  <bytes>  <class> (<module>)', then 'Total'."""
    total = 0.0
    rows: list[tuple[str, float, int]] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "Total":
            total = int(parts[2]) / 2**20
        elif len(parts) >= 4 and parts[0].endswith(":") and parts[0][:-1].isdigit():
            rows.append((parts[3], int(parts[2]) / 2**20, int(parts[1])))
    if not total:
        raise ValueError("no 'Total' line: not a class histogram")
    rows.sort(key=lambda r: -r[1])
    return LiveHeap(total, tuple(rows[:top]))


def live_heap(pid: int | None, timeout_s: float = 120.0) -> LiveHeap | None:
    """The live set, by a full collection that `jcmd` asks for: it stops the JVM for as long as the
    collection takes, so take it outside a measured interval. None when there is no JVM or jcmd."""
    text = None if pid is None else _ask("jcmd", [str(pid), "GC.class_histogram"], timeout_s)
    try:
        return parse_class_histogram(text) if text is not None else None
    except ValueError:
        return None
