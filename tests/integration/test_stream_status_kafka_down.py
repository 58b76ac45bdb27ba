"""`tessera stream status|stop` with the Kafka broker down: the processes' state, then one line
saying the lag is unknown and why; no traceback, and not an error (the stream's own state was read)."""
from __future__ import annotations

import time
from pathlib import Path

from tests.stack import own_base_port, run_tessera, stack_env


def test_status_with_no_broker_says_the_lag_is_unknown(tmp_path: Path) -> None:
    env = stack_env(tmp_path, base_port=own_base_port())  # nothing listens on these ports
    began = time.monotonic()
    done = run_tessera(env, "stream", "status", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stream-job     not running" in done.stdout
    assert "consumer lag unknown: Kafka at 127.0.0.1:" in done.stderr
    assert "does not answer" in done.stderr
    assert "Traceback" not in done.stderr
    assert time.monotonic() - began < 60, "a broker that is down is not waited on for long"
