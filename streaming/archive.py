"""The raw-history archiver: every valid event on ad_events -> the raw Parquet history (group
tessera-archive), and the stream clock (the newest valid event time) -> each view's progress hash.

Its own process, apart from the online writer (streaming/sink.py): archiving is bulk work (a
Python validation per event, a Parquet file per ten seconds), and in the writer's loop every batch
of feature rows waited for it. Apart, the freshness path never waits behind it, and `[sink]
archive_nice` can let it take only the CPU left over. Offsets are committed only after a batch is
written, so a crash replays rather than loses; files are named by their first offset, so a replayed
batch rewrites its own file.
    python -m streaming.archive
"""
from __future__ import annotations

import sys
import time

from streaming.consumer_groups import ARCHIVE as ARCHIVE_GROUP
from streaming.dead_letters import StreamValidator
from streaming.committing_consumer import CommittingConsumer
from streaming.progress import ClockPublisher
from streaming.retrying import run_steps, run_until_stopped
from tessera.config import Settings, load_settings
from tessera.definitions import load_definitions
from tessera.events import AdEvent
from tessera.raw_history import write_events


class Archiver:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        views = [v.name for v in load_definitions(settings.feature_repo).streaming_views()]
        self.clock = ClockPublisher.for_settings(settings, views)  # read by the API and the parity check
        self.consumer = CommittingConsumer(settings, ARCHIVE_GROUP, settings.kafka.topic, "archive",
                                           settings.sink.consumer_stuck_s)
        self.validator = StreamValidator()
        self.pending: list[AdEvent] = []
        # The batch's first offset names its file; the messages themselves are not held (twice the
        # memory of their events, for a batch that may be a catch-up's).
        self.first_offset: int | None = None
        self.pending_since = time.monotonic()
        self.events_archived = 0
        self.running = True

    def step(self) -> None:
        s = self.settings.sink
        for m in self.consumer.consume(num_messages=10_000, timeout=0.2):
            result = self.validator.check(m.value())
            if isinstance(result, AdEvent):
                self.pending.append(result)
            if self.first_offset is None:
                self.first_offset = m.offset()
        due = time.monotonic() - self.pending_since >= s.archive_batch_ms / 1000
        if self.first_offset is not None and (len(self.pending) >= s.archive_batch_events or due or not self.running):
            write_events(self.settings.raw_history_dir, self.pending, writer="stream", sequence=self.first_offset)
            self.consumer.commit_consumed()  # never waits for the broker
            self.events_archived += len(self.pending)
            self.pending, self.first_offset = [], None
            self.pending_since = time.monotonic()
        self.clock.note(self.validator.clock_ms)
        self.clock.maybe_publish(force=not self.running)

    def run(self) -> None:
        print(f"[archive] {self.settings.kafka.topic} -> {self.settings.raw_history_dir}", flush=True)
        ok = run_steps("archive", self.step, lambda: self.running,
                       lambda: f"events archived {self.events_archived:,}, stream clock {self.validator.clock_ms}")
        if ok:
            self.step()  # write what is held
        self.consumer.close()


def main() -> int:
    return run_until_stopped("archive", Archiver(load_settings()))


if __name__ == "__main__":
    sys.exit(main())
