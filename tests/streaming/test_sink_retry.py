"""The online writer (streaming/sink.py) on the real Kafka + Redis stack: it reports a batch's rows
as soon as they are online, and when the offline half then fails (a full disk), it tries that half
again without writing or counting the online half twice, and commits only once both are written."""
from __future__ import annotations

import re
from pathlib import Path

import redis

from streaming.aggregator import FeatureRow
from streaming.online_writer import OnlineBatch
from streaming.progress import parse_progress, progress_key
from streaming.sink import Sink
from tessera.config import Settings
from tests.streaming.feature_rows import committed, produce_rows, wait_committed, writer_settings

ROWS = 300


def test_offline_failure_retries_only_the_offline_half(stack_settings: Settings, tmp_path: Path) -> None:
    settings, definitions = writer_settings(stack_settings, tmp_path, "features-retry", db=7)
    view = definitions.view("user_ad_activity")
    rows = produce_rows(settings, definitions, ROWS)

    sink = Sink(settings)
    online_calls: list[int] = []
    offline_failures = [OSError("no space left on device")]  # the first offline write fails
    write_online, write_offline = sink.writer.write_online, sink.writer.write_offline

    def counting_online(batch_rows: list[FeatureRow], timings=None) -> OnlineBatch:  # type: ignore[no-untyped-def]
        online_calls.append(len(batch_rows))
        return write_online(batch_rows, timings)

    def failing_offline(batch: OnlineBatch, name: str, timings=None) -> None:  # type: ignore[no-untyped-def]
        if offline_failures:
            raise offline_failures.pop()
        write_offline(batch, name, timings)

    sink.writer.write_online, sink.writer.write_offline = counting_online, failing_offline  # type: ignore[method-assign]
    client = redis.Redis(host=settings.redis.host, port=settings.redis.port, db=settings.redis.db)
    try:
        failed = 0
        for _ in range(200):
            try:
                sink.step()
            except OSError:
                failed += 1
                progress = parse_progress(view.name, client.hgetall(progress_key(view.name)))
                # Online already: reported before the offline half, and the batch is not committed.
                assert progress is not None and progress.as_of_ms == max(r.as_of for r in rows[:online_calls[0]])
                assert committed(settings) == 0
            if sink.rows_written == ROWS:
                break
        sink.progress.maybe_publish(force=True)
        assert failed == 1
        assert sum(online_calls) == ROWS, "a batch's online half was written again after its offline half failed"
        progress = parse_progress(view.name, client.hgetall(progress_key(view.name)))
        assert progress is not None and progress.rows_total == ROWS
        offline = list((settings.offline_store_dir / view.name).rglob("stream-*.parquet"))
        assert offline, "the offline half was not written on the retry"
        wait_committed(sink, settings, ROWS, timeout_s=30)
        # The report splits the rows' age: as_of to the broker's append (the job's; these rows are
        # from 2026-05) and the append to online (the writer's, which this test held up by one retry).
        line = sink.report()
        job_s, writer_s = (float(x) for x in re.findall(r"newest as_of to Kafka ([\d.]+) s, Kafka to online ([\d.]+) s", line)[0])
        assert job_s > 86_400 and 0 <= writer_s < 60, line
    finally:
        sink.features.close()
        sink.writer.close()

