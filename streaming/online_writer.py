"""Feature rows -> Feast's Redis online store and the offline store (Parquet, partitioned by as_of
date), in batches.

Online, `[sink] online_writer` chooses how: "bulk" (the default) encodes a batch column-wise in
Feast's exact layout and writes it with the newer-row check inside Redis (batch/online_bulk_writer.py,
as `tessera materialize` does: about a tenth of the CPU per row); "feast" calls Feast's own
RedisOnlineStore.online_write_batch. Both keep the newest timestamp per key and skip older rows, so
replaying rows after a restart is harmless; offline files are named by the Kafka offsets they hold,
so a replayed batch rewrites its own file.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from operator import itemgetter
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from feast import FeatureStore, FeatureView
from feast.infra.online_stores.redis import RedisOnlineStore
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from batch.online_bulk_writer import (BulkConnection, OnlineWriteError, ViewEncoding, encode,
                                      guarded_calls, view_encoding)
from streaming.aggregator import FeatureRow
from streaming.stage_timings import StageTimings
from tessera.config import Settings
from tessera.definitions import Definitions, WindowedView
from tessera.feast_objects import CREATED_TIMESTAMP, EVENT_TIMESTAMP, repo_config


_ARROW_TYPES = {"int64": pa.int64(), "float64": pa.float64()}
_NULL = ValueProto()  # Feast's null
# Most counts are small and many sums 0.0 (quiet windows): building a protobuf per value was about a
# seventh of the writer's time. Feast only serializes the values it is given, so sharing them is safe.
_SMALL_INTS = [ValueProto(int64_val=i) for i in range(4096)]
_ZERO_DOUBLE = ValueProto(double_val=0.0)


def value_proto(value: Any, dtype: str) -> ValueProto:
    if value is None:
        return _NULL
    if dtype == "int64":
        count = int(value)
        return _SMALL_INTS[count] if 0 <= count < len(_SMALL_INTS) else ValueProto(int64_val=count)
    number = float(value)
    # Only +0.0 shares the proto: -0.0 == 0.0, but it is a value of its own.
    return _ZERO_DOUBLE if number == 0.0 and str(number) == "0.0" else ValueProto(double_val=number)


def newest_per_key(rows: list[FeatureRow]) -> list[FeatureRow]:
    """The row each key ends the batch with (the first of its newest as_of). Feast writes a row only
    if it is newer than what the key has, stored or earlier in the batch, so the others would only
    cost time: busy keys have many rows per batch (in the benchmark's stream about half of a batch)."""
    return [rows[i] for i in newest_indices(rows)]


def newest_indices(rows: list[FeatureRow]) -> list[int]:
    """Where newest_per_key's rows are in `rows`."""
    newest: dict[int, int] = {}
    for i, row in enumerate(rows):
        kept = newest.get(row.key)
        if kept is None or row.as_of > rows[kept].as_of:
            newest[row.key] = i
    return list(newest.values())


_DAY_MS = 86_400_000


def view_table(view: WindowedView, rows: list[FeatureRow]) -> pa.Table:
    """A view's rows as columns (key, as_of in ms, then its features), built once for both stores:
    building them per store, and a date string per row, were half the writer's CPU per row."""
    columns: dict[str, pa.Array] = {
        view.entity.join_key: pa.array(np.fromiter((r.key for r in rows), np.int64, len(rows))),
        "as_of_ms": pa.array(np.fromiter((r.as_of for r in rows), np.int64, len(rows))),
    }
    for f, values in zip(view.features, feature_columns([f.name for f in view.features], rows)):
        columns[f.name] = pa.array(values, _ARROW_TYPES[f.dtype])
    return pa.table(columns)


def feature_columns(names: list[str], rows: list[FeatureRow]) -> list[Sequence[Any]]:
    """Each named feature's values over the rows, None where a row lacks it. The job writes every
    feature of its view in each row, so one C-level pick per row and a transpose do it: a lookup
    per feature per row was a quarter of the writer's CPU per row."""
    if not rows:
        return [() for _ in names]
    pick = itemgetter(*names) if len(names) > 1 else (lambda values: (values[names[0]],))
    try:
        return list(zip(*(pick(r.values) for r in rows)))
    except KeyError:  # a row without some feature (rows of a job older than the definitions)
        return [[r.values.get(name) for r in rows] for name in names]


@dataclass(frozen=True)
class OnlineBatch:
    """A batch written online, as its offline half needs it: each view's columns and the batch's
    created timestamp (the same in both stores)."""
    created: datetime
    tables: list[tuple[WindowedView, pa.Table]]


class OnlineOfflineWriter:
    def __init__(self, settings: Settings, definitions: Definitions) -> None:
        self.settings = settings
        self.config = repo_config(settings)
        store = FeatureStore(repo_path=str(settings.feature_repo), config=self.config)
        self.views: dict[str, tuple[WindowedView, FeatureView]] = {
            v.name: (v, store.get_feature_view(v.name)) for v in definitions.streaming_views()}
        self.online = RedisOnlineStore()
        self.bulk = settings.sink.online_writer == "bulk"
        self.encodings: dict[str, ViewEncoding] = {
            name: view_encoding(feast_view, self.config) for name, (_, feast_view) in self.views.items()
        } if self.bulk else {}
        self._connection: BulkConnection | None = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def write(self, rows: list[FeatureRow], batch_name: str, timings: StageTimings | None = None) -> int:
        """Write one batch to both stores; returns rows written. Rows of a key must come in as_of order."""
        self.write_offline(self.write_online(rows, timings), batch_name, timings)
        return len(rows)

    def write_online(self, rows: list[FeatureRow], timings: StageTimings | None = None) -> OnlineBatch:
        """The online half of `write`, every view's first: the freshness the API serves waits for
        this half only, so the caller can report it before the offline files are written."""
        timings = timings or StageTimings()
        by_view: dict[str, list[FeatureRow]] = {}
        for row in rows:
            by_view.setdefault(row.view, []).append(row)
        batch = OnlineBatch(datetime.now(tz=timezone.utc), [])
        for view_name, view_rows in by_view.items():
            if view_name not in self.views:
                continue  # a view removed from the repository since the job started
            view, feast_view = self.views[view_name]
            with timings.stage("columns"):
                table = view_table(view, view_rows)
            with timings.stage("online"):
                if self.bulk:
                    self._write_online_bulk(view, table.take(newest_indices(view_rows)))
                else:
                    self._write_online(view, feast_view, view_rows, batch.created)
            batch.tables.append((view, table))
        return batch

    def write_offline(self, batch: OnlineBatch, batch_name: str, timings: StageTimings | None = None) -> None:
        """The offline half of `write`: a Parquet file per view and as_of date, named by `batch_name`."""
        timings = timings or StageTimings()
        with timings.stage("offline"):
            for view, table in batch.tables:
                self._write_offline(view, table, batch.created, batch_name)

    def _write_online(self, view: WindowedView, feast_view: FeatureView, rows: list[FeatureRow],
                      created: datetime) -> None:
        join_key = view.entity.join_key
        dtypes = {f.name: f.dtype for f in view.features}
        data = []
        for row in newest_per_key(rows):
            key = EntityKeyProto(join_keys=[join_key], entity_values=[ValueProto(int64_val=row.key)])
            values = {name: value_proto(v, dtypes[name]) for name, v in row.values.items()}
            data.append((key, values, datetime.fromtimestamp(row.as_of / 1000, tz=timezone.utc), created))
        self.online.online_write_batch(self.config, feast_view, data, None)

    def _write_online_bulk(self, view: WindowedView, newest: pa.Table) -> None:
        ids = newest.column(view.entity.join_key).to_numpy()
        micros = newest.column("as_of_ms").to_numpy() * 1000
        encoding = self.encodings[view.name]
        calls = guarded_calls(encoding, encode(encoding, ids, micros, newest),  # its feature columns, by name
                               self.settings.sink.keys_per_call)
        try:
            if self._connection is None:
                self._connection = BulkConnection(self.settings, timeout_s=10.0)
            self._connection.send(calls, len(calls))
            self._connection.written()
        except OnlineWriteError:
            self.close()  # a fresh connection (and the script loaded again, after a Redis restart) next time
            raise

    def _write_offline(self, view: WindowedView, table: pa.Table, created: datetime, batch_name: str) -> None:
        days = table.column("as_of_ms").to_numpy() // _DAY_MS
        unique = np.unique(days)
        for day in unique:
            day_table = table if len(unique) == 1 else table.filter(pa.array(days == day))
            as_of_ms = day_table.column("as_of_ms").to_numpy()
            columns: dict[str, Any] = {
                view.entity.join_key: day_table.column(view.entity.join_key),
                EVENT_TIMESTAMP: pa.array(as_of_ms * 1000, pa.timestamp("us", tz="UTC")),
                CREATED_TIMESTAMP: pa.array(np.full(len(as_of_ms), int(created.timestamp() * 1_000_000)),
                                            pa.timestamp("us", tz="UTC")),
            }
            for f in view.features:
                columns[f.name] = day_table.column(f.name)
            date = datetime.fromtimestamp(int(day) * _DAY_MS / 1000, tz=timezone.utc).strftime("%Y-%m-%d")
            folder = self.settings.offline_store_dir / view.name / f"date={date}"
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"stream-{batch_name}.parquet"
            tmp = target.with_suffix(".tmp")
            pq.write_table(pa.table(columns), tmp)
            tmp.replace(target)
