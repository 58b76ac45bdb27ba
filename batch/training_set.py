"""Point-in-time-correct training sets from the offline store.

For each input row (entity id, timestamp[, label, ...]) and each requested feature, the value is
that of the newest offline row of the feature's view at or before the timestamp (ties: the newest
`created`), which is value(k, timestamp) because the offline store holds a row at every instant a
value changes. Nothing after the timestamp can leak in, and a daily view's rows are stamped at the
end of their day, so only days already ended are used. Input rows keep their order and columns.

Memory stays bounded by one day: the offline store is partitioned by the UTC date of
event_timestamp, so the days are read in order, one partition at a time (only the columns asked for
and the keys of the input rows), each day's input rows are joined against that day's rows plus the
newest row per key of all earlier days (the carry), and the carry moves on.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from tessera.config import Settings
from tessera.definitions import Definitions, DefinitionError, Feature
from tessera.feast_objects import CREATED_TIMESTAMP, EVENT_TIMESTAMP

TIMESTAMP_COLUMNS = ("timestamp", "event_timestamp")
AS_OF = "__as_of"
DAY_US = 86_400_000_000


class TrainingSetError(ValueError):
    pass


@dataclass(frozen=True)
class Request:
    features: list[Feature]
    timestamp_column: str


def column_name(feature: Feature) -> str:
    """Feast's full_feature_names convention, unambiguous across views."""
    return f"{feature.view}__{feature.name}"


def _timestamp_column(rows: pd.DataFrame, asked: str | None) -> str:
    if asked:
        if asked not in rows.columns:
            raise TrainingSetError(f"entity rows have no column {asked!r}; columns: {', '.join(rows.columns)}")
        return asked
    for name in TIMESTAMP_COLUMNS:
        if name in rows.columns:
            return name
    raise TrainingSetError(f"entity rows need a timestamp column ({' or '.join(TIMESTAMP_COLUMNS)}); "
                           f"columns: {', '.join(rows.columns)}")


def _partitions(settings: Settings, view: str) -> dict[str, list[Path]]:
    """date (YYYY-MM-DD) -> its Parquet files; only *.parquet, so a writer's .tmp file is never read."""
    folder = settings.offline_store_dir / view
    parts = {p.name.removeprefix("date="): sorted(p.glob("*.parquet")) for p in folder.glob("date=*")}
    return {day: files for day, files in sorted(parts.items()) if files}


def history_start(settings: Settings, view: str) -> pd.Timestamp | None:
    days = list(_partitions(settings, view))
    return pd.Timestamp(days[0], tz="UTC") if days else None


def _read_day(files: list[Path], key: str, keys: pa.Array, names: list[str]) -> pa.Table:
    """One day's offline rows of the given keys: key, as_of and created (epoch µs; created 0 when
    not stored), then the features as float64 (null: NaN)."""
    dataset = ds.dataset([str(f) for f in files], format="parquet")
    created = [CREATED_TIMESTAMP] if CREATED_TIMESTAMP in dataset.schema.names else []
    table = dataset.to_table(columns=[key, EVENT_TIMESTAMP, *created, *names], filter=ds.field(key).isin(keys))
    stamps = {AS_OF: _micros(table.column(EVENT_TIMESTAMP)),
              CREATED_TIMESTAMP: pc.fill_null(_micros(table.column(CREATED_TIMESTAMP)), 0) if created
              else pa.array(np.zeros(table.num_rows, dtype=np.int64))}
    values = {n: table.column(n).cast(pa.float64()) for n in names}  # to_numpy() reads nulls as NaN
    return pa.table({key: table.column(key).cast(pa.int64()), **stamps, **values})


