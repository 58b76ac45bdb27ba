"""Point-in-time-correct training sets from the offline store.

For each input row (entity id, timestamp[, label, ...]) and each requested feature, the value is
that of the newest offline row of the feature's view at or before the timestamp (ties: the newest
`created`), which is value(k, timestamp) because the offline store holds a row at every instant a
value changes. Nothing after the timestamp can leak in, and a daily view's rows are stamped at the
end of their day, so only days already ended are used. Input rows keep their order and columns.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from tessera.config import Settings
from tessera.definitions import Definitions, DefinitionError, Feature
from tessera.feast_objects import CREATED_TIMESTAMP, EVENT_TIMESTAMP

TIMESTAMP_COLUMNS = ("timestamp", "event_timestamp")


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


def _view_rows(settings: Settings, view: str, key: str, keys: pa.Array, until: pd.Timestamp,
               names: list[str]) -> pd.DataFrame:
    folder = settings.offline_store_dir / view
    if not folder.exists() or not any(folder.rglob("*.parquet")):
        raise TrainingSetError(f"the offline store has no rows for {view!r} under {folder}: run tessera backfill")
    dataset = ds.dataset(folder, format="parquet", partitioning="hive", exclude_invalid_files=True)
    until_date = until.strftime("%Y-%m-%d")
    # Only the columns asked for: a view's offline store can be tens of millions of rows.
    wanted = [key, EVENT_TIMESTAMP, *([CREATED_TIMESTAMP] if CREATED_TIMESTAMP in dataset.schema.names else []),
              *names]
    table = dataset.to_table(columns=wanted, filter=(ds.field("date") <= until_date) & ds.field(key).isin(keys))
    frame = table.to_pandas()
    frame[EVENT_TIMESTAMP] = pd.to_datetime(frame[EVENT_TIMESTAMP], utc=True).astype("datetime64[us, UTC]")
    return frame


def history_start(settings: Settings, view: str) -> pd.Timestamp | None:
    folder = settings.offline_store_dir / view
    dates = sorted(p.name.removeprefix("date=") for p in folder.glob("date=*"))
    return pd.Timestamp(dates[0], tz="UTC") if dates else None


def build_training_set(settings: Settings, definitions: Definitions, rows: pd.DataFrame, refs: list[str],
                       timestamp_column: str | None = None) -> pd.DataFrame:
    try:
        features = definitions.resolve_refs(refs)
    except DefinitionError as err:
        raise TrainingSetError(str(err)) from None
    ts_col = _timestamp_column(rows, timestamp_column)
    out = rows.copy()
    stamps = pd.to_datetime(out[ts_col], utc=True).astype("datetime64[us, UTC]")
    order = pd.RangeIndex(len(out))
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
            raise TrainingSetError(f"the offline store has no rows for {view_name!r}: run tessera backfill")
        too_early = stamps < start
        if too_early.any():
            first_bad = stamps[too_early].min()
            raise TrainingSetError(f"{int(too_early.sum())} row(s) have timestamps before the stored history of "
                                   f"{view_name!r} (starts {start:%Y-%m-%d}; earliest asked {first_bad})")
        keys = pa.array(out[key].astype("int64").unique())
        names = [f.name for f in view_features]
        offline = _view_rows(settings, view_name, key, keys, stamps.max(), names)
        if CREATED_TIMESTAMP in offline.columns:
            offline = offline.sort_values([EVENT_TIMESTAMP, CREATED_TIMESTAMP])
        else:
            offline = offline.sort_values(EVENT_TIMESTAMP)
        # Ties on as_of: keep the newest write (a re-run backfill or a replayed stream row).
        offline = offline.drop_duplicates([key, EVENT_TIMESTAMP], keep="last")
        right = offline[[key, EVENT_TIMESTAMP, *names]].rename(
            columns={EVENT_TIMESTAMP: "__as_of", **{n: column_name(f) for n, f in zip(names, view_features)}})
        left = pd.DataFrame({key: out[key].astype("int64").to_numpy(), "__t": stamps.reset_index(drop=True),
                             "__row": order})
        left = left.sort_values("__t")
        right = right.sort_values("__as_of")
        joined = pd.merge_asof(left, right, left_on="__t", right_on="__as_of", by=key, direction="backward",
                               allow_exact_matches=True).sort_values("__row")
        for f in view_features:
            values = joined[column_name(f)].to_numpy()
            series = pd.Series(values, index=out.index)
            if f.aggregation.operation in ("count", "distinct_days"):
                # No row at or before t within the stored history: no event yet, so the count is 0.
                series = series.fillna(0).astype("int64")
            elif f.aggregation.operation == "sum":
                series = series.astype("float64").fillna(0.0)
            else:
                series = series.astype("float64")
            out[column_name(f)] = series
    return out


def write_training_set(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
