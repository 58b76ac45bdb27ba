"""Materialize the offline store into Feast's Redis online store, fast.

Same result as `feast materialize START END` (per key, the newest offline row with event_timestamp
in [start, end], ties to the newest `created`, written in Feast's own layout so Feast's
get_online_features, `feast serve` and serving/ read it), but the offline rows are read with pyarrow
from only the date partitions in the range (batch/offline_latest.py), a whole day from the
backfill's index of its newest row per key when that is still true (batch/offline_index.py), the values are encoded a
column at a time (batch/online_layout.py) and written with one Lua call per batch of keys that
never replaces a newer row, e.g. one the stream wrote (batch/online_bulk_writer.py).

What to write comes from Feast's registry (`tessera apply`), as for Feast: the view's fields and
types, its batch source, the entity key serialization and the online store's key TTL. Each run is
recorded in the registry (as `feast materialize` does) and in the state dir, so `--incremental`
and `feast materialize-incremental` continue from where either left off.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from feast import FeatureStore, FeatureView, FileSource
from feast.repo_config import RepoConfig

from batch.offline_latest import LatestRows, OfflineDataError, OfflineSource, latest_in_range, partition_files
from batch.online_bulk_writer import (KEYS_PER_CALL, BulkConnection, OnlineWriteError, ViewEncoding, encode,
                                      guarded_calls, plain_hsets, view_encoding)
from batch.online_layout import LayoutError
from batch.materialize_state import MaterializeState
from tessera.config import Settings
from tessera.feast_objects import repo_config

Say = Callable[[str], None]
ROWS_PER_WINDOW = 20_000  # encoded at once and sent in one round trip


class MaterializeError(ValueError):
    pass


@dataclass(frozen=True)
class ViewResult:
    view: str
    start: datetime
    end: datetime
    offline_rows: int     # offline rows in the range that were read
    keys: int             # entity rows to write (one per key)
    written: int          # entity rows written
    kept_newer: int       # keys whose online row was newer (left as they were)
    read_s: float
    write_s: float

    @property
    def seconds(self) -> float:
        return self.read_s + self.write_s

    @property
    def rows_per_s(self) -> float:
        return self.keys / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class ViewPlan:
    feature_view: FeatureView
    source: OfflineSource
    encoding: ViewEncoding


def _plan(feature_view: FeatureView, config: RepoConfig) -> ViewPlan:
    source = feature_view.batch_source
    if not isinstance(source, FileSource):
        raise MaterializeError(f"{feature_view.name}: batch source {type(source).__name__} is not a file source")
    try:
        encoding = view_encoding(feature_view, config)
    except LayoutError as err:
        raise MaterializeError(f"{feature_view.name}: {err}") from None
    join_key = feature_view.entity_columns[0].name
    offline = OfflineSource(_source_path(source, config), join_key, source.timestamp_field,
                            source.created_timestamp_column or None, [f.name for f in feature_view.features])
    return ViewPlan(feature_view, offline, encoding)


def _source_path(source: FileSource, config: RepoConfig) -> Path:
    path = Path(source.path)
    return path if path.is_absolute() or config.repo_path is None else Path(config.repo_path) / path


class Materializer:
    """Feast's registry and config for tessera's settings, and one Redis connection."""

    def __init__(self, settings: Settings, skip_dedup: bool | None = None,
                 keys_per_call: int = KEYS_PER_CALL) -> None:
        if not settings.registry_path.exists():
            raise MaterializeError(f"no Feast registry at {settings.registry_path}: run `tessera apply` first")
        self.settings = settings
        self.config = repo_config(settings)
        self.store = FeatureStore(config=self.config)
        self.state = MaterializeState(settings.state_dir, self.config.project)
        # Feast's own switch for writing without the newer-row check (RedisOnlineStoreConfig).
        self.skip_dedup = bool(getattr(self.config.online_store, "skip_dedup", False)) \
            if skip_dedup is None else skip_dedup
        self.keys_per_call = keys_per_call

    def feature_views(self, names: list[str] | None) -> list[FeatureView]:
        registered = {fv.name: fv for fv in self.store.list_feature_views() if fv.online}
        if not names:
            return list(registered.values())
        unknown = [n for n in names if n not in registered]
        if unknown:
            raise MaterializeError(f"unknown feature view(s) {', '.join(map(repr, unknown))}; "
                                   f"registered: {', '.join(sorted(registered)) or 'none (run tessera apply)'}")
        return [registered[n] for n in names]

    def materialize(self, names: list[str] | None, start: datetime, end: datetime,
                    say: Say = print) -> list[ViewResult]:
        start, end = _utc(start), _utc(end)
        if end <= start:
            raise MaterializeError(f"empty range: --end {end.isoformat()} is not after --start {start.isoformat()}")
        views = self.feature_views(names)
        plans = [_plan(fv, self.config) for fv in views]
        return self._run([(p, start) for p in plans], end, say)

    def materialize_incremental(self, names: list[str] | None, end: datetime, say: Say = print) -> list[ViewResult]:
        """From where the last run of either tessera or Feast ended (else the start of the offline
        history) to `end`, per view."""
        end = _utc(end)
        todo = []
        for fv in self.feature_views(names):
            plan = _plan(fv, self.config)
            start = self._incremental_start(fv, plan)
            if start >= end:
                say(f"{fv.name}: already materialized up to {start.isoformat()}; nothing to do")
                continue
            todo.append((plan, start))
        return self._run(todo, end, say)

    def _incremental_start(self, fv: FeatureView, plan: ViewPlan) -> datetime:
        known = [t for t in (self.state.last_end(fv.name), fv.most_recent_end_time) if t is not None]
        if known:
            return max(_utc(t) for t in known)
        first = _first_partition_day(plan.source)
        if first is None:
            raise MaterializeError(f"{fv.name}: no earlier materialization and no offline data under "
                                   f"{plan.source.path}: run `tessera backfill`")
        return first

    def _run(self, todo: list[tuple[ViewPlan, datetime]], end: datetime, say: Say) -> list[ViewResult]:
        if not todo:
            return []
        for plan, start in todo:  # every view's offline data is there before anything is written
            try:
                partition_files(plan.source.path, start.date(), end.date())
            except OfflineDataError as err:
                raise MaterializeError(f"{plan.feature_view.name}: {err}") from None
        try:
            connection = BulkConnection(self.settings)
        except OnlineWriteError as err:
            raise MaterializeError(str(err)) from None
        results = []
        try:
            for plan, start in todo:
                result = self._view(connection, plan, start, end, say)
                self.store.registry.apply_materialization(plan.feature_view, self.config.project, start, end)
                self.state.record(plan.feature_view.name, end)
                results.append(result)
        except OnlineWriteError as err:
            raise MaterializeError(str(err)) from None
        finally:
            connection.close()
        return results

    def _view(self, connection: BulkConnection, plan: ViewPlan, start: datetime, end: datetime,
              say: Say) -> ViewResult:
        name = plan.feature_view.name
        say(f"{name}: {start.isoformat()} .. {end.isoformat()} from {plan.source.path}")
        began = time.perf_counter()
        try:
            latest = latest_in_range(plan.source, start, end)
        except OfflineDataError as err:
            raise MaterializeError(f"{name}: {err}") from None
        read_s = time.perf_counter() - began
        indexed = f" ({latest.indexed} from the backfill's per-day index)" if latest.indexed else ""
        say(f"  read {latest.scanned:,} offline rows in {latest.partitions} date partition(s){indexed}: "
            f"{latest.table.num_rows:,} keys ({read_s:.1f} s)")
        began = time.perf_counter()
        written = self._write(connection, plan, latest, say)
        write_s = time.perf_counter() - began
        keys = latest.table.num_rows
        result = ViewResult(name, start, end, latest.scanned, keys, written, keys - written, read_s, write_s)
        newer = f", {result.kept_newer:,} kept a newer online row" if not self.skip_dedup else " (skip_dedup)"
        say(f"  wrote {written:,} rows{newer} ({write_s:.1f} s); {result.rows_per_s:,.0f} rows/s overall")
        return result

    def _write(self, connection: BulkConnection, plan: ViewPlan, latest: LatestRows, say: Say) -> int:
        """Encodes window i + 1 while Redis works through window i."""
        table, source = latest.table, plan.source
        total, written, in_flight, last_note = table.num_rows, 0, 0, time.perf_counter()
        for first in range(0, total, ROWS_PER_WINDOW):
            window = table.slice(first, ROWS_PER_WINDOW)
            rows = encode(plan.encoding, window.column(source.join_key).to_numpy(),
                          window.column(source.timestamp_field).to_numpy(), window)
            if self.skip_dedup:
                packed, replies = plain_hsets(plan.encoding, rows)
                calls = [packed]
            else:
                calls = guarded_calls(plan.encoding, rows, self.keys_per_call)
                replies = len(calls)
            written += self._collect(connection, in_flight)
            connection.send(calls, replies)
            in_flight = window.num_rows
            if time.perf_counter() - last_note > 2:
                last_note = time.perf_counter()
                say(f"  {first + window.num_rows:,}/{total:,} rows sent")
        return written + self._collect(connection, in_flight)

    def _collect(self, connection: BulkConnection, in_flight: int) -> int:
        """Rows written by the calls in flight: the scripts count them; plain HSETs write every row."""
        counted = connection.written()
        return in_flight if self.skip_dedup else counted


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _first_partition_day(source: OfflineSource) -> datetime | None:
    days = sorted(p.name.removeprefix("date=") for p in source.path.glob("date=*") if any(p.glob("*.parquet")))
    if days:
        return datetime.fromisoformat(days[0]).replace(tzinfo=timezone.utc)
    return datetime(1970, 1, 1, tzinfo=timezone.utc) if any(source.path.rglob("*.parquet")) else None

