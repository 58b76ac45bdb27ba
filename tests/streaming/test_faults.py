"""Faults on the real pipeline: the Kafka broker restarted mid-stream, Redis stopped for a while.

A stack of its own (the broker is restarted under it), one job run. Afterwards every component
has recovered by itself, the raw history holds every valid event exactly once, and `tessera parity`
finds every settled online row equal to Spark's recomputation from that history: nothing lost,
nothing counted twice. (Killing and restarting the Flink job: tests/streaming/test_pipeline.py.)
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest

from streaming import control
from tessera.config import Settings
from tessera.generator import EventGenerator, GeneratorConfig, Message
from tessera.kafka_io import produce
from tessera.services.kafka_broker import KafkaBroker
from tessera.services.redis_server import RedisServer
from tests.stack import own_base_port, run_tessera, settings_for, stack_env
from tests.streaming.waits import wait_archived, wait_caught_up

START = int(datetime(2026, 5, 1, tzinfo=timezone.utc).timestamp() * 1000)
RATE = 10.0
EVENTS = GeneratorConfig(seed=31, users=120, campaigns=8, ctr=0.1, cvr=0.2,
                         duplicates=0.03, out_of_order=0.05, late=0.0, invalid=0.01)
TICK = GeneratorConfig(seed=32, users=1, campaigns=1)
OUTAGE_S = 10


@pytest.fixture(scope="module")
def fault_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    env = stack_env(tmp_path_factory.mktemp("faults"), base_port=own_base_port())
    for step in (("services", "up"), ("apply",)):
        done = run_tessera(env, *step)
        assert done.returncode == 0, done.stderr
    yield env
    run_tessera(env, "stream", "stop")
    run_tessera(env, "services", "down")


def _sink_log(settings: Settings) -> str:
    log = control.processes(settings)["stream-sink"].log_file
    return log.read_text(errors="replace") if log.exists() else ""


def _all_running(settings: Settings) -> bool:
    return all(p.pid() is not None for p in control.processes(settings).values())


def test_broker_restart_and_redis_outage_lose_and_double_nothing(fault_env: dict[str, str], tmp_path: Path) -> None:
    settings = settings_for(fault_env)
    generator = EventGenerator(EVENTS, START, RATE)
    sent: list[Message] = generator.take(2_000)
    produce(settings, [sent])
    started = run_tessera(fault_env, "stream", "start", "--from-checkpoint", "none")
    assert started.returncode == 0, started.stderr
    wait_caught_up(settings)

    # The broker goes away while the job and the writer are busy with the next part.
    part = generator.take(2_000)
    produce(settings, [part])
    sent += part
    broker = KafkaBroker(settings)
    assert broker.stop() == "stopped"
    time.sleep(OUTAGE_S)
    assert "started" in broker.start()
    part = generator.take(1_000)
    produce(settings, [part])
    sent += part
    wait_caught_up(settings, timeout_s=420)
    assert _all_running(settings), "a component did not survive the broker restart"

    # Redis goes away while events keep coming; the writer must wait and replay, not skip or die.
    redis_server = RedisServer(settings)
    assert redis_server.stop() == "stopped"
    part = generator.take(2_000)
    produce(settings, [part])
    sent += part
    deadline = time.monotonic() + 180
    while "retrying what is not written yet" not in _sink_log(settings):
        assert time.monotonic() < deadline, "the writer never met the Redis outage:\n" + _sink_log(settings)[-2000:]
        time.sleep(1)
    time.sleep(OUTAGE_S)  # a few more failed attempts, with back-off
    assert "started" in redis_server.start()
    wait_caught_up(settings, timeout_s=420)
    assert _all_running(settings), "a component did not survive the Redis outage"

    last = max(m.event.event_time for m in sent if m.event is not None)
    tick = EventGenerator(TICK, last + 30_000, 1.0).take(20)  # settles the rows of every other key
    produce(settings, [tick])
    sent += tick
    wait_caught_up(settings)
    wait_archived(settings, {m.event.event_id for m in sent if m.event is not None}, timeout_s=120)

    out = tmp_path / "parity.json"
    done = run_tessera(fault_env, "parity", "--sample", "1", "--views", "user_ad_activity,campaign_delivery",
                       "--json", str(out), timeout=600)
    report = json.loads(out.read_text())
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert report["match_rate"] == 1.0 and report["compared"] > 1_000
