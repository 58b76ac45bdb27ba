"""Freshness and lag end to end on a real Kafka broker and Redis: the sink (streaming/sink.py, run
in process, no Flink) writes rows and publishes its progress; the feature API's /metrics and
/status.json report it with the consumer lag and the DLQ and late-topic counts from the broker."""
from __future__ import annotations

import json
import time
from typing import Iterator

import pytest
from confluent_kafka import Producer

from serving.app import create_app
from serving.pipeline_probe import probe_kafka
from streaming.aggregator import FeatureRow
from streaming.archive import Archiver
from streaming.consumer_groups import ARCHIVE, JOB, SINK
from streaming.progress import parse_progress, progress_key
from streaming.sink import Sink
from tessera.config import Settings
from tessera.definitions import load_definitions
from tessera.events import AdEvent
from tessera.services.redis_server import redis_client
from tests.serving.stack import TestClient, apply_registry
from tests.stack import own_base_port, run_tessera, settings_for, stack_env


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    env = stack_env(tmp_path_factory.mktemp("metrics-stack"), base_port=own_base_port())
    started = run_tessera(env, "services", "up")
    assert started.returncode == 0, f"tessera services up failed:\n{started.stdout}\n{started.stderr}"
    try:
        settings = settings_for(env)
        apply_registry(settings, load_definitions(settings.feature_repo))
        yield settings
    finally:
        stopped = run_tessera(env, "services", "down")
        assert stopped.returncode == 0, stopped.stderr


def produce(settings: Settings, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    for value in values:
        producer.produce(topic, value=value)
    assert producer.flush(30) == 0


def test_sink_progress_and_kafka_lag_reach_metrics(own_stack: Settings) -> None:
    settings = own_stack
    now = int(time.time() * 1000)
    clock = now - 1_000
    events = [AdEvent(f"e{i}", "impression", clock - 4_000 + 1_000 * i, 7, 70, 3, 0.002) for i in range(5)]
    produce(settings, settings.kafka.topic, [e.to_json_bytes() for e in events] + [b"not json"])
    rows = [FeatureRow("user_ad_activity", 7, clock - 4_000 + 1_000 * i, {"impressions_5m": i + 1}) for i in range(3)]
    rows += [FeatureRow("campaign_delivery", 3, clock - 30_000, {"impressions_1h": 1})]
    produce(settings, settings.kafka.features_topic, [r.to_json().encode() for r in rows])
    produce(settings, settings.kafka.dlq_topic, [b'{"code":"not_json"}'] * 2)
    produce(settings, settings.kafka.late_topic, [b"{}"])

    sink, archiver = Sink(settings), Archiver(settings)
    redis = redis_client(settings)
    try:
        deadline = time.monotonic() + 90
        while True:
            sink.step()
            archiver.step()
            progress = parse_progress("user_ad_activity", redis.hgetall(progress_key("user_ad_activity")))
            if progress is not None and progress.rows_total == 3 and progress.clock_ms == clock:
                break
            assert time.monotonic() < deadline, f"the writer and the archiver did not publish: {progress}"
        archiver.running = False
        archiver.step()  # writes the archive and commits its offsets, as the archiver does when it stops
    finally:
        sink.features.close()
        archiver.consumer.close()

    assert progress.as_of_ms == clock - 2_000 and progress.freshness_lag_ms == 2_000
    campaign = parse_progress("campaign_delivery", redis.hgetall(progress_key("campaign_delivery")))
    assert campaign is not None and campaign.rows_total == 1 and campaign.freshness_lag_ms == 30_000

    kafka = probe_kafka(settings)
    assert kafka.ok, kafka.error
    lags = {(l.group, l.topic): l.behind for l in kafka.lags}
    assert lags[(SINK, settings.kafka.features_topic)] == 0
    assert lags[(ARCHIVE, settings.kafka.topic)] == 0
    assert lags[(JOB, settings.kafka.topic)] == 6  # no Flink job here: it has committed nothing
    assert (kafka.dlq_messages, kafka.late_messages) == (2, 1)

    with TestClient(create_app(settings, environ={})) as client:
        deadline = time.monotonic() + 30
        while (status := client.get("/status.json").json())["kafka"]["state"] == "grey":  # a busy machine
            assert time.monotonic() < deadline, "the API's Kafka probe never finished"
            time.sleep(0.2)
        text = client.get("/metrics").text
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line and not line.startswith("#")}
    assert samples["tessera_kafka_up"] == 1.0
    assert samples[f'tessera_kafka_consumer_lag_messages{{group="{JOB}",topic="{settings.kafka.topic}"}}'] == 6.0
    assert samples[f'tessera_kafka_consumer_lag_messages{{group="{SINK}",topic="{settings.kafka.features_topic}"}}'] == 0.0
    assert samples["tessera_dlq_messages"] == 2.0 and samples["tessera_late_event_messages"] == 1.0
    assert samples['tessera_view_rows_written_total{view="user_ad_activity"}'] == 3.0
    assert samples['tessera_view_freshness_lag_seconds{view="user_ad_activity"}'] == 2.0
    assert samples['tessera_view_freshness_lag_seconds{view="campaign_delivery"}'] == 30.0

    assert status["kafka"]["ok"] is True and status["kafka"]["dlq_messages"] == 2
    stages = {l["stage"]: l["behind"] for l in status["kafka"]["lags"]}
    assert stages == {"job": 6, "writer": 0, "archive": 0}
    views = {v["view"]: v for v in status["views"]}
    assert views["user_ad_activity"]["state"] == "green"   # 2 s behind, budget 5 s
    assert views["campaign_delivery"]["state"] == "red"    # 30 s behind, over 3 budgets
    json.dumps(status)  # what /status.json sends is plain JSON
