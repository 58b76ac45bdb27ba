"""Hostile input through the real pipeline: Kafka -> the Flink job -> DLQ / sink -> Redis.

A small stream of valid events is interleaved with every kind of bad message: random bytes,
truncated JSON, a message close to the broker's size limit, wrong types, extreme values, text
that is not text, null keys. One job run for all of it. Afterwards every hostile message is in
the DLQ once, with a reason and its exact original bytes; the job and the sink are still running
and were never restarted; and every valid event, those after the hostile ones included, was
counted: the online values equal SPEC.md's value(k, as_of), brute-forced.
"""
from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from feast import FeatureStore
from feast.infra.online_stores.redis import RedisOnlineStore
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from streaming import control
from streaming.dead_letters import original_bytes
from tessera.config import Settings
from tessera.events import REJECTION_CODES, AdEvent, parse_event
from tessera.kafka_io import make_producer
from tessera.feast_objects import repo_config
from tessera.services.kafka_broker import KafkaBroker
from tests.batch.brute_force import ORACLES, Ev, agree
from tests.stack import run_tessera, settings_for
from tests.streaming.waits import wait_archived, wait_caught_up

START = int(datetime(2026, 5, 1, tzinfo=timezone.utc).timestamp() * 1000)
USERS = (7001, 7002)
CAMPAIGNS = (9001, 9002)
# The broker's default message.max.bytes is 1,048,588 for a whole record batch: this leaves room
# for the batch and record headers and the key.
NEAR_MAX_BYTES = 1_048_000


@dataclass(frozen=True)
class Sent:
    key: bytes | None
    value: bytes | None
    hostile: str | None = None        # what is wrong with it; None: a valid event
    event: AdEvent | None = None
    expect_code: str | None = None    # the rejection code it must get, where there is one answer


def valid_events() -> list[AdEvent]:
    types = ["impression", "impression", "click", "impression", "conversion", "impression", "click"]
    events = []
    for i in range(21):
        events.append(AdEvent(event_id=f"fuzz-{i}" if i != 5 else "événement-✓-5", event_type=types[i % len(types)],
                              event_time=START + i * 7_000, user_id=USERS[i % 2], ad_id=100 + i,
                              campaign_id=CAMPAIGNS[i % 2], cost=0.125 * (i % 5)))
    return events


def event_json(**changes: object) -> bytes:
    base = AdEvent("hostile", "click", START + 1_000, USERS[0], 1, CAMPAIGNS[0], 0.5).as_dict()
    return json.dumps({**base, **changes}).encode()


def hostile_messages() -> list[Sent]:
    rng = random.Random(2026)
    good = AdEvent("t", "click", START, USERS[0], 1, CAMPAIGNS[0], 0.5).to_json_bytes()
    bad: list[tuple[bytes, str, str | None]] = [
        (rng.randbytes(1), "random byte", None),
        (rng.randbytes(64), "random bytes", None),
        (b"\xff" + rng.randbytes(4_095), "random kilobytes", "not_json"),
        (b"", "empty value", "not_json"),
        (good[:10], "truncated JSON", "not_json"),
        (good[:-1], "JSON missing its last brace", "not_json"),
        (b"\xff" + rng.randbytes(NEAR_MAX_BYTES - 1), "a message near the broker's max size", "not_json"),
        (json.dumps("x" * 900_000).encode(), "a 900 KB JSON string", "not_object"),
        (event_json(event_id="i" * 600_000), "a 600 KB event_id", "out_of_range"),
        (b"[" * 100_000, "JSON nested 100,000 deep", "not_json"),
        (b"42", "a JSON number", "not_object"),
        (json.dumps([1, 2, 3]).encode(), "a JSON array", "not_object"),
        (event_json(event_time=str(START)), "event_time as a string", "wrong_type"),
        (event_json(user_id=1.5), "user_id as a float", "wrong_type"),
        (event_json(cost="0.1"), "cost as a string", "wrong_type"),
        (event_json(event_type=5), "event_type as a number", "wrong_type"),
        (event_json(event_id=None), "event_id null", "wrong_type"),
        (event_json(user_id=True), "user_id as a boolean", "wrong_type"),
        (json.dumps({k: v for k, v in json.loads(event_json()).items() if k != "campaign_id"}).encode(),
         "campaign_id missing", "missing_field"),
        (event_json(user_id=2**63), "user_id 2^63", "out_of_range"),
        (event_json(ad_id=2**64), "ad_id 2^64", "out_of_range"),
        (event_json(campaign_id=-1), "campaign_id -1", "negative_value"),
        (event_json(event_time=-5), "event_time before 1970", "negative_value"),
        (event_json(event_time=2**62), "event_time in year 146 million", "out_of_range"),
        (event_json(event_time=START + 3 * 86_400_000), "event_time 3 days ahead", "future_event_time"),
        (event_json(cost=0.5).replace(b"0.5", b"NaN"), "cost NaN", "out_of_range"),
        (event_json(cost=0.5).replace(b"0.5", b"Infinity"), "cost Infinity", "out_of_range"),
        (event_json(cost=1e300), "cost 1e300", "out_of_range"),
        (event_json(cost=-0.5), "cost negative", "negative_value"),
        (event_json(user_id=0).replace(b'"user_id": 0', b'"user_id": ' + b"9" * 5_000),
         "a 5,000-digit user_id", "not_json"),
        (event_json(event_id="x").replace(b'"x"', b'"\\ud800"'), "event_id a lone surrogate escape", "wrong_type"),
        (b'{"event_id": "\xed\xa0\x80"}', "a UTF-8-encoded surrogate", "not_json"),
        (event_json().decode().encode("utf-16"), "a valid event in UTF-16", "not_json"),
        (b"\xef\xbb\xbf" + event_json(), "a byte-order mark", "not_json"),
        (event_json(event_type="clíck"), "event_type with an accent", "unknown_event_type"),
        (event_json(event_type="ｃｌｉｃｋ"), "event_type in full-width letters", "unknown_event_type"),
        (event_json(event_id=""), "event_id empty", "empty_event_id"),
    ]
    out = []
    for i, (value, what, code) in enumerate(bad):
        key = None if i % 3 == 0 else str(USERS[0]).encode()  # null keys among them
        out.append(Sent(key, value, hostile=what, expect_code=code))
    out.append(Sent(str(USERS[0]).encode(), None, hostile="a tombstone (no value)", expect_code="not_json"))
    return out


