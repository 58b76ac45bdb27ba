"""Figures of a process and its live children together (the Flink job's JVM runs under its Python
process, the API's workers under their server), through psutil."""
from __future__ import annotations

from typing import Callable

import psutil


def tree_sum(pid: int | None, measure: Callable[[psutil.Process], float]) -> float:
    """`measure` summed over the process and its live children; NaN when the process is gone."""
    if pid is None:
        return float("nan")
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return float("nan")
    total = 0.0
    for p in procs:
        try:
            total += measure(p)
        except psutil.NoSuchProcess:  # a child that ended meanwhile
            pass
    return total


def tree_rss_mb(pid: int | None) -> float:
    return tree_sum(pid, lambda p: p.memory_info().rss) / 2**20


def tree_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds."""
    return tree_sum(pid, lambda p: sum(p.cpu_times()[:2]))
