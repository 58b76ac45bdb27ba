"""The newest offline row per key with event_timestamp in [start, end]: what Feast materializes.

Feast's file offline store reads the whole source, keeps rows with start <= timestamp <= end and,
per join key, the one with the newest timestamp, ties going to the newest `created`. This reads
only the date partitions that can hold the range (the backfill and the stream writer partition the
offline store by the UTC date of event_timestamp) and only the columns Feast would write, file by file and
batch by batch (row groups whose timestamp statistics miss the range are skipped), keeping per key
only its newest row: memory stays about one batch plus a row per key, however long the range.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BATCH_ROWS = 1 << 20


class OfflineDataError(ValueError):
    pass


@dataclass(frozen=True)
class OfflineSource:
    """Where a view's offline rows are and what they are called (from Feast's registry)."""

    path: Path
    join_key: str
    timestamp_field: str
    created_field: str | None
    features: list[str]


@dataclass(frozen=True)
class LatestRows:
    table: pa.Table  # join key, timestamp (epoch µs, int64), features: one row per key
    scanned: int     # offline rows read: in the range, or from a day's index
    partitions: int
    indexed: int = 0  # partitions read from the backfill's per-day index (batch/offline_index.py)


def newest_per_key(keys: np.ndarray, ts: np.ndarray, created: np.ndarray) -> np.ndarray:
    """Positions of each key's row with the newest (ts, created); of equal ones, the last. Hashing
    and three running maxima: linear, where sorting a day's rows was most of the read's time."""
    codes, uniques = pd.factorize(keys)
    lowest = np.iinfo(np.int64).min
    newest_ts = np.full(len(uniques), lowest)
    np.maximum.at(newest_ts, codes, ts)
    rows = np.flatnonzero(ts == newest_ts[codes])
    newest_created = np.full(len(uniques), lowest)
    np.maximum.at(newest_created, codes[rows], created[rows])
    rows = rows[created[rows] == newest_created[codes[rows]]]
    last = np.full(len(uniques), -1)
    np.maximum.at(last, codes[rows], rows)
    return last


def _reduce(table: pa.Table | pa.RecordBatch, source: OfflineSource, lo: int | None = None,
            hi: int | None = None) -> pa.Table | pa.RecordBatch:
    """Each key's newest row, among the rows with timestamps in [lo, hi] when those are given."""
    keys = table.column(source.join_key).to_numpy()
    ts = table.column(source.timestamp_field).to_numpy()
    created = table.column("__created").to_numpy()
    if lo is None or hi is None:
        return table.take(newest_per_key(keys, ts, created))
    inside = (ts >= lo) & (ts <= hi)
    if inside.all():
        return table.take(newest_per_key(keys, ts, created))
    rows = np.flatnonzero(inside)
    return table.take(rows[newest_per_key(keys[rows], ts[rows], created[rows])])


def partition_files(root: Path, first: date, last: date) -> list[tuple[str, list[Path]]]:
    """(partition name, its Parquet files) that can hold rows of [first, last], newest first. A
    folder without date= partitions (or a single file) is read whole."""
    if root.is_file():
        return [(root.name, [root])]
    if not root.is_dir():
        raise OfflineDataError(f"the offline store has no folder {root}: run `tessera backfill`")
    parts = sorted(root.glob("date=*"), reverse=True)
    if not parts:
        files = sorted(root.rglob("*.parquet"))
        if not files:
            raise OfflineDataError(f"the offline store has no Parquet files under {root}: run `tessera backfill`")
        return [(root.name, files)]
    if not any(any(p.glob("*.parquet")) for p in parts):
        raise OfflineDataError(f"the offline store has no Parquet files under {root}: run `tessera backfill`")
    chosen = []
    for part in parts:
        day = part.name.removeprefix("date=")
        if first.isoformat() <= day <= last.isoformat():
            # Only *.parquet: the stream writer's in-flight .tmp files are not rows yet.
            chosen.append((part.name, sorted(part.glob("*.parquet"))))
    return chosen


def _normalized(batch: pa.RecordBatch, source: OfflineSource) -> pa.RecordBatch:
    """The batch with µs int64 timestamps and a `__created` column (0 when the source has none);
    rows without a timestamp dropped, as Feast's range filter drops them."""
    ts = batch.column(source.timestamp_field)
    if ts.null_count:
        batch = batch.filter(pc.is_valid(ts))
        ts = batch.column(source.timestamp_field)
    columns = {source.join_key: batch.column(source.join_key).cast(pa.int64())}
    columns[source.timestamp_field] = _micros(ts)
    if source.created_field and source.created_field in batch.schema.names:
        columns["__created"] = pc.fill_null(_micros(batch.column(source.created_field)), 0)
    else:
        columns["__created"] = pa.array(np.zeros(batch.num_rows, dtype=np.int64))
    for name in source.features:
        columns[name] = batch.column(name)
    return pa.RecordBatch.from_pydict(columns)


