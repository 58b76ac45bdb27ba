"""Stalls no priority inside this machine can prevent: a probe per CPU that sleeps 1 ms at the
highest real-time priority (SCHED_FIFO 99, pinned to its CPU) and records how late it wakes.

A FIFO-99 thread preempts every ordinary task at once, so when it wakes milliseconds late, its
CPU was not running this machine's tasks at all: on a virtual machine, the host had descheduled
the virtual CPU (time the guest cannot see: these guests report no steal time). `cyclictest -p99`
measures the same thing; this one keeps when each stall happened, so a soak can tell the seconds
its requests were slow apart from the seconds the machine was away.

    .venv/bin/python bench/cpu_stalls.py [--seconds 30] [--min-ms 1]

Needs root (or CAP_SYS_NICE) for SCHED_FIFO; without it the probe runs at normal priority and
says so, and then measures scheduling delay as well.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event

from tessera.services.cpu_priority import PriorityError, take_realtime

PERIOD_NS = 1_000_000
FIFO_PRIORITY = 99


@dataclass(frozen=True)
class Stall:
    cpu: int
    at_s: float  # wall clock (time.time()) when the late wake-up happened
    late_ms: float


@dataclass
class StallReport:
    stalls: list[Stall]
    samples: int
    realtime: bool  # False: the probe could not take SCHED_FIFO and measured ordinary scheduling too

    def in_window(self, start_s: float, end_s: float) -> list[Stall]:
        return [s for s in self.stalls if start_s <= s.at_s < end_s]


def _probe(cpu: int, min_late_ns: int, stop: Event, out: Connection) -> None:
    """Sends (realtime, samples, [(wall s, late ms)]) about once a second, the last one when stopped."""
    os.sched_setaffinity(0, {cpu})
    try:
        take_realtime(FIFO_PRIORITY, "the stall probe")
        realtime = True
    except PriorityError:
        realtime = False
    clock = time.monotonic_ns
    while True:
        stalls: list[tuple[float, float]] = []
        # Checked once per 1,000 wake-ups: the probe must cost next to nothing.
        for _ in range(1000):
            before = clock()
            time.sleep(PERIOD_NS / 1e9)
            late = clock() - before - PERIOD_NS
            if late >= min_late_ns:
                stalls.append((time.time(), late / 1e6))
        stopping = stop.is_set()
        out.send((realtime, 1000, stalls))
        if stopping:
            out.close()
            return


class StallProbe:
    """Start with `start()`, end with `stop()`, which returns what every CPU's probe saw."""

    def __init__(self, min_ms: float = 1.0, cpus: list[int] | None = None) -> None:
        self.min_late_ns = int(min_ms * 1e6)
        self.cpus = cpus if cpus is not None else sorted(os.sched_getaffinity(0))
        self._stop = multiprocessing.Event()
        self._procs: list[tuple[int, multiprocessing.Process, Connection]] = []

    def start(self) -> "StallProbe":
        for cpu in self.cpus:
            receive, send = multiprocessing.Pipe(duplex=False)
            proc = multiprocessing.Process(target=_probe, args=(cpu, self.min_late_ns, self._stop, send),
                                           name=f"cpu-stall-probe-{cpu}", daemon=True)
            proc.start()
            self._procs.append((cpu, proc, receive))
        return self

    def take(self) -> StallReport:
        """What the probes saw since the last take()."""
        report = StallReport([], 0, True)
        for cpu, _, receive in self._procs:
            while receive.poll(0):
                self._add(report, cpu, receive.recv())
        report.stalls.sort(key=lambda s: s.at_s)
        return report

    def stop(self) -> StallReport:
        """What the probes saw since the last take(), up to now; the probes end."""
        report = self.take()
        self._stop.set()
        for cpu, proc, receive in self._procs:
            try:
                while True:
                    if not receive.poll(5):
                        break
                    self._add(report, cpu, receive.recv())
            except EOFError:
                pass
            proc.join(5)
        self._procs.clear()
        report.stalls.sort(key=lambda s: s.at_s)
        return report

    @staticmethod
    def _add(report: StallReport, cpu: int, message: tuple[bool, int, list[tuple[float, float]]]) -> None:
        realtime, samples, seen = message
        report.realtime &= realtime
        report.samples += samples
        report.stalls.extend(Stall(cpu, at, late) for at, late in seen)


def summary(stalls: list[Stall]) -> str:
    """'N >= 1 ms, M >= 5 ms, max X ms, T ms in all' for a list of stalls."""
    if not stalls:
        return "none"
    over5 = sum(1 for s in stalls if s.late_ms >= 5)
    worst = max(s.late_ms for s in stalls)
    total = sum(s.late_ms for s in stalls)
    return f"{len(stalls)} >= 1 ms, {over5} >= 5 ms, max {worst:.1f} ms, {total:.0f} ms in all"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--min-ms", type=float, default=1.0, help="the smallest lateness recorded (default 1 ms)")
    args = parser.parse_args()
    probe = StallProbe(args.min_ms).start()
    time.sleep(args.seconds)
    report = probe.stop()
    mode = "SCHED_FIFO 99" if report.realtime else "normal priority (no permission for SCHED_FIFO)"
    print(f"{report.samples:,} wake-ups of 1 ms on CPUs {probe.cpus} at {mode}")
    for cpu in probe.cpus:
        print(f"  cpu {cpu}: {summary([s for s in report.stalls if s.cpu == cpu])}")


if __name__ == "__main__":
    main()
