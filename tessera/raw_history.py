"""The raw event history: every valid event as Parquet, partitioned by UTC date.

Layout: <data_dir>/raw/ad_events/date=YYYY-MM-DD/<writer>-<sequence>.parquet. Writers name their
files deterministically, so writing the same batch again replaces it instead of adding a copy.
Duplicated event_ids may be present (producers retry); readers de-duplicate.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from tessera.events import AdEvent

SCHEMA = pa.schema([
    ("event_id", pa.string()),
    ("event_type", pa.string()),
    ("event_time", pa.int64()),
    ("user_id", pa.int64()),
    ("ad_id", pa.int64()),
    ("campaign_id", pa.int64()),
    ("cost", pa.float64()),
])


def utc_date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def events_table(events: Iterable[AdEvent]) -> pa.Table:
    rows = list(events)
    return pa.table({name: [getattr(e, name) for e in rows] for name in SCHEMA.names}, schema=SCHEMA)


def write_events(root: Path, events: Iterable[AdEvent], writer: str, sequence: int) -> dict[str, int]:
    """Write one batch, split by date. Returns rows written per date."""
    by_date: dict[str, list[AdEvent]] = {}
    for event in events:
        by_date.setdefault(utc_date(event.event_time), []).append(event)
    written = {}
    for date, rows in by_date.items():
        folder = root / f"date={date}"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{writer}-{sequence:06d}.parquet"
        tmp = target.with_suffix(".parquet.tmp")
        pq.write_table(events_table(rows), tmp, compression="zstd")
        tmp.replace(target)  # readers never see half a file
        written[date] = len(rows)
    return written


def read_history(root: Path) -> pa.Table:
    """All of it, with the `date` partition column recovered (for tests and small tools)."""
    if not root.exists() or not any(root.glob("date=*/*.parquet")):
        return SCHEMA.append(pa.field("date", pa.string())).empty_table()
    dataset = ds.dataset(root, format="parquet", partitioning=ds.partitioning(
        pa.schema([("date", pa.string())]), flavor="hive"))
    return dataset.to_table()