def corpus() -> list[Sent]:
    """Valid events and hostile messages interleaved; first and last valid (the first starts the
    stream clock, so the future-time rule applies from the start)."""
    events = valid_events()
    sent: list[Sent] = []
    hostile = hostile_messages()
    per_gap = -(-len(hostile) // (len(events) - 1))
    for i, event in enumerate(events):
        key = None if i == 9 else event.key  # a valid event without a key still counts
        if i == 13:  # a valid event with a 800 KB field nobody reads: still counted
            value = json.dumps({**event.as_dict(), "padding": "p" * 800_000}).encode()
        else:
            value = event.to_json_bytes()
        sent.append(Sent(key, value, event=event))
        sent.extend(hostile[i * per_gap:(i + 1) * per_gap])
    assert sent[-1].event is not None and sum(s.hostile is not None for s in sent) == len(hostile)
    return sent


def original(letter: dict[str, object]) -> bytes | None:
    """What a dead letter says was sent: the bytes, or None for a message without a value."""
    return None if letter.get("original_null") else original_bytes(json.dumps(letter))


def online_rows(settings: Settings, view: str, join_key: str, keys: tuple[int, ...]) -> dict[int, tuple[int, dict]]:
    """key -> (as_of ms, values) through Feast's own Redis reader."""
    config = repo_config(settings)
    feast_view = FeatureStore(repo_path=str(settings.feature_repo), config=config).get_feature_view(view)
    entity_keys = [EntityKeyProto(join_keys=[join_key], entity_values=[ValueProto(int64_val=k)]) for k in keys]
    out = {}
    for key, (ts, values) in zip(keys, RedisOnlineStore().online_read(config, feast_view, entity_keys)):
        if ts is not None and values:
            decoded = {n: getattr(v, v.WhichOneof("val")) if v.WhichOneof("val") else None for n, v in values.items()}
            out[key] = (round(ts.timestamp() * 1000), decoded)
    return out


def consume_all(settings: Settings, topic: str, timeout_s: float = 90) -> list[bytes | None]:
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": f"t-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         **settings.kafka.client_options})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, low)])
        out: list[bytes | None] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < high - low and time.monotonic() < deadline:
            out += [m.value() for m in consumer.consume(100, timeout=1.0) if m.error() is None]
        return out
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def fuzz_env(stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The session's Kafka and Redis, with this module's own topics, Redis db, data and stream
    state (pid files, checkpoints, logs), so no other module's data is touched."""
    return {**stack, "TESSERA_KAFKA__TOPIC": "fuzz.ad_events", "TESSERA_KAFKA__DLQ_TOPIC": "fuzz.dlq",
            "TESSERA_KAFKA__LATE_TOPIC": "fuzz.late", "TESSERA_KAFKA__FEATURES_TOPIC": "fuzz.features",
            "TESSERA_REDIS__DB": "5", "TESSERA_PATHS__DATA_DIR": str(tmp_path_factory.mktemp("fuzz-data")),
            "TESSERA_PATHS__STATE_DIR": str(tmp_path_factory.mktemp("fuzz-state"))}


@dataclass
class Run:
    settings: Settings
    sent: list[Sent]
    ready_at_start: str


def _ready_file(settings: Settings) -> Path:
    return settings.state_dir / "run" / "stream-job.ready"


@pytest.fixture(scope="module")
def run(fuzz_env: dict[str, str]) -> Iterator[Run]:
    settings = settings_for(fuzz_env)
    KafkaBroker(settings).ensure_topics()  # the services are the session's; these topics are ours
    applied = run_tessera(fuzz_env, "apply")
    assert applied.returncode == 0, applied.stderr
    sent = corpus()
    producer = make_producer(settings, **{"compression.type": "none", "message.max.bytes": 2_000_000,
                                          "linger.ms": 0})
    failures: list[str] = []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    for message in sent:
        producer.produce(settings.kafka.topic, value=message.value, key=message.key, on_delivery=delivered)
        producer.flush(30)  # one at a time: the near-max message goes in a batch of its own
    assert not failures, failures
    started = run_tessera(fuzz_env, "stream", "start", "--from-checkpoint", "none", "--wait", "240", timeout=300)
    assert started.returncode == 0, started.stdout + started.stderr
    ready = _ready_file(settings).read_text()
    try:
        wait_caught_up(settings, timeout_s=300)
        yield Run(settings, sent, ready)
    finally:
        run_tessera(fuzz_env, "stream", "stop")


def _dlq_limit(admin: AdminClient, topic: str) -> int:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return int(admin.describe_configs([resource])[resource].result(timeout=30)["max.message.bytes"].value)


def test_the_dlq_topic_takes_dead_letters_of_the_largest_messages(run: Run) -> None:
    k = run.settings.kafka
    admin = AdminClient({"bootstrap.servers": k.bootstrap_servers, **k.client_options})
    assert _dlq_limit(admin, k.dlq_topic) == k.dlq_max_message_bytes  # made so
    # A DLQ topic of an older stack, at the broker's default, is raised by the next `services up`.
    entry = ConfigEntry("max.message.bytes", "1048588", incremental_operation=AlterConfigOpType.SET)
    lowered = ConfigResource(ConfigResource.Type.TOPIC, k.dlq_topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([lowered]).values():
        future.result(timeout=30)
    assert _dlq_limit(admin, k.dlq_topic) == 1048588
    KafkaBroker(run.settings).ensure_topics()
    assert _dlq_limit(admin, k.dlq_topic) == k.dlq_max_message_bytes


def test_every_hostile_message_is_in_the_dlq_once_with_a_reason(run: Run) -> None:
    letters = [json.loads(value) for value in consume_all(run.settings, run.settings.kafka.dlq_topic)]
    got = Counter(original(letter) for letter in letters)
    hostile = [s for s in run.sent if s.hostile is not None]
    missing = [s.hostile for s in hostile if got[s.value] == 0]
    assert not missing, f"not in the DLQ: {missing}"
    assert got == Counter(s.value for s in hostile), "every hostile message once, nothing else"
    by_original = {original(letter): letter for letter in letters}
    for message in hostile:
        letter = by_original[message.value]
        assert letter["code"] in REJECTION_CODES and letter["reason"], letter["reason"]
        assert letter["original_size"] == len(message.value or b"")
        again = parse_event(message.value, letter["stream_clock_ms"])
        assert again.code == letter["code"], (message.hostile, again)
        if message.expect_code is not None:
            assert letter["code"] == message.expect_code, (message.hostile, letter["code"], letter["reason"])


def test_the_job_and_the_sink_kept_running_without_a_restart(run: Run) -> None:
    processes = control.processes(run.settings)
    for name, process in processes.items():
        assert process.pid() is not None, \
            f"{name} died; log {process.log_file}:\n{process.log_file.read_text()[-3000:]}"
    # The validate operator writes this file when it opens: again on every restart of the job.
    assert _ready_file(run.settings).read_text() == run.ready_at_start, "the Flink job restarted"


def test_every_valid_event_was_counted(run: Run) -> None:
    events = [s.event for s in run.sent if s.event is not None]
    counted = [Ev(e.event_id, e.event_type, e.event_time, e.user_id, e.campaign_id, e.cost) for e in events]
    for view_name, keys in (("user_ad_activity", USERS), ("campaign_delivery", CAMPAIGNS)):
        key_field, oracle = ORACLES[view_name]
        rows = online_rows(run.settings, view_name, key_field, keys)
        assert set(rows) == set(keys), f"{view_name}: no online row for {set(keys) - set(rows)}"
        for key, (as_of, values) in rows.items():
            own = [e for e in counted if getattr(e, key_field) == key]
            assert as_of == max(e.event_time for e in own), (view_name, key, as_of)
            expected = oracle(own, as_of)
            for name, value in values.items():
                assert agree(expected[name], value), f"{view_name}:{name} key={key}: {value!r} != {expected[name]!r}"
    # The history the batch path rebuilds from holds exactly the valid events.
    wait_archived(run.settings, {e.event_id for e in events})
