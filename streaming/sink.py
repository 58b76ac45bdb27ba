"""The online writer, the process after the Flink job (runs in the platform environment, beside Feast):

  tessera.features -> Feast's Redis online store + the offline store   (group tessera-sink)

The raw history is the archiver's (streaming/archive.py), a process of its own, so that a batch of
rows never waits behind a batch of archived events. Offsets are committed only after a batch is
written, so a crash replays rather than loses; the commit never holds the loop
(streaming/committing_consumer.py).
    python -m streaming.sink
"""
from __future__ import annotations

import sys
import time

from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Message

from streaming.aggregator import FeatureRow
from streaming.consumer_groups import SINK as SINK_GROUP
from streaming.committing_consumer import CommittingConsumer
from streaming.kafka_batches import batch_name
from streaming.online_writer import OnlineBatch, OnlineOfflineWriter
from streaming.progress import ProgressPublisher
from streaming.retrying import run_steps, run_until_stopped
from streaming.stage_timings import StageTimings
from tessera.config import Settings, load_settings
from tessera.definitions import load_definitions


class Sink:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.writer = OnlineOfflineWriter(settings, load_definitions(settings.feature_repo))
        self.progress = ProgressPublisher.for_settings(settings, self.writer.views)  # read by the API
        self.features = CommittingConsumer(settings, SINK_GROUP, settings.kafka.features_topic, "sink",
                                           settings.sink.consumer_stuck_s)
        self.unwritten: list[Message] = []
        self.online: tuple[list[FeatureRow], OnlineBatch] | None = None  # the unwritten batch, written online
        self.rows_written = 0
        self.batches = 0
        self.timings = StageTimings()
        self.timings.track_gc()
        self.last_as_of = 0
        self.worst_job_ms = self.worst_writer_ms = -1.0  # since the last report line
        self.running = True

    def step(self) -> None:
        s = self.settings.sink
        # A batch that could not be written is kept and written again, never re-fetched: after a
        # broker restart a fetch from the committed offset can be refused and reset.
        t = self.timings
        if not self.unwritten:
            with t.stage("consume"):
                self.unwritten = self.features.consume(num_messages=s.batch_rows, timeout=s.batch_ms / 1000)
        if self.unwritten:
            batch = self.unwritten
            if self.online is None:
                with t.stage("decode"):
                    rows = [FeatureRow.from_json(m.value()) for m in batch]
                self.online = (rows, self.writer.write_online(rows, t))
                self._note_delays(batch, rows)
                # What the API serves has moved: say so now, not after the offline files and the
                # commit (they took a fifth of the loop in bench/soak.py), nor up to a second later.
                self.progress.note(rows)
                with t.stage("publish"):
                    self.progress.maybe_publish(force=True)
            rows, online = self.online
            # A failure from here on is tried again from here: the online half is not written twice.
            self.writer.write_offline(online, batch_name(batch), t)
            with t.stage("commit"):
                self.features.commit_consumed()  # the end of this batch; never waits for the broker
            self.unwritten, self.online = [], None
            self.batches += 1
            self.rows_written += len(rows)
            self.last_as_of = max(self.last_as_of, max(r.as_of for r in rows))
        with t.stage("publish"):
            self.progress.maybe_publish(force=not self.running)

    def _note_delays(self, batch: list[Message], rows: list[FeatureRow]) -> None:
        """The two halves of a view's freshness when a batch goes online: from its newest as_of to
        the broker's newest append among its rows (the job's side; a single row's as_of may be
        older on purpose: an out-of-order event's correction), and from the batch's oldest append
        to now (the writer's: waiting in Kafka, then its own loop). Only with the broker's append
        time (`tessera services up` sets it on the features topic): a producer's create time would
        say nothing of the job."""
        now_ms = time.time() * 1000
        appended = [m.timestamp() for m in batch]
        if any(kind != TIMESTAMP_LOG_APPEND_TIME for kind, _ in appended):
            return
        newest: dict[str, tuple[int, int]] = {}  # view -> (newest as_of, newest append)
        for (_, at), row in zip(appended, rows):
            as_of, append = newest.get(row.view, (row.as_of, at))
            newest[row.view] = (max(as_of, row.as_of), max(append, at))
        self.worst_job_ms = max(self.worst_job_ms, *(append - as_of for as_of, append in newest.values()))
        self.worst_writer_ms = max(self.worst_writer_ms, now_ms - min(at for _, at in appended))

    def report(self) -> str:
        # The newest as_of's age is the writer's freshness as the API sees it; the stages say where
        # the loop's time went since the last line.
        age = f"{time.time() - self.last_as_of / 1000:.1f} s old" if self.last_as_of else "none yet"
        delays = (f"worst newest as_of to Kafka {self.worst_job_ms / 1000:.1f} s, Kafka to online "
                  f"{self.worst_writer_ms / 1000:.1f} s; " if self.worst_writer_ms >= 0 else "")
        self.worst_job_ms = self.worst_writer_ms = -1.0
        return (f"rows written {self.rows_written:,} in {self.batches:,} batches, newest as_of "
                f"{self.last_as_of} ({age}); {delays}{self.timings.take_summary()}")

    def run(self) -> None:
        print(f"[sink] {self.settings.kafka.features_topic} -> redis {self.settings.redis.host}:"
              f"{self.settings.redis.port} + {self.settings.offline_store_dir}", flush=True)
        ok = run_steps("sink", self.step, lambda: self.running, self.report)
        if ok:
            self.step()  # write what is buffered
        self.features.close()
        self.writer.close()


def main() -> int:
    return run_until_stopped("sink", Sink(load_settings()))


if __name__ == "__main__":
    sys.exit(main())
