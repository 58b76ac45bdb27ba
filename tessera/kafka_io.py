"""Producing generated messages to Kafka at a rate, and reading what the topics hold."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

from confluent_kafka import KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from tessera.config import Settings
from tessera.generator import Message

if TYPE_CHECKING:
    from confluent_kafka import Consumer


@dataclass
class ProduceReport:
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def make_producer(settings: Settings, **overrides: str) -> Producer:
    config = {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "linger.ms": 5,
        "batch.num.messages": 10_000,
        "compression.type": "lz4",
        "enable.idempotence": True,  # broker-side retries must not add duplicates of their own
        "message.timeout.ms": 30_000,
        **settings.kafka.client_options,
        **overrides,
    }
    return Producer(config)


def produce(settings: Settings, batches: Iterable[list[Message]], topic: str | None = None,
            pace: Callable[[int], None] | None = None,
            progress: Callable[[ProduceReport], None] | None = None) -> ProduceReport:
    """Send every message; `pace(n_sent)` may sleep to hold a rate. Waits for all deliveries."""
    topic = topic or settings.kafka.topic
    producer = make_producer(settings)
    report = ProduceReport()

    def delivered(err: object, _msg: object) -> None:
        if err is None:
            report.delivered += 1
        else:
            report.failed += 1
            if len(report.errors) < 5:
                report.errors.append(str(err))

    for batch in batches:
        for message in batch:
            if pace is not None:
                pace(report.sent)
            while True:
                try:
                    producer.produce(topic, value=message.value, key=message.key, on_delivery=delivered)
                    break
                except BufferError:  # local queue full: let deliveries drain
                    producer.poll(0.05)
            report.sent += 1
        producer.poll(0)
        if progress is not None:
            progress(report)
    remaining = producer.flush(60)
    if remaining:
        raise KafkaException(f"{remaining} messages were not delivered within 60 s; is the broker up?")
    return report


def inspector(settings: Settings) -> "Consumer":
    """A consumer that only looks: it joins no group's work and commits nothing."""
    from confluent_kafka import Consumer

    return Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "tessera-inspect",
                     "enable.auto.commit": False, **settings.kafka.client_options})


def offset_ranges(consumer: "Consumer", topic: str, partitions: Iterable[int],
                   timeout_s: float) -> dict[int, tuple[int, int]]:
    """Each partition's (low, high) watermark: the offsets of the messages it holds now."""
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s) for p in partitions}


def topic_message_counts(settings: Settings, topics: list[str], timeout_s: float = 10.0) -> dict[str, int]:
    """Messages each topic holds (high minus low watermark over its partitions); -1 for a missing topic."""
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers, **settings.kafka.client_options})
    metadata = admin.list_topics(timeout=timeout_s)
    consumer = inspector(settings)
    try:
        return {topic: sum(high - low for low, high in offset_ranges(
                    consumer, topic, metadata.topics[topic].partitions, timeout_s).values())
                if topic in metadata.topics else -1
                for topic in topics}
    finally:
        consumer.close()


class RatePacer:
    """Holds a producer to `rate` messages per second of wall-clock time."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.started = time.monotonic()

    def __call__(self, sent: int) -> None:
        due = self.started + sent / self.rate
        delay = due - time.monotonic()
        if delay > 0.002:
            time.sleep(delay)


def read_topic(settings: Settings, topic: str, timeout_s: float = 30.0) -> list[bytes]:
    """Every message a topic holds now. The partitions are assigned, not subscribed: a consumer
    group's join (and the broker's initial rebalance delay) can eat a loaded machine's timeout."""
    consumer = inspector(settings)
    out: list[bytes] = []
    try:
        meta = consumer.list_topics(topic, timeout=min(timeout_s, 10.0)).topics.get(topic)
        if meta is None or meta.error is not None:
            return []
        ranges = offset_ranges(consumer, topic, meta.partitions, min(timeout_s, 10.0))
        ends = {p: high for p, (low, high) in ranges.items() if high > low}
        if not ends:
            return []
        consumer.assign([TopicPartition(topic, p, ranges[p][0]) for p in ends])
        deadline = time.monotonic() + timeout_s
        while ends and time.monotonic() < deadline:
            for m in consumer.consume(1000, timeout=0.5):
                if m.error() is not None or m.partition() not in ends:
                    continue
                out.append(m.value())
                if m.offset() + 1 >= ends[m.partition()]:
                    del ends[m.partition()]
    finally:
        consumer.close()
    if ends:
        raise KafkaException(f"read {len(out)} messages of {topic} in {timeout_s:.0f} s, and partitions "
                             f"{sorted(ends)} not to their end")
    return out
