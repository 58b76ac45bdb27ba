"""Generated events through the real broker: what goes in comes out, byte for byte."""
from __future__ import annotations

import uuid

from confluent_kafka import Consumer

from tessera.config import Settings
from tessera.events import AdEvent, parse_event
from tessera.generator import EventGenerator, GeneratorConfig
from tessera.kafka_io import produce, topic_message_counts
from tests.stack import run_tessera


def consume_all(settings: Settings, topic: str, expected: int, timeout_s: float = 60) -> list[tuple[bytes, bytes]]:
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": f"t-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    out: list[tuple[bytes, bytes]] = []
    import time

    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=1.0):
                assert msg.error() is None, msg.error()
                out.append((msg.key(), msg.value()))
    finally:
        consumer.close()
    return out


def test_generated_events_round_trip_through_kafka(stack_settings: Settings) -> None:
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": stack_settings.kafka.bootstrap_servers})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(30)

    config = GeneratorConfig(seed=7, users=500, duplicates=0.05, invalid=0.05, out_of_order=0.05)
    batch = EventGenerator(config, start_ms=1_790_000_000_000, rate_per_s=500).take(3_000)
    report = produce(stack_settings, [batch], topic=topic)
    assert report.delivered == len(batch) and report.failed == 0

    received = consume_all(stack_settings, topic, expected=len(batch))
    assert sorted(received) == sorted((m.key, m.value) for m in batch)
    # The key is the user id as a decimal string, for valid events.
    for key, value in received:
        parsed = parse_event(value)
        if isinstance(parsed, AdEvent):
            assert key == str(parsed.user_id).encode()
    assert topic_message_counts(stack_settings, [topic])[topic] == len(batch)


def test_generate_command_produces_to_the_configured_topic(stack: dict[str, str], stack_settings: Settings) -> None:
    before = topic_message_counts(stack_settings, [stack_settings.kafka.topic])[stack_settings.kafka.topic]
    done = run_tessera(stack, "generate", "kafka", "--rate", "5000", "--duration", "1", "--no-realtime",
                       "--invalid", "0.1", "--seed", "3")
    assert done.returncode == 0, done.stderr
    assert "delivered 5,000, failed 0" in done.stderr
    after = topic_message_counts(stack_settings, [stack_settings.kafka.topic])[stack_settings.kafka.topic]
    assert after - before == 5_000
    listed = run_tessera(stack, "topics")
    assert "ad_events" in listed.stdout and "ad_events.dlq" in listed.stdout
