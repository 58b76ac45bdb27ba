"""The raw history keeps every accepted event, partitioned by its UTC date, and rewrites idempotently."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from tessera.generator import EventGenerator, GeneratorConfig
from tessera.raw_history import read_history, write_events

START = int(datetime(2026, 3, 1, 23, 0, tzinfo=timezone.utc).timestamp() * 1000)


def test_events_land_in_their_utc_date_and_rewrites_replace(tmp_path: Path) -> None:
    config = GeneratorConfig(seed=5, users=100, duplicates=0.05, late=0.05, out_of_order=0.05)
    messages = EventGenerator(config, START, rate_per_s=1.0).take(7_200)  # 23:00 -> 01:00 next day
    events = [m.event for m in messages if m.event is not None]
    write_events(tmp_path, events, writer="t", sequence=0)
    write_events(tmp_path, events, writer="t", sequence=0)  # same batch again: replaced, not appended

    table = read_history(tmp_path)
    assert table.num_rows == len(events)
    expected_dates = Counter(datetime.fromtimestamp(e.event_time / 1000, tz=timezone.utc).date().isoformat()
                             for e in events)
    assert Counter(table.column("date").to_pylist()) == expected_dates
    assert set(expected_dates) == {"2026-03-01", "2026-03-02"}
    got = sorted(zip(table.column("event_id").to_pylist(), table.column("event_time").to_pylist(),
                     table.column("cost").to_pylist()))
    assert got == sorted((e.event_id, e.event_time, e.cost) for e in events)


def test_empty_history_reads_as_an_empty_table(tmp_path: Path) -> None:
    assert read_history(tmp_path / "nothing").num_rows == 0
