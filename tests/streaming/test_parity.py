"""`tessera parity` on the real pipeline: Kafka -> Flink -> Redis, checked against Spark over the
raw history the sink archived.

One job run, three phases: a stream without late events must give 100% parity; one online value
corrupted in Redis must be named, key and feature, and fail the check; then a continuation with
events later than the allowed lateness must give mismatches that are all explained as late events.
"""
from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from feast.infra.online_stores.helpers import _mmh3, _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from tessera.config import Settings
from tessera.definitions import load_definitions
from tessera.generator import EventGenerator, GeneratorConfig, Message
from tessera.kafka_io import produce
from tessera.online_rows import read_online_rows
from tessera.services.redis_server import redis_client
from tests.stack import run_tessera, settings_for
from tests.streaming.waits import wait_archived, wait_caught_up, wait_topic_holds

START = int(datetime(2026, 4, 1, tzinfo=timezone.utc).timestamp() * 1000)
RATE = 10.0  # events per second of event time
ON_TIME = GeneratorConfig(seed=21, users=150, campaigns=10, ctr=0.1, cvr=0.2,
                          duplicates=0.03, out_of_order=0.05, late=0.0, invalid=0.01)
WITH_LATE = GeneratorConfig(seed=22, users=150, campaigns=10, ctr=0.1, cvr=0.2,
                            duplicates=0.02, out_of_order=0.03, late=0.05, invalid=0.0)
# A trickle from one user and one campaign, 30 s after the rest: it moves the stream clock past the
# allowed lateness, so the other keys' rows are settled (only settled rows count).
TICK = GeneratorConfig(seed=23, users=1, campaigns=1)
STREAMING_VIEWS = "user_ad_activity,campaign_delivery"


