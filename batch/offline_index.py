"""Each date partition's newest row per key, written by the backfill beside the offline store.

A materialization over whole days needs only each key's newest row per day, but the offline store
holds a row per change point (about 30 per key per day at the benchmark's volume), so reading the
partitions is most of a run. The backfill therefore also writes, per partition, its newest row per
key (`<offline store>/_index/<view>/date=D.parquet`, outside the folders Feast and Spark read).

An index is used only while it is true: it lists the files it was built from (name, size, mtime);
if any of them changed or went away (a backfill re-run) it is ignored, and files added since (the
stream writer's) are read in full beside it. It is used only for a partition whose rows all lie in
the range asked for; a range that cuts a day reads that day's files.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from batch.offline_latest import OfflineSource, epoch_us, partition_latest
from tessera.config import Settings
from tessera.definitions import WindowedView
from tessera.offline_schema import CREATED_TIMESTAMP, EVENT_TIMESTAMP

FORMAT = 1
META_KEY = b"tessera.offline_index"


def offline_source(view: WindowedView, settings: Settings) -> OfflineSource:
    """The view's offline rows as the backfill writes them (the names of tessera/feast_objects.py)."""
    return OfflineSource(settings.offline_store_dir / view.name, view.entity.join_key, EVENT_TIMESTAMP,
                         CREATED_TIMESTAMP, list(view.feature_names))


def index_path(source: OfflineSource, partition: str) -> Path:
    return source.path.parent / "_index" / source.path.name / f"{partition}.parquet"


def _fingerprint(path: Path) -> dict[str, int | str]:
    stat = path.stat()
    return {"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


@dataclass(frozen=True)
class PartitionIndex:
    table: pa.Table          # normalized as batch/offline_latest.py reads: µs timestamps, `__created`
    covered: frozenset[str]  # names of the files it was built from
    ts_min: int | None       # over every row of those files (µs), None when they held none
    ts_max: int | None

    def uncovered(self, files: list[Path]) -> list[Path]:
        return [f for f in files if f.name not in self.covered]


def build_index(source: OfflineSource, partition: str) -> Path:
    """Write the partition's newest row per key; returns the index file."""
    folder = source.path / partition
    files = sorted(folder.glob("*.parquet"))
    fingerprints = [_fingerprint(f) for f in files]  # before reading: a change after it invalidates
    table, _ = partition_latest(source, files)
    bounds = [_time_bounds(f, source.timestamp_field) for f in files]
    known = [b for b in bounds if b is not None]
    ts_min = min((b[0] for b in known), default=None) if len(known) == len(bounds) else None
    ts_max = max((b[1] for b in known), default=None) if len(known) == len(bounds) else None
    if table is None:
        table = pa.table({source.join_key: pa.array([], pa.int64())})
    meta = {"format": FORMAT, "files": fingerprints, "ts_min": ts_min, "ts_max": ts_max,
            "columns": [source.join_key, source.timestamp_field, *source.features]}
    table = table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    target = index_path(source, partition)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".tmp")
    pq.write_table(table, partial)
    os.replace(partial, target)  # a reader sees the old index or the new one, never half of one
    return target


def _time_bounds(path: Path, column: str) -> tuple[int, int] | None:
    """(min, max) of the file's timestamps in µs from its statistics; None if a row group has none."""
    meta = pq.ParquetFile(path).metadata
    position = meta.schema.to_arrow_schema().get_field_index(column)
    low = high = None
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(position).statistics
        if stats is None or not stats.has_min_max:
            return None
        low = epoch_us(stats.min) if low is None else min(low, epoch_us(stats.min))
        high = epoch_us(stats.max) if high is None else max(high, epoch_us(stats.max))
    return None if low is None else (low, high)


def usable_index(source: OfflineSource, partition: str, files: list[Path], lo: int, hi: int) -> PartitionIndex | None:
    """The partition's index if it is still true of `files` and every row it stands for lies in
    [lo, hi]; else None (the caller reads the files)."""
    path = index_path(source, partition)
    if not path.exists():
        return None
    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {}).get(META_KEY, b"{}"))
    except (OSError, ValueError, pa.ArrowException):
        return None  # unreadable: the files are the truth
    if meta.get("format") != FORMAT or meta.get("ts_min") is None and meta.get("files"):
        return None
    if any(c not in table.schema.names for c in [source.join_key, source.timestamp_field, *source.features]):
        return None  # built for other definitions
    present = {f.name: f for f in files}
    for entry in meta["files"]:
        file = present.get(entry["name"])
        if file is None or _fingerprint(file) != entry:
            return None
    if meta["files"] and not (lo <= meta["ts_min"] and meta["ts_max"] <= hi):
        return None
    table = table.select([source.join_key, source.timestamp_field, "__created", *source.features])
    return PartitionIndex(table.replace_schema_metadata(None), frozenset(e["name"] for e in meta["files"]),
                          meta.get("ts_min"), meta.get("ts_max"))


def index_partitions(source: OfflineSource, partitions: list[str]) -> int:
    """Index these partitions and drop the index files of partitions that no longer exist."""
    built = 0
    for partition in partitions:
        if (source.path / partition).is_dir():
            build_index(source, partition)
            built += 1
    folder = index_path(source, "x").parent
    for stale in folder.glob("date=*.parquet") if folder.is_dir() else []:
        if not (source.path / stale.stem).is_dir():
            stale.unlink()
    return built