def _micros(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.cast(pc.cast(column, pa.timestamp("us", tz="UTC"), safe=False), pa.int64())


def _day_number(day: str) -> int:
    """YYYY-MM-DD -> days since the epoch."""
    return int(np.datetime64(day, "D").astype(np.int64))


def _view_values(settings: Settings, view: str, key: str, names: list[str], ids: np.ndarray,
                 stamps: pd.Series) -> dict[str, np.ndarray]:
    """Per requested feature, its value as of each row's timestamp (NaN where there is no row yet)."""
    out = {n: np.full(len(ids), np.nan) for n in names}
    parts = {_day_number(day): files for day, files in _partitions(settings, view).items()}
    keys = pa.array(np.unique(ids))
    row_micros = stamps.to_numpy(dtype="datetime64[us]").astype(np.int64)
    row_days = row_micros // DAY_US
    last_day = int(row_days.max())
    carry: pa.Table | None = None
    for day in sorted(set(parts) | set(np.unique(row_days).tolist())):
        if day > last_day:
            break
        stored = [t for t in (carry, _read_day(parts[day], key, keys, names) if day in parts else None) if t]
        if not stored:
            continue  # nothing stored yet: these rows keep NaN (no event yet)
        known = pa.concat_tables(stored).combine_chunks()
        known_keys, as_of = known.column(key).to_numpy(), known.column(AS_OF).to_numpy()
        # Sorted by (as_of, created): merge_asof takes the last of equal as_of, so a tie goes to the
        # newest write (a re-run backfill or a replayed stream row).
        order = np.lexsort((known.column(CREATED_TIMESTAMP).to_numpy(), as_of))
        rows = np.flatnonzero(row_days == day)
        if len(rows):
            # Join on (key, as_of, position) only, then fetch the features of the matched rows:
            # reordering every stored column of a whole day costs more than the join itself.
            left = pd.DataFrame({key: ids[rows], "__t": row_micros[rows], "__row": rows})
            right = pd.DataFrame({key: known_keys[order], AS_OF: as_of[order], "__at": order})
            joined = pd.merge_asof(left.sort_values("__t", kind="stable"), right, left_on="__t", right_on=AS_OF,
                                   by=key, direction="backward", allow_exact_matches=True)
            found = joined["__at"].notna().to_numpy()
            at = joined["__at"].to_numpy()[found].astype(np.int64)
            target = joined["__row"].to_numpy()[found]
            for n in names:
                out[n][target] = known.column(n).to_numpy()[at]
        # Each key's newest row so far: all that later days need from this one and before.
        carry = known.take(order[~pd.Series(known_keys[order]).duplicated(keep="last").to_numpy()])
    return out


def build_training_set(settings: Settings, definitions: Definitions, rows: pd.DataFrame, refs: list[str],
                       timestamp_column: str | None = None) -> pd.DataFrame:
    try:
        features = definitions.resolve_refs(refs)
    except DefinitionError as err:
        raise TrainingSetError(str(err)) from None
    ts_col = _timestamp_column(rows, timestamp_column)
    out = rows.copy()
    stamps = pd.to_datetime(out[ts_col], utc=True).astype("datetime64[us, UTC]").reset_index(drop=True)
    by_view: dict[str, list[Feature]] = {}
    for f in features:
        by_view.setdefault(f.view, []).append(f)
    for view_name, view_features in by_view.items():
        view = definitions.view(view_name)
        key = view.entity.join_key
        if key not in out.columns:
            raise TrainingSetError(f"entity rows have no column {key!r}, which view {view_name!r} is keyed by")
        start = history_start(settings, view_name)
        if start is None:
            raise TrainingSetError(f"the offline store has no rows for {view_name!r} under "
                                   f"{settings.offline_store_dir / view_name}: run tessera backfill")
        too_early = stamps < start
        if too_early.any():
            first_bad = stamps[too_early].min()
            raise TrainingSetError(f"{int(too_early.sum())} row(s) have timestamps before the stored history of "
                                   f"{view_name!r} (starts {start:%Y-%m-%d}; earliest asked {first_bad})")
        values = _view_values(settings, view_name, key, [f.name for f in view_features],
                              out[key].astype("int64").to_numpy(), stamps)
        for f in view_features:
            series = pd.Series(values[f.name], index=out.index)
            if f.aggregation.operation in ("count", "distinct_days"):
                # No row at or before t within the stored history: no event yet, so the count is 0.
                series = series.fillna(0).astype("int64")
            elif f.aggregation.operation == "sum":
                series = series.fillna(0.0)
            out[column_name(f)] = series
    return out


def write_training_set(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