@pytest.fixture(scope="module")
def parity_env(stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The session's services, with this module's own topics, Redis db and data directory."""
    env = {**stack, "TESSERA_KAFKA__TOPIC": "parity.ad_events", "TESSERA_KAFKA__DLQ_TOPIC": "parity.dlq",
           "TESSERA_KAFKA__LATE_TOPIC": "parity.late", "TESSERA_KAFKA__FEATURES_TOPIC": "parity.features",
           "TESSERA_REDIS__DB": "3", "TESSERA_PATHS__DATA_DIR": str(tmp_path_factory.mktemp("parity-data"))}
    for step in (("services", "up"), ("apply",)):
        done = run_tessera(env, *step)
        assert done.returncode == 0, done.stderr
    return env


@pytest.fixture(scope="module")
def parity_settings(parity_env: dict[str, str]) -> Settings:
    return settings_for(parity_env)


def _event_ids(messages: list[Message]) -> set[str]:
    return {m.event.event_id for m in messages if m.event is not None}


@pytest.fixture(scope="module")
def on_time(parity_env: dict[str, str], parity_settings: Settings) -> list[Message]:
    messages = EventGenerator(ON_TIME, START, RATE).take(4_000)
    last = max(m.event.event_time for m in messages if m.event is not None)
    messages += EventGenerator(TICK, last + 30_000, 1.0).take(20)
    assert not any(m.kind == "late" for m in messages)
    produce(parity_settings, [messages])
    started = run_tessera(parity_env, "stream", "start", "--from-checkpoint", "none")
    assert started.returncode == 0, started.stderr
    wait_caught_up(parity_settings)
    wait_archived(parity_settings, _event_ids(messages))
    yield messages
    run_tessera(parity_env, "stream", "stop")


def _parity(env: dict[str, str], tmp: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp / "parity.json"
    done = run_tessera(env, "parity", "--sample", "1", "--views", STREAMING_VIEWS, "--worst", "100000",
                       "--json", str(out), *args, timeout=600)
    assert done.returncode in (0, 1), f"parity crashed:\n{done.stdout}\n{done.stderr[-3000:]}"
    return done, json.loads(out.read_text())


def test_parity_is_100_percent_on_a_stream_without_late_events(on_time: list[Message], parity_env: dict[str, str],
                                                               parity_settings: Settings, tmp_path: Path) -> None:
    done, report = _parity(parity_env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert report["passed"] and report["match_rate"] == 1.0
    assert report["compared"] > 1_000
    views = {v["view"]: v for v in report["views"]}
    assert views["user_ad_activity"]["settled"] > 100 and views["campaign_delivery"]["settled"] >= 5
    assert "parity PASSED" in done.stdout
    saved = json.loads((parity_settings.state_dir / "parity" / "last.json").read_text())
    assert saved["match_rate"] == report["match_rate"]  # what /status shows


def test_a_corrupted_online_value_is_named_and_fails(on_time: list[Message], parity_env: dict[str, str],
                                                     parity_settings: Settings, tmp_path: Path) -> None:
    view = load_definitions(parity_settings.feature_repo).view("user_ad_activity")
    users = sorted({m.event.user_id for m in on_time if m.event is not None})
    clock = max(m.event.event_time for m in on_time if m.event is not None)
    rows = read_online_rows(parity_settings, view, users)
    victim = next(r for r in rows.values() if r.as_of_ms < clock - 60_000 and r.values["impressions_1h"] > 0)
    entity = EntityKeyProto(join_keys=["user_id"], entity_values=[ValueProto(int64_val=victim.key)])
    key = _redis_key(parity_settings.feast.project, entity, 3)
    field = _mmh3("user_ad_activity:impressions_1h")
    client = redis_client(parity_settings)
    original = client.hget(key, field)
    assert original is not None
    client.hset(key, field, ValueProto(int64_val=victim.values["impressions_1h"] + 7).SerializeToString())
    try:
        done, report = _parity(parity_env, tmp_path)
    finally:
        client.hset(key, field, original)
    assert done.returncode == 1
    assert not report["passed"]
    [activity] = [v for v in report["views"] if v["view"] == "user_ad_activity"]
    tally = next(f for f in activity["features"] if f["feature"] == "impressions_1h")
    assert tally["mismatched"] == 1 and tally["smape"] > 0
    [difference] = activity["worst"]
    assert (difference["key"], difference["feature"], difference["online"], difference["offline"]) == \
        (victim.key, "impressions_1h", victim.values["impressions_1h"] + 7, victim.values["impressions_1h"])
    assert difference["reason"] == "unexplained"
    assert f"{victim.key}" in done.stdout and "impressions_1h" in done.stdout and "parity FAILED" in done.stdout


def test_late_event_mismatches_are_reported_as_late(on_time: list[Message], parity_env: dict[str, str],
                                                    parity_settings: Settings, tmp_path: Path) -> None:
    span = max(m.event.event_time for m in on_time if m.event is not None) - START
    later = EventGenerator(WITH_LATE, START + span + 1_000, RATE).take(2_000)
    late = [m for m in later if m.kind == "late"]
    assert len(late) > 50
    produce(parity_settings, [later])
    wait_caught_up(parity_settings)
    wait_archived(parity_settings, _event_ids(on_time) | _event_ids(later))
    wait_topic_holds(parity_settings, parity_settings.kafka.late_topic, len(late))
    done, report = _parity(parity_env, tmp_path, "--threshold", "0.5")
    assert report["late_events"] == len(late), done.stderr[-2000:]
    differences = [d for v in report["views"] for d in v["worst"]]
    late_ones = [d for d in differences if d["reason"] == "late_event"]
    assert late_ones, "no mismatch was attributed to the late events"
    assert {d["reason"] for d in differences} <= {"late_event", "not_settled"}, \
        [d for d in differences if d["reason"] not in ("late_event", "not_settled")][:5]
    assert report["match_rate"] < 1.0 and done.returncode == 0  # below 100%, above the 50% asked for
    for view in report["views"]:  # and each names a key the late events touched
        key_of = "user_id" if view["view"] == "user_ad_activity" else "campaign_id"
        touched = {getattr(m.event, key_of) for m in late}
        assert {d["key"] for d in view["worst"] if d["reason"] == "late_event"} <= touched
