"""The job's output topics take the broker's append time as their records' timestamps.

The job stamps its records with event time, and the broker's retention (7 days) goes by timestamp:
a replay of older events saw its late events and feature rows deleted at the next retention check,
minutes after they were written (CI: `Deleting segment ... pipeline.late-0 ... due to log retention
time 604800000ms breach`, and tests reading the late topic found it empty).
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from tessera.config import Settings
from tessera.kafka_io import read_topic
from tessera.services.kafka_broker import KafkaBroker
from tests.stack import settings_for

MARCH = int(datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp() * 1000)


@pytest.fixture(scope="module")
def stamps_settings(stack: dict[str, str]) -> Settings:
    settings = settings_for({**stack, "TESSERA_KAFKA__TOPIC": "stamps.ad_events", "TESSERA_KAFKA__DLQ_TOPIC": "stamps.dlq",
                             "TESSERA_KAFKA__LATE_TOPIC": "stamps.late", "TESSERA_KAFKA__FEATURES_TOPIC": "stamps.features"})
    KafkaBroker(settings).ensure_topics()
    return settings


def _timestamp_type(admin: AdminClient, topic: str) -> str:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return admin.describe_configs([resource])[resource].result(timeout=30)["message.timestamp.type"].value


def _admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers, **settings.kafka.client_options})


def test_a_record_stamped_in_march_is_kept_by_the_time_it_was_written(stamps_settings: Settings) -> None:
    k = stamps_settings.kafka
    admin = _admin(stamps_settings)
    assert {t: _timestamp_type(admin, t) for t in (k.features_topic, k.late_topic, k.dlq_topic)} == \
        dict.fromkeys((k.features_topic, k.late_topic, k.dlq_topic), "LogAppendTime")
    assert _timestamp_type(admin, k.topic) == "CreateTime"  # the events keep their producers' stamps
    producer = Producer({"bootstrap.servers": k.bootstrap_servers, **k.client_options})
    before = int(time.time() * 1000)
    producer.produce(k.late_topic, value=b'{"late": true}', timestamp=MARCH)
    producer.produce(k.topic, value=b'{"event": true}', timestamp=MARCH)
    assert producer.flush(30) == 0
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": k.bootstrap_servers, "group.id": "stamps", **k.client_options})
    try:
        stamped = {}
        for topic in (k.late_topic, k.topic):
            consumer.assign([TopicPartition(topic, 0, 0)])
            message = next(m for m in iter(lambda: consumer.poll(10), None) if m.error() is None)
            stamped[topic] = message.timestamp()
    finally:
        consumer.close()
    kind, at = stamped[k.late_topic]
    assert kind == TIMESTAMP_LOG_APPEND_TIME and before - 1_000 <= at <= int(time.time() * 1000) + 1_000
    assert stamped[k.topic] == (TIMESTAMP_CREATE_TIME, MARCH)
    assert read_topic(stamps_settings, k.late_topic) == [b'{"late": true}']


def test_an_older_stacks_topic_is_set_to_append_time_by_services_up(stamps_settings: Settings) -> None:
    k = stamps_settings.kafka
    admin = _admin(stamps_settings)
    entry = ConfigEntry("message.timestamp.type", "CreateTime", incremental_operation=AlterConfigOpType.SET)
    for future in admin.incremental_alter_configs(
            [ConfigResource(ConfigResource.Type.TOPIC, k.features_topic, incremental_configs=[entry])]).values():
        future.result(timeout=30)
    assert _timestamp_type(admin, k.features_topic) == "CreateTime"
    KafkaBroker(stamps_settings).ensure_topics()
    assert _timestamp_type(admin, k.features_topic) == "LogAppendTime"
