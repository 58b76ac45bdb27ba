"""Waiting for the real pipeline to finish what it was given."""
from __future__ import annotations

import time

from streaming import control
from tessera.config import Settings
from tessera.kafka_io import topic_message_counts
from tessera.raw_history import read_history


def wait_caught_up(settings: Settings, timeout_s: float = 300) -> None:
    """Until the job has committed every ad_events offset and the sink every row, twice in a row."""
    deadline = time.monotonic() + timeout_s
    steady = 0
    while time.monotonic() < deadline:
        lags = {lag.group: lag for lag in control.lags(settings)}
        done = len(lags) == 3 and all(lag.behind == 0 and lag.end > 0 for lag in lags.values())
        steady = steady + 1 if done else 0
        if steady >= 2:
            return
        time.sleep(3)
    raise AssertionError(f"the pipeline did not catch up in {timeout_s} s: {control.lags(settings)}")


def wait_archived(settings: Settings, event_ids: set[str], timeout_s: float = 60) -> None:
    """Until the raw history holds exactly these events (the archiver flushes every few seconds)."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = set(read_history(settings.raw_history_dir).column("event_id").to_pylist())
        if got == event_ids:
            return
        assert time.monotonic() < deadline, \
            f"the raw history has {len(got - event_ids)} unexpected and lacks {len(event_ids - got)} events"
        time.sleep(2)


def wait_topic_holds(settings: Settings, topic: str, count: int, timeout_s: float = 60) -> None:
    """Until `topic` holds at least `count` messages: the job's side outputs (late events) reach
    Kafka when its sinks flush, at the next checkpoint, which can be after its offsets are committed."""
    deadline = time.monotonic() + timeout_s
    while True:
        held = topic_message_counts(settings, [topic])[topic]  # -1 while the topic does not exist
        if held >= count:
            return
        assert time.monotonic() < deadline, f"{topic} holds {held} messages, not {count}, after {timeout_s} s"
        time.sleep(1)
