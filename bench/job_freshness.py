"""How fresh the Flink job's output is, apart from the writer's: wall clock minus the newest as_of of
a view among the latest rows on the features topic (the job -> writer hop).

bench/soak.py's freshness goal is read where the API reads it (the writer's progress in Redis); when
it is missed this says which side of the writer the time went: a job that is behind, or a writer
(or a Kafka hop) that is."""
from __future__ import annotations

import re
import time
from typing import Iterable

from confluent_kafka import TopicPartition

from tessera.config import Settings
from tessera.kafka_io import inspector, offset_ranges

_AS_OF = re.compile(rb'"as_of":(-?\d+)')


def newest_as_of(rows: Iterable[bytes], view: str) -> int | None:
    """The largest as_of among the rows of `view` (the job's rows: {"view":..,"key":..,"as_of":..,..})."""
    tag = b'"view":"%s"' % view.encode()
    newest: int | None = None
    for row in rows:
        if tag not in row:
            continue
        found = _AS_OF.search(row)
        if found is not None:
            as_of = int(found.group(1))
            newest = as_of if newest is None else max(newest, as_of)
    return newest


class JobFreshness:
    """Reads the last `tail` rows of each partition of the features topic when asked."""

    def __init__(self, settings: Settings, view: str, tail: int = 200) -> None:
        self._consumer = inspector(settings)
        topic = settings.kafka.features_topic
        self._topic, self._view, self._tail = topic, view, tail
        self._partitions = sorted(self._consumer.list_topics(topic, timeout=10).topics[topic].partitions)

    def sample_ms(self, timeout_s: float = 1.0) -> float | None:
        """Wall clock minus the newest as_of of the view in the rows read; None if none was."""
        ranges = offset_ranges(self._consumer, self._topic, self._partitions, timeout_s)
        starts = [TopicPartition(self._topic, p, max(low, high - self._tail))
                  for p, (low, high) in ranges.items() if high > low]
        if not starts:
            return None
        self._consumer.assign(starts)
        held = sum(ranges[start.partition][1] - start.offset for start in starts)
        rows = [value for m in self._consumer.consume(held, timeout=timeout_s)
                if m.error() is None and (value := m.value()) is not None]
        newest = newest_as_of(rows, self._view)
        return None if newest is None else time.time() * 1000 - newest

    def close(self) -> None:
        self._consumer.close()
