"""CPU priorities. `[flink] nice` and `[sink] nice`: a lower priority for the process and, under
autogroup scheduling, for its session, which is what ranks it against the other services.
`[serving] realtime_priority` and `[redis] realtime_priority`: SCHED_FIFO for the request path."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tessera.services.cpu_priority import PriorityError, check_nice, check_realtime, realtime_allowed, take_realtime
from tessera.services.process import ManagedProcess

ROOT = Path(__file__).resolve().parents[2]

AUTOGROUP = Path("/proc/sys/kernel/sched_autogroup_enabled")


def _nice_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[16])


def _may_raise_priority() -> bool:
    try:
        check_nice(-1, "test")
        return True
    except PriorityError:
        return False


@pytest.mark.parametrize("nice", [0, 7, pytest.param(-5, marks=pytest.mark.skipif(
    not _may_raise_priority(), reason="this user may not take a negative nice"))])
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


def _policy_of(pid: int, tid: int | None = None) -> tuple[int, int]:
    """(scheduling policy, real-time priority) of a thread, from /proc (fields 41 and 40)."""
    stat = Path(f"/proc/{pid}/task/{tid or pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return int(stat[38]), int(stat[37])


needs_realtime = pytest.mark.skipif(not realtime_allowed(), reason="this user may not take SCHED_FIFO")


@pytest.mark.parametrize("priority", [-1, 100])
def test_a_priority_out_of_range_names_the_setting(priority: int) -> None:
    with pytest.raises(PriorityError, match=r"\[serving\] realtime_priority = .*1 to 99"):
        take_realtime(priority, "[serving] realtime_priority")


@needs_realtime
def test_the_check_leaves_the_caller_at_ordinary_priority() -> None:
    check_realtime(30, "test")
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


def _unprivileged(command: list[str]) -> list[str]:
    """`command` without CAP_SYS_NICE and with RLIMIT_RTPRIO 0: what an ordinary user has."""
    return ["setpriv", "--bounding-set=-sys_nice", "--inh-caps=-sys_nice", "--",
            "sh", "-c", 'ulimit -r 0 && exec "$@"', "sh", *command]


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_a_refused_priority_says_what_to_do() -> None:
    """Without CAP_SYS_NICE and RLIMIT_RTPRIO the system refuses SCHED_FIFO: the error names the
    setting and the ways to allow it; `tessera serve` prints it and exits 2 before it starts anything."""
    code = ("from tessera.services.cpu_priority import check_realtime\n"
            "check_realtime(50, '[serving] realtime_priority')\n")
    done = subprocess.run(_unprivileged([sys.executable, "-c", code]), cwd=ROOT, capture_output=True, text=True)
    assert done.returncode != 0
    assert "[serving] realtime_priority = 50: the system refused SCHED_FIFO" in done.stderr
    assert "CAP_SYS_NICE" in done.stderr and "set it to 0" in done.stderr
    served = subprocess.run(_unprivileged([sys.executable, "-m", "tessera.cli", "serve", "--port", "1"]), cwd=ROOT,
                            text=True, capture_output=True, timeout=60,
                            env={**os.environ, "TESSERA_SERVING__REALTIME_PRIORITY": "50"})
    assert served.returncode == 2, served.stderr
    assert "error: [serving] realtime_priority = 50: the system refused SCHED_FIFO" in served.stderr


def test_the_nice_check_leaves_the_caller_as_it_was() -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        check_nice(-3, "test")
    except PriorityError:
        pass
    assert os.getpriority(os.PRIO_PROCESS, 0) == before


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_a_refused_negative_nice_says_what_to_do_before_anything_runs(tmp_path: Path) -> None:
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_NICE, (0, 0))  # and no CAP_SYS_NICE: what a user has\n"
            "from pathlib import Path\n"
            "from tessera.services.cpu_priority import PriorityError\n"
            "from tessera.services.process import ManagedProcess\n"
            "proc = ManagedProcess('never', Path(sys.argv[1]) / 'run', Path(sys.argv[1]) / 'never.log')\n"
            "try:\n"
            "    proc.start(['sleep', '30'], nice=-5, nice_setting='[flink] nice')\n"
            "except PriorityError as err:\n"
            "    print(err)\n"
            "    sys.exit(0 if proc.pid() is None else 1)\n"
            "sys.exit(1)\n")
    done = subprocess.run(_unprivileged([sys.executable, "-c", code, str(tmp_path)]), cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[flink] nice = -5: the system refused a negative nice" in done.stdout
    assert "CAP_SYS_NICE" in done.stdout and "set it to 0 or more" in done.stdout


@needs_realtime
def test_a_realtime_managed_process_starts_ordinary_children(tmp_path: Path) -> None:
    """Redis's way: its first thread at SCHED_FIFO, what it starts (snapshot child, threads) ordinary."""
    proc = ManagedProcess("parent", tmp_path / "run", tmp_path / "parent.log")
    pid = proc.start(["sh", "-c", "sleep 30 & wait"], realtime=20)
    try:
        deadline = time.monotonic() + 5
        children: list[str] = []
        while not children and time.monotonic() < deadline:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            time.sleep(0.05)
        assert _policy_of(pid) == (os.SCHED_FIFO, 20)
        assert os.sched_getscheduler(pid) & os.SCHED_RESET_ON_FORK
        assert children and all(_policy_of(int(c)) == (os.SCHED_OTHER, 0) for c in children)
    finally:
        proc.stop(timeout_s=5)


@needs_realtime
def test_a_refused_start_raises_before_anything_runs(tmp_path: Path) -> None:
    proc = ManagedProcess("never", tmp_path / "run", tmp_path / "never.log")
    with pytest.raises(PriorityError, match="realtime_priority = 100"):
        proc.start(["sleep", "30"], realtime=100)
    assert proc.pid() is None


@needs_realtime
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server (scripts/setup.sh)")
def test_redis_at_realtime_priority_snapshots_at_ordinary_priority(tmp_path: Path) -> None:
    """`[redis] realtime_priority`: the server's main thread at SCHED_FIFO; its background threads
    and its BGSAVE child ordinary, so that a snapshot never holds a CPU against Redis itself."""
    from tests.serving.stack import free_port, make_settings
    from tessera.services.redis_server import RedisServer, redis_client

    settings = make_settings(tmp_path, free_port())
    settings.redis.realtime_priority = 30
    server = RedisServer(settings)
    server.start()
    try:
        pid = server.process.pid()
        assert pid is not None and _policy_of(pid) == (os.SCHED_FIFO, 30)
        threads = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir() if int(t.name) != pid]
        assert threads and all(_policy_of(pid, t) == (os.SCHED_OTHER, 0) for t in threads)
        client = redis_client(settings)
        client.set("k", "v" * 10_000_000)  # a snapshot that takes a moment, so its child can be seen
        client.bgsave()
        deadline, forked = time.monotonic() + 5, []
        while not forked and time.monotonic() < deadline:
            forked = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        assert forked, "no BGSAVE child seen"
        assert _policy_of(int(forked[0]))[0] == os.SCHED_OTHER
    finally:
        server.stop()
