"""Kafka consumers of the stream's Python processes (the online writer and the archiver)."""
from __future__ import annotations

import sys
from typing import Callable

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from tessera.config import Settings


def group_consumer(settings: Settings, group: str, topic: str,
                   on_commit: Callable[[KafkaError | None, list[TopicPartition]], None] | None = None,
                   on_assign: Callable[[Consumer, list[TopicPartition]], None] | None = None) -> Consumer:
    """A consumer that commits only what its caller has written (no auto-commit)."""
    callbacks = {} if on_commit is None else {"on_commit": on_commit}
    consumer = Consumer({**callbacks, "bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         # A batch held through an outage of Redis is not a consumer gone astray.
                         "max.poll.interval.ms": 3_600_000,
                         # The broker answers a fetch once it has 64 KB or after 50 ms, not with every
                         # few records: at a few thousand events/s that is the broker's main cost.
                         "fetch.min.bytes": 65_536, "fetch.wait.max.ms": 50,
                         # What librdkafka fetches ahead, bounded: by default up to 100,000 messages a
                         # partition or 64 MB, which a consumer that is behind (the archiver at its low
                         # priority) holds in memory: +55 MB of RSS in the soak's minute 10. A few seconds
                         # ahead is plenty to keep the loop fed.
                         "queued.min.messages": 20_000, "queued.max.messages.kbytes": 16_384,
                         **settings.kafka.client_options})
    if on_assign is None:
        consumer.subscribe([topic])
    else:
        consumer.subscribe([topic], on_assign=on_assign)
    return consumer


def batch_name(messages: list[Message]) -> str:
    first, last = messages[0], messages[-1]
    return f"p{first.partition()}-{first.offset()}-{last.offset()}"


def good_messages(messages: list[Message], name: str) -> list[Message]:
    """The messages that carry records; errors other than a partition's end are logged."""
    out = []
    for m in messages:
        if m.error() is None:
            out.append(m)
        elif m.error().code() != KafkaError._PARTITION_EOF:
            print(f"[{name}] kafka error: {m.error()}", file=sys.stderr, flush=True)
    return out
