"""The online writer's offset commits on the real Kafka + Redis stack (streaming/committing_consumer.py):
a broker that stops answering never holds the writer's loop, and a consumer whose commits are never
acknowledged (librdkafka's wedged group coordinator) is replaced and reads on without reading twice."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from streaming.committing_consumer import CommittingConsumer
from streaming.consumer_groups import SINK as SINK_GROUP
from streaming.kafka_batches import group_consumer
from streaming.sink import Sink
from tessera.config import Settings
from tessera.services.kafka_broker import KafkaBroker
from tests.streaming.feature_rows import committed, produce_rows, wait_committed, writer_settings

ROWS = 300
BATCH = 50
STEP_BOUND_S = 5.0
STUCK_S = 5.0
MORE = 100


def _bounded_step(sink: Sink) -> float:
    """One step on a thread of its own; fails if it does not return within STEP_BOUND_S."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            sink.step()
        except BaseException as err:  # noqa: BLE001  (reported below)
            errors.append(err)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(STEP_BOUND_S)
    assert not thread.is_alive(), f"a step of the writer waited more than {STEP_BOUND_S} s for the frozen broker"
    assert not errors, errors
    return time.monotonic() - started


def test_a_frozen_broker_never_holds_the_writer(stack_settings: Settings, tmp_path: Path) -> None:
    settings, definitions = writer_settings(stack_settings, tmp_path, "features-frozen", db=11)
    settings.sink.batch_rows = BATCH
    produce_rows(settings, definitions, ROWS)
    sink = Sink(settings)
    broker = KafkaBroker(settings).process.pid()
    assert broker is not None
    frozen = False
    try:
        deadline = time.monotonic() + 60
        while sink.rows_written < BATCH:
            assert time.monotonic() < deadline, "the writer wrote nothing"
            sink.step()
        time.sleep(1)  # librdkafka has fetched the rest ahead: the writer can go on without the broker
        os.kill(broker, signal.SIGSTOP)  # connections stay open, nothing is answered: the worst case
        frozen = True
        while sink.rows_written < ROWS:
            _bounded_step(sink)
        assert sink.features.unacknowledged, "the broker was not frozen: every commit was acknowledged"
        os.kill(broker, signal.SIGCONT)
        frozen = False
        wait_committed(sink, settings, ROWS)
        assert sink.rows_written == ROWS
    finally:
        if frozen:
            os.kill(broker, signal.SIGCONT)
        sink.features.close()
        sink.writer.close()


class _NeverAcknowledged:
    """A consumer whose commits vanish, as with the wedged coordinator: nothing is sent or answered."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.commits = 0

    def commit(self, *args: Any, **kwargs: Any) -> None:
        self.commits += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.consumer, name)


class _StopsReading(_NeverAcknowledged):
    """A consumer that stops fetching once `stall()`ed (its partitions paused), its partition holding
    more; its commits and their acknowledgements work."""

    def commit(self, *args: Any, **kwargs: Any) -> None:
        self.consumer.commit(*args, **kwargs)

    def stall(self) -> None:
        self.consumer.pause(self.consumer.assignment())


class _FirstWedged:
    """Makes the group's consumers; the first one is wedged (by `wedge`), the replacements are real."""

    def __init__(self, wedge: type[_NeverAcknowledged] = _NeverAcknowledged) -> None:
        self.wedge = wedge
        self.made: list[Any] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        consumer = group_consumer(*args, **kwargs)
        self.made.append(consumer if self.made else self.wedge(consumer))
        return self.made[-1]


def test_a_wedged_consumer_is_replaced_and_reads_on_without_reading_twice(
        stack_settings: Settings, tmp_path: Path) -> None:
    settings, definitions = writer_settings(stack_settings, tmp_path, "features-wedged", db=12)
    settings.sink.batch_rows = BATCH
    produce_rows(settings, definitions, ROWS)
    factory = _FirstWedged()
    sink = Sink(settings)
    sink.features.close()
    sink.features = CommittingConsumer(settings, SINK_GROUP, settings.kafka.features_topic, "sink",
                                       stuck_after_s=STUCK_S, make=factory)
    try:
        deadline = time.monotonic() + 60
        while sink.rows_written < ROWS:
            assert time.monotonic() < deadline, "the writer did not write every row"
            sink.step()
        assert factory.made[0].commits > 0 and committed(settings) == 0 and len(factory.made) == 1
        # The wedge is found in the step that reads the next rows: the replacement must start after
        # them (the writer holds them), not at the last commit the wedged consumer was given.
        time.sleep(STUCK_S)
        produce_rows(settings, definitions, MORE, first_key=ROWS + 1)
        time.sleep(1)  # fetched ahead by the wedged consumer
        wait_committed(sink, settings, ROWS + MORE)
        assert sink.features.rebuilds == 1 and len(factory.made) == 2
        for _ in range(20):
            sink.step()
        assert sink.rows_written == ROWS + MORE, f"{sink.rows_written - ROWS - MORE} rows read and written twice"
    finally:
        sink.features.close()
        sink.writer.close()


def test_a_replacement_reads_on_after_what_the_caller_holds(stack_settings: Settings, tmp_path: Path) -> None:
    """The archiver holds events it has read but not written (a file per ten seconds): a replacement
    must start after them, not at the last commit, or they are read and archived twice."""
    settings, definitions = writer_settings(stack_settings, tmp_path, "features-held", db=13)
    produce_rows(settings, definitions, ROWS)
    factory = _FirstWedged()
    consumer = CommittingConsumer(settings, f"held-{tmp_path.name}", settings.kafka.features_topic, "test",
                                  stuck_after_s=STUCK_S, make=factory)
    seen: list[int] = []

    def read(count: int) -> None:
        deadline = time.monotonic() + 60
        while len(seen) < count:
            assert time.monotonic() < deadline, f"read {len(seen)} of {count}"
            seen.extend(m.offset() for m in consumer.consume(num_messages=count - len(seen), timeout=0.5))

    try:
        read(100)
        consumer.commit_consumed()  # written
        read(150)  # held
        time.sleep(STUCK_S)
        read(ROWS)
        for _ in range(10):
            seen.extend(m.offset() for m in consumer.consume(num_messages=ROWS, timeout=0.5))
        assert consumer.rebuilds == 1 and len(factory.made) == 2
        assert sorted(seen) == list(range(ROWS)), f"{len(seen) - len(set(seen))} messages read twice"
    finally:
        consumer.close()


def test_a_consumer_that_stops_reading_is_replaced(stack_settings: Settings, tmp_path: Path) -> None:
    settings, definitions = writer_settings(stack_settings, tmp_path, "features-stalled", db=14)
    settings.sink.batch_rows = BATCH
    produce_rows(settings, definitions, ROWS)
    factory = _FirstWedged(_StopsReading)
    sink = Sink(settings)
    sink.features.close()
    sink.features = CommittingConsumer(settings, SINK_GROUP, settings.kafka.features_topic, "sink",
                                       stuck_after_s=STUCK_S, make=factory)
    try:
        wait_committed(sink, settings, ROWS)
        factory.made[0].stall()
        produce_rows(settings, definitions, MORE, first_key=ROWS + 1)
        wait_committed(sink, settings, ROWS + MORE)
        assert sink.features.rebuilds == 1 and len(factory.made) == 2
        assert sink.rows_written == ROWS + MORE
    finally:
        sink.features.close()
        sink.writer.close()
