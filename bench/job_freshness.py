"""How fresh the Flink job's output is, apart from the writer's: wall clock minus the newest as_of of
a view among the latest rows on the features topic (the job -> writer hop).

bench/soak.py's freshness goal is read where the API reads it (the writer's progress in Redis); when
it is missed this says which side of the writer the time went: a job that is behind, or a writer
(or a Kafka hop) that is."""
from __future__ import annotations

import re
import time
from typing import Iterable

from confluent_kafka import Consumer, TopicPartition

from tessera.config import Settings
from tessera.kafka_clients import client_config

_AS_OF = re.compile(rb'"as_of":(-?\d+)')


def newest_as_of(rows: Iterable[bytes], view: str) -> int | None:
    """The largest as_of among the rows of `view` (the job's rows: {"view":..,"key":..,"as_of":..,..})."""
    tag = b'"view":"%s"' % view.encode()
    newest: int | None = None
    for row in rows:
        if tag not in row:
            continue
        found = _AS_OF.search(row)
        if found is not None and (newest is None or int(found.group(1)) > newest):
            newest = int(found.group(1))
    return newest


class JobFreshness:
    """Reads the last `tail` rows of each partition of the features topic when asked."""

    def __init__(self, settings: Settings, view: str, tail: int = 200) -> None:
        self._consumer = Consumer(client_config(settings, **{"group.id": "tessera-soak-probe",
                                                             "enable.auto.commit": False}))
        topic = settings.kafka.features_topic
        self._topic, self._view, self._tail = topic, view, tail
        meta = self._consumer.list_topics(topic, timeout=10).topics[topic]
        self._partitions = sorted(meta.partitions)

    def sample_ms(self, timeout_s: float = 1.0) -> float | None:
        """Wall clock minus the newest as_of of the view in the rows read; None if none was."""
        starts, highs = [], []
        for p in self._partitions:
            low, high = self._consumer.get_watermark_offsets(TopicPartition(self._topic, p), timeout=timeout_s)
            if high > low:
                starts.append(TopicPartition(self._topic, p, max(low, high - self._tail)))
                highs.append(high)
        if not starts:
            return None
        self._consumer.assign(starts)
        held = sum(high - start.offset for start, high in zip(starts, highs))
        rows = [value for m in self._consumer.consume(held, timeout=timeout_s)
                if m.error() is None and (value := m.value()) is not None]
        newest = newest_as_of(rows, self._view)
        return None if newest is None else time.time() * 1000 - newest

    def close(self) -> None:
        self._consumer.close()
