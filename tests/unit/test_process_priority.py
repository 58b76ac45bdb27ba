"""`[flink] nice` and `[sink] nice`: a lower priority for the process and, under autogroup
scheduling, for its session, which is what ranks it against the other services."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tessera.services.process import ManagedProcess

AUTOGROUP = Path("/proc/sys/kernel/sched_autogroup_enabled")


def _nice_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[16])


@pytest.mark.parametrize("nice", [0, 7])
def test_a_managed_process_runs_at_its_nice(tmp_path: Path, nice: int) -> None:
    proc = ManagedProcess("sleeper", tmp_path / "run", tmp_path / "sleeper.log")
    pid = proc.start(["sleep", "30"], nice=nice)
    try:
        time.sleep(0.2)
        assert _nice_of(pid) == nice
        if AUTOGROUP.exists() and AUTOGROUP.read_text().strip() == "1":
            # its own session's group, at the same nice (`/autogroup-N nice K`)
            assert Path(f"/proc/{pid}/autogroup").read_text().split()[-1] == str(nice)
    finally:
        proc.stop(timeout_s=5)
