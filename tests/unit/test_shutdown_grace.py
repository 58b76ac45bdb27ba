"""run_until_stopped: a stop signal lets the worker finish, but never waits without end for it."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

from streaming.retrying import EXIT_UNFINISHED

# A worker whose last step never returns, as librdkafka's synchronous commit does with the broker
# gone; it writes "ready" once the signal handlers are in place.
WORKER = textwrap.dedent("""
    import sys, time
    from streaming.retrying import run_until_stopped

    class Stuck:
        running = True
        def run(self):
            print("ready", flush=True)
            while True:
                time.sleep(0.05)  # ignores `running`: the step in hand is blocked

    class Polite:
        running = True
        def run(self):
            print("ready", flush=True)
            while self.running:
                time.sleep(0.05)

    worker = {"stuck": Stuck, "polite": Polite}[sys.argv[1]]()
    sys.exit(run_until_stopped("test", worker, grace_s=float(sys.argv[2])))
""")


def _start(kind: str, grace_s: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", WORKER, kind, str(grace_s)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    while "ready" not in proc.stdout.readline():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    return proc


def test_a_stuck_worker_exits_when_the_grace_runs_out() -> None:
    proc = _start("stuck", grace_s=1.0)
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    took = time.monotonic() - began
    assert proc.returncode == EXIT_UNFINISHED
    assert 0.9 <= took < 10
    assert "not stopped within 1 s" in err and "replayed on restart" in err


def test_a_second_signal_exits_at_once() -> None:
    proc = _start("stuck", grace_s=60.0)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    began = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == EXIT_UNFINISHED
    assert time.monotonic() - began < 5
    assert "stopped again" in err


def test_a_worker_that_finishes_exits_cleanly_before_the_grace() -> None:
    proc = _start("polite", grace_s=1.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "[test] stopped" in out and "not stopped within" not in err