def _micros(column: pa.Array) -> pa.Array:
    # Feast hands timestamps to the online store as Python datetimes: microsecond precision.
    if not pa.types.is_timestamp(column.type):
        raise OfflineDataError(f"a timestamp column holds {column.type}, not timestamps")
    return pc.cast(pc.cast(column, pa.timestamp("us", tz=column.type.tz or "UTC"), safe=False), pa.int64())


def latest_in_range(source: OfflineSource, start: datetime, end: datetime) -> LatestRows:
    from batch.offline_index import usable_index  # the index reads partitions with this module's rules

    start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    lo, hi = epoch_us(start), epoch_us(end)
    parts = partition_files(source.path, start.date(), end.date())
    newest: list[pa.Table] = []
    scanned = indexed = 0
    for name, files in parts:
        index = usable_index(source, name, files, lo, hi)
        if index is not None:  # the day lies wholly in the range: its newest row per key is known
            newest.append(index.table)
            scanned += index.table.num_rows
            indexed += 1
            files = index.uncovered(files)  # the stream's files written after the backfill
        table, rows = partition_latest(source, files, lo, hi)
        scanned += rows
        if table is not None:
            newest.append(table)
    if not newest:
        empty = {source.join_key: pa.array([], pa.int64()), source.timestamp_field: pa.array([], pa.int64())}
        return LatestRows(pa.table({**empty, **{f: pa.array([], pa.null()) for f in source.features}}), 0,
                          len(parts), indexed)
    table = _reduce(pa.concat_tables(newest, promote_options="permissive").combine_chunks(), source)
    return LatestRows(table.drop_columns(["__created"]), scanned, len(parts), indexed)


def partition_latest(source: OfflineSource, files: list[Path], lo: int | None = None,
                     hi: int | None = None) -> tuple[pa.Table | None, int]:
    """(each key's newest row among these files' rows in [lo, hi], or in all of them without bounds,
    normalized and with `__created`; the rows read). One row per key is kept per batch, so memory is
    about one batch plus a row per key however many rows the day had."""
    low = np.iinfo(np.int64).min if lo is None else lo
    high = np.iinfo(np.int64).max if hi is None else hi
    candidates = []
    scanned = 0
    for path in files:
        for batch in _batches(path, source, low, high):
            scanned += batch.num_rows
            candidates.append(pa.Table.from_batches([_reduce(_normalized(batch, source), source, lo, hi)]))
    if not candidates:
        return None, scanned
    return _reduce(pa.concat_tables(candidates, promote_options="permissive").combine_chunks(), source), scanned


def _batches(path: Path, source: OfflineSource, lo: int, hi: int) -> Iterator[pa.RecordBatch]:
    """A file's record batches with the columns Feast would write, from its row groups whose
    timestamp statistics overlap [lo, hi] (the rows themselves are checked by `_reduce`)."""
    file = pq.ParquetFile(path)
    names = file.schema_arrow.names
    wanted = [source.join_key, source.timestamp_field, *source.features]
    missing = [c for c in wanted if c not in names]
    if missing:
        raise OfflineDataError(f"offline file {path} lacks column(s) {', '.join(missing)}")
    columns = wanted + ([source.created_field] if source.created_field and source.created_field in names else [])
    ts_column = names.index(source.timestamp_field)
    groups = [i for i in range(file.num_row_groups) if _may_overlap(file.metadata.row_group(i), ts_column, lo, hi)]
    if groups:
        yield from file.iter_batches(batch_size=BATCH_ROWS, row_groups=groups, columns=columns)


def _may_overlap(group: pq.RowGroupMetaData, column: int, lo: int, hi: int) -> bool:
    stats = group.column(column).statistics
    if stats is None or not stats.has_min_max or not isinstance(stats.min, datetime):
        return True
    return epoch_us(stats.min) <= hi and epoch_us(stats.max) >= lo


def epoch_us(moment: datetime) -> int:
    if moment.tzinfo is None:  # Parquet statistics of a UTC-adjusted column come back naive
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
