"""A group consumer for the online writer and the archiver whose commits never hold their loop.

librdkafka's synchronous commit waits for the group coordinator without a bound. Through a broker
restart it held the caller for the whole outage (18 s of each 17 s outage, in a loop of restarts),
and once, in CI, for good: after the restart the commit request stayed queued ("GroupCoordinator:
Timed out 0 in-flight, 0 retry-queued, 1 out-queue" every 60 s) and the writer never wrote again.

Here what the caller has written is committed asynchronously, and the positions are tracked:
- a commit that fails is sent again a second later (a later batch's commit covers it too);
- when commits stay unacknowledged, the consumer holds no partition, or it reads nothing while its
  partitions hold more, for `stuck_after_s` while the broker answers, the consumer is wedged: it is
  replaced by a new one, which starts where the caller stopped reading, not at the last commit, so
  nothing is read twice;
- a partition assigned again (after a lost session) is read on from the same point, for the same reason.
The writer is the only member of its group (one process), so the positions it holds are the
partitions' true ones. A crash still resumes at the last commit and replays what followed.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from streaming.kafka_batches import good_messages, group_consumer
from tessera.config import Settings

RETRY_S = 1.0
ConsumerFactory = Callable[..., Consumer]


class CommittingConsumer:
    def __init__(self, settings: Settings, group: str, topic: str, name: str, stuck_after_s: float,
                 make: ConsumerFactory = group_consumer) -> None:
        self.settings, self.group, self.topic, self.name = settings, group, topic, name
        self.stuck_after_s = stuck_after_s
        self.make = make
        # By partition of `topic`, the one topic subscribed:
        self.consumed: dict[int, int] = {}  # the next offset to read, after what the caller holds
        self.unacknowledged: dict[int, int] = {}  # committed asynchronously, not confirmed yet
        self.retry_at: float | None = None
        self.failures = 0
        self.rebuilds = 0
        self._lock = threading.Lock()  # librdkafka's callbacks run on the caller's thread; the close doesn't
        self.consumer = self._new_consumer()

    def _new_consumer(self) -> Consumer:
        consumer = self.make(self.settings, self.group, self.topic, on_commit=self._on_commit,
                             on_assign=self._on_assign)
        self.since = time.monotonic()  # the last sign of life of the group: created, assigned, acknowledged
        self.read_at = self.since  # the last message read
        return consumer

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        messages = good_messages(self.consumer.consume(num_messages=num_messages, timeout=timeout), self.name)
        # A partition's messages come in order: its last one wins (a batch is thousands; no per-message topic).
        self.consumed.update({m.partition(): m.offset() + 1 for m in messages})
        if messages:
            self.read_at = time.monotonic()
        self._look_after()
        return messages

    def commit_consumed(self) -> None:
        """Everything consumed so far is written: commit it, without waiting for the broker."""
        with self._lock:
            if not self.unacknowledged:
                self.since = time.monotonic()
            self.unacknowledged.update(self.consumed)
        self._send()

    def _send(self) -> None:
        with self._lock:
            offsets = [TopicPartition(self.topic, p, o) for p, o in self.unacknowledged.items()]
        if not offsets:
            return
        self.retry_at = None
        try:
            self.consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as err:  # refused at once (no assignment yet, say): the retry sends it
            self._failed(err.args[0])

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if err is not None:
            self._failed(err)
            return
        refused = [tp.error for tp in partitions if tp.error is not None]
        if not refused and self.failures:
            print(f"[{self.name}] offsets committed again after {self.failures} failed commit(s)", flush=True)
            self.failures = 0
        with self._lock:
            self.since = time.monotonic()
            for tp in partitions:
                if tp.error is None and tp.offset >= self.unacknowledged.get(tp.partition, tp.offset + 1):
                    del self.unacknowledged[tp.partition]
        if refused:
            self._failed(refused[0])

    def _failed(self, err: KafkaError) -> None:
        if self.failures % 30 == 0:  # the first, then every half minute
            print(f"[{self.name}] offset commit failed ({err.str()}); sending it again every {RETRY_S:.0f} s "
                  f"(failure {self.failures + 1})", file=sys.stderr, flush=True)
        self.failures += 1
        self.retry_at = time.monotonic() + RETRY_S

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            tp.offset = self.consumed.get(tp.partition, tp.offset)
        consumer.assign(partitions)
        self.since = time.monotonic()

    def _look_after(self) -> None:
        now = time.monotonic()
        if self.retry_at is not None and now >= self.retry_at:
            self._send()
        why = self._wedged(now)
        if why is None:
            return
        if not self._broker_answers():
            print(f"[{self.name}] {why}; the broker is away, waiting for it", file=sys.stderr, flush=True)
            self.since = self.read_at = now
            return
        self._rebuild(f"{why}, and the broker answers")

    def _wedged(self, now: float) -> str | None:
        """Why the consumer looks wedged, if it does."""
        if now - self.since >= self.stuck_after_s:
            if self.unacknowledged:
                return f"offsets not acknowledged for {now - self.since:.0f} s"
            if not self.consumer.assignment():
                return f"no partition assigned for {now - self.since:.0f} s"
        if now - self.read_at >= self.stuck_after_s:
            idle, self.read_at = now - self.read_at, now  # looked at once a period: it asks the broker
            if self._behind():
                return f"nothing read for {idle:.0f} s while the topic holds more"
        return None

    def _behind(self) -> bool:
        """Whether an assigned partition holds messages past the ones read (only those read from)."""
        try:
            for tp in self.consumer.assignment():
                read_to = self.consumed.get(tp.partition)
                if read_to is not None and self.consumer.get_watermark_offsets(tp, timeout=2.0)[1] > read_to:
                    return True
        except KafkaException:
            return False  # the broker is away: the consumer is not the one to blame
        return False

    def _broker_answers(self) -> bool:
        try:
            self.consumer.list_topics(self.topic, timeout=2.0)
            return True
        except KafkaException:
            return False

    def _rebuild(self, why: str) -> None:
        self.rebuilds += 1
        print(f"[{self.name}] {why}: the Kafka consumer is wedged; replacing it (it reads on from where "
              f"it stopped; rebuild {self.rebuilds})", file=sys.stderr, flush=True)
        old = self.consumer
        # Its close may wait for the wedged coordinator without end (librdkafka #3740): not here.
        threading.Thread(target=old.close, name=f"{self.name}-close-wedged", daemon=True).start()
        self.consumer = self._new_consumer()
        self._send()

    def close(self) -> None:
        """Sends what is unacknowledged once more; the close waits for outstanding commits (the
        caller's stop grace bounds it, streaming/retrying.py)."""
        self._send()
        self.consumer.close()
