"""The loop the stream's Python consumers share: one step after another until told to stop, and a
step that fails because Kafka, Redis or the disk is away is tried again, with backoff, never skipped."""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Protocol

from confluent_kafka import KafkaException
from redis.exceptions import RedisError

from batch.online_bulk_writer import OnlineWriteError
from tessera.long_lived import freeze_long_lived

MAX_BACKOFF_S = 5.0
# After SIGTERM or SIGINT, the last step and flush get this long. librdkafka's close waits for the
# outstanding commits without end and without looking at signals, so a stop while the broker
# is away would hang; past the grace the process exits uncommitted, and its group replays the rest
# (the writer's rows are idempotent, the archiver's files named by their first offset).
SHUTDOWN_GRACE_S = 20.0
EXIT_UNFINISHED = 3
TRANSIENT = (KafkaException, RedisError, OnlineWriteError, OSError)


def run_steps(name: str, step: Callable[[], None], running: Callable[[], bool], report: Callable[[], str],
              report_every_s: float = 5.0) -> bool:
    """Runs `step` while `running()`; prints `report()` every `report_every_s`. Returns True when the
    last step succeeded, so the caller may flush what it holds."""
    last_report = time.monotonic()
    failures = 0
    while running():
        try:
            step()
            if failures:
                print(f"[{name}] recovered after {failures} failed attempt(s)", flush=True)
            failures = 0
        except TRANSIENT as err:
            # The component is away: wait and do the same work again; what is not written stays held.
            failures += 1
            delay = min(MAX_BACKOFF_S, 0.25 * 2 ** min(failures, 5))
            print(f"[{name}] {type(err).__name__}: {err}; retrying what is not written yet "
                  f"in {delay:.1f} s (attempt {failures})", file=sys.stderr, flush=True)
            time.sleep(delay)
            continue
        if time.monotonic() - last_report >= report_every_s:
            last_report = time.monotonic()
            # The time (UTC) lines a report up with the job's checkpoints and collections.
            print(f"[{name}] {time.strftime('%H:%M:%SZ', time.gmtime())} {report()}", flush=True)
    return failures == 0


class Worker(Protocol):
    running: bool

    def run(self) -> None: ...


def run_until_stopped(name: str, worker: Worker, grace_s: float = SHUTDOWN_GRACE_S) -> int:
    """Runs the worker until SIGTERM or SIGINT, which let it finish the step in hand and flush, within
    `grace_s`; a second signal, or the grace running out, exits at once (EXIT_UNFINISHED), uncommitted.
    What the worker loaded to start is frozen first (tessera/long_lived.py): the collector never walks it."""
    def give_up(why: str) -> None:
        print(f"[{name}] {why}: exiting without the last commit; what it held is replayed on restart",
              file=sys.stderr, flush=True)
        os._exit(EXIT_UNFINISHED)

    def stop(*_: Any) -> None:
        if not worker.running:
            give_up("stopped again")
        worker.running = False
        # A thread, not an alarm: a Python signal handler would wait for the blocked C call to return.
        watchdog = threading.Timer(grace_s, give_up, args=(f"not stopped within {grace_s:g} s (Kafka or Redis away?)",))
        watchdog.daemon = True
        watchdog.start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"[{name}] {freeze_long_lived():,} objects loaded at start frozen (the collector skips them)", flush=True)
    worker.run()
    print(f"[{name}] stopped", flush=True)
    return 0
