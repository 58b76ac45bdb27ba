"""CPU seconds used by the streaming path's processes (Linux /proc), so a benchmark can say where
the time goes per event, whatever else the machine is running at the time."""
from __future__ import annotations

import os
from pathlib import Path

COMPONENTS = ("stream-job", "stream-sink", "stream-archive", "kafka", "redis")  # pid files under <state>/run
_TICK = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            out.setdefault(ppid, []).append(int(entry))
    return out


def _own_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def cpu_seconds(state_dir: Path) -> dict[str, float]:
    """Per component, the CPU seconds of its process and every live descendant (the Flink job's
    JVM runs under the job's Python process)."""
    children = _children()
    out: dict[str, float] = {}
    for name in COMPONENTS:
        try:
            root = int((state_dir / "run" / f"{name}.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        total, todo = 0.0, [root]
        while todo:
            pid = todo.pop()
            total += _own_seconds(pid)
            todo += children.get(pid, [])
        out[name] = total
    return out


def describe(before: dict[str, float], after: dict[str, float], events: float, seconds: float) -> str:
    """'stream-job 85 us/event (1.2 cores), ...' for the interval between two readings."""
    parts = []
    for name in COMPONENTS:
        if name in before and name in after:
            used = after[name] - before[name]
            parts.append(f"{name} {used / events * 1e6:,.0f} us/event ({used / seconds:.2f} cores)")
    return ", ".join(parts)
