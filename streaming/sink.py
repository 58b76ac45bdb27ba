"""The process after the Flink job (runs in the platform environment, beside Feast):

  tessera.features -> Feast's Redis online store + the offline store   (group tessera-sink)
  ad_events        -> the raw Parquet history, valid events only         (group tessera-archive)

Offsets are committed only after a batch is written, so a crash replays rather than loses.
    python -m streaming.sink
"""
from __future__ import annotations

import signal
import sys
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message
from redis.exceptions import RedisError

from batch.online_bulk_writer import OnlineWriteError
from streaming.aggregator import FeatureRow
from streaming.dead_letters import StreamValidator
from streaming.online_writer import OnlineOfflineWriter
from streaming.progress import ProgressPublisher
from tessera.config import Settings, load_settings
from tessera.definitions import load_definitions
from tessera.events import AdEvent
from tessera.raw_history import write_events

from streaming.consumer_groups import ARCHIVE as ARCHIVE_GROUP, SINK as SINK_GROUP

MAX_BACKOFF_S = 5.0


def _consumer(settings: Settings, group: str, topic: str) -> Consumer:
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         # A batch held through an outage of Redis is not a consumer gone astray.
                         "max.poll.interval.ms": 3_600_000,
                         # The broker answers a fetch once it has 64 KB or after 50 ms, not with every
                         # few records: at a few thousand events/s that is the broker's main cost.
                         "fetch.min.bytes": 65_536, "fetch.wait.max.ms": 50,
                         **settings.kafka.client_options})
    consumer.subscribe([topic])
    return consumer


def _batch_name(messages: list[Message]) -> str:
    first, last = messages[0], messages[-1]
    return f"p{first.partition()}-{first.offset()}-{last.offset()}"


def _good(messages: list[Message]) -> list[Message]:
    out = []
    for m in messages:
        if m.error() is None:
            out.append(m)
        elif m.error().code() != KafkaError._PARTITION_EOF:
            print(f"[sink] kafka error: {m.error()}", file=sys.stderr, flush=True)
    return out


class Sink:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.writer = OnlineOfflineWriter(settings, load_definitions(settings.feature_repo))
        self.progress = ProgressPublisher.for_settings(settings, self.writer.views)  # read by the API
        self.features = _consumer(settings, SINK_GROUP, settings.kafka.features_topic)
        self.archive = _consumer(settings, ARCHIVE_GROUP, settings.kafka.topic)
        self.validator = StreamValidator()
        self.pending: list[AdEvent] = []
        self.pending_messages: list[Message] = []
        self.unwritten: list[Message] = []
        self.pending_since = time.monotonic()
        self.rows_written = self.events_archived = 0
        self.last_as_of = 0
        self.running = True

    def step(self) -> None:
        s = self.settings.sink
        # A batch that could not be written is kept and written again, never re-fetched: after a
        # broker restart a fetch from the committed offset can be refused and reset.
        if not self.unwritten:
            self.unwritten = _good(self.features.consume(num_messages=s.batch_rows, timeout=s.batch_ms / 1000))
        if self.unwritten:
            batch = self.unwritten
            rows = [FeatureRow.from_json(m.value()) for m in batch]
            written = self.writer.write(rows, _batch_name(batch))
            self.features.commit(asynchronous=False)  # the positions: the end of this batch
            self.unwritten = []
            self.rows_written += written
            self.last_as_of = max(self.last_as_of, max(r.as_of for r in rows))
            self.progress.note(rows)
        for m in _good(self.archive.consume(num_messages=10_000, timeout=0)):
            result = self.validator.check(m.value())
            if isinstance(result, AdEvent):
                self.pending.append(result)
            self.pending_messages.append(m)
        due = time.monotonic() - self.pending_since >= s.archive_batch_ms / 1000
        if self.pending_messages and (len(self.pending) >= s.archive_batch_events or due or not self.running):
            write_events(self.settings.raw_history_dir, self.pending, writer="stream",
                         sequence=self.pending_messages[0].offset())
            self.archive.commit(asynchronous=False)
            self.events_archived += len(self.pending)
            self.pending, self.pending_messages = [], []
            self.pending_since = time.monotonic()
        self.progress.maybe_publish(self.validator.clock_ms, force=not self.running)

    def run(self) -> None:
        last_report = time.monotonic()
        print(f"[sink] {self.settings.kafka.features_topic} -> redis {self.settings.redis.host}:"
              f"{self.settings.redis.port} + {self.settings.offline_store_dir}; {self.settings.kafka.topic} -> "
              f"{self.settings.raw_history_dir}", flush=True)
        failures = 0
        while self.running:
            try:
                self.step()
                if failures:
                    print(f"[sink] recovered after {failures} failed attempt(s)", flush=True)
                failures = 0
            except (KafkaException, RedisError, OnlineWriteError, OSError) as err:
                # Redis or the broker is away: wait and write the same batch again, never skip it.
                failures += 1
                delay = min(MAX_BACKOFF_S, 0.25 * 2 ** min(failures, 5))
                print(f"[sink] {type(err).__name__}: {err}; retrying what is not written yet "
                      f"in {delay:.1f} s (attempt {failures})", file=sys.stderr, flush=True)
                time.sleep(delay)
                continue
            if time.monotonic() - last_report >= 5:
                last_report = time.monotonic()
                print(f"[sink] rows written {self.rows_written:,}, newest as_of {self.last_as_of}, "
                      f"events archived {self.events_archived:,}", flush=True)
        if not failures:
            self.step()  # flush what is buffered
        self.features.close()
        self.archive.close()
        self.writer.close()


def main() -> int:
    sink = Sink(load_settings())

    def stop(*_: Any) -> None:
        sink.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sink.run()
    print("[sink] stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
