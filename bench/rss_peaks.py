"""Each process's resident memory, sampled every second: the largest since the last take().

A process that works in batches (the archiver holds ten seconds of events, then writes them) has a
saw-tooth RSS; one reading at a minute's end lands anywhere on the tooth, and two such readings
differ by a tooth's height with no growth at all. The minute's peak is where a leak shows, batch
phase apart."""
from __future__ import annotations

import math
import threading

from bench.proc_tree import tree_rss_mb


class RssPeaks:
    """Samples `pids` (name -> pid) every `every_s` on a daemon thread until stop()."""

    def __init__(self, pids: dict[str, int | None], every_s: float = 1.0) -> None:
        self.pids = pids
        self.every_s = every_s
        self._peaks: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-peaks", daemon=True)

    def start(self) -> "RssPeaks":
        self.sample()
        self._thread.start()
        return self

    def sample(self) -> None:
        now = {name: tree_rss_mb(pid) for name, pid in self.pids.items()}
        with self._lock:
            for name, mb in now.items():
                old = self._peaks.get(name)
                # A NaN (the process gone) stands only until a reading replaces it.
                if old is None or (math.isnan(old) and not math.isnan(mb)) or mb > old:
                    self._peaks[name] = mb

    def take(self) -> dict[str, float]:
        """The peak per process since the last take(), the current reading included."""
        self.sample()
        with self._lock:
            peaks, self._peaks = self._peaks, {}
        return peaks

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()
