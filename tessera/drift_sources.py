"""The two samples `tessera drift` compares, per feature view.

Reference: the offline store over a window. Its rows are change points (a row holds from its
`event_timestamp` until the key's next row), so the sample is each key's value at evenly spaced
instants of the window, the values a model would have been served then; a busy key does not weigh
more for changing often. Online: entity hashes sampled from Feast's Redis online store with SCAN
(hash-table order, unrelated to the ids), decoded the way the feature API decodes them.

Both sides keep only active entities: a key whose every feature of the view is 0 or null had no
event in any window. The online store keeps such keys forever (a quiet key decays to zeros), the
window read from the offline store only the recent ones, so counting them would be drift of the
store's age, not of the features.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from tessera.config import Settings
from tessera.definitions import WindowedView
from tessera.feast_objects import CREATED_TIMESTAMP, EVENT_TIMESTAMP

DEFAULT_INSTANTS = 24
DEFAULT_MAX_KEYS = 20_000
SCAN_BATCH = 1_000
PROGRESS_PREFIX = b"tessera:"  # streaming/progress.py's hashes live beside Feast's keys


class DriftDataError(RuntimeError):
    """No data to compare; the message says what is missing and what to run."""


@dataclass(frozen=True)
class Sample:
    values: pd.DataFrame  # one float64 column per feature, NaN for null; one row per (key[, instant])
    keys: int             # distinct entities in it
    note: str             # where it came from, for the report


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def _ts(ms: int) -> pa.Scalar:
    return pa.scalar(ms * 1000, type=pa.timestamp("us", tz="UTC"))


def active(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Rows with at least one feature neither 0 nor null."""
    values = frame[names].to_numpy(dtype=np.float64)
    return frame[np.any(~np.isnan(values) & (values != 0), axis=1)]


def reference_sample(settings: Settings, view: WindowedView, start_ms: int, end_ms: int,
                     instants: int = DEFAULT_INSTANTS, max_keys: int = DEFAULT_MAX_KEYS, seed: int = 0
                     ) -> tuple[Sample, int, int]:
    """Values at `instants` evenly spaced times of [start, end), clipped to the stored rows.
    Returns the sample and the window actually covered (ms)."""
    folder = settings.offline_store_dir / view.name
    if not folder.is_dir() or not any(folder.rglob("*.parquet")):
        raise DriftDataError(f"the offline store has no rows for {view.name!r} under {folder}: run tessera backfill")
    key, names = view.entity.join_key, view.feature_names
    # A key's value at `start` comes from its newest row before it, at most one window (and one
    # leave step; for a daily view one more day) earlier: later than that, it has decayed to 0.
    lookback = view.lookback_ms
    partitioning = ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive")
    dataset = ds.dataset(folder, format="parquet", partitioning=partitioning, exclude_invalid_files=True)
    columns = [key, EVENT_TIMESTAMP, *([CREATED_TIMESTAMP] if CREATED_TIMESTAMP in dataset.schema.names else []),
               *names]
    wanted = ((ds.field("date") >= _day(start_ms - lookback)) & (ds.field("date") <= _day(end_ms - 1))
              & (ds.field(EVENT_TIMESTAMP) >= _ts(start_ms - lookback)) & (ds.field(EVENT_TIMESTAMP) < _ts(end_ms)))
    rows = dataset.to_table(columns=columns, filter=wanted).to_pandas()
    if rows.empty:
        raise DriftDataError(f"the offline store of {view.name!r} has no rows between {_day(start_ms - lookback)} "
                             f"and {_day(end_ms - 1)}: pick another --reference-start/--reference-end "
                             f"or run tessera backfill for those days")
    rows["__as_of"] = pd.to_datetime(rows[EVENT_TIMESTAMP], utc=True).dt.as_unit("us").astype("int64") // 1_000
    first, last = int(rows["__as_of"].min()), int(rows["__as_of"].max())
    lo, hi = max(start_ms, first), min(end_ms, last + 1)
    if hi <= lo:
        raise DriftDataError(f"the offline store of {view.name!r} has no rows inside the reference window "
                             f"(its rows end {datetime.fromtimestamp(last / 1000, tz=timezone.utc):%Y-%m-%d %H:%M})")
    keys = rows[key].unique()
    if keys.size > max_keys:  # a random subset of keys, each with all its rows
        keys = np.random.default_rng(seed).choice(keys, max_keys, replace=False)
        rows = rows[rows[key].isin(keys)]
    order = ["__as_of", CREATED_TIMESTAMP] if CREATED_TIMESTAMP in rows.columns else ["__as_of"]
    # Ties on as_of: the newest write wins (a re-run backfill, a replayed stream row).
    rows = rows.sort_values(order).drop_duplicates([key, "__as_of"], keep="last")
    times = lo + ((np.arange(instants) + 0.5) * (hi - lo) / instants).astype(np.int64)
    grid = pd.DataFrame({key: np.repeat(keys, instants), "__t": np.tile(times, keys.size)}).sort_values("__t")
    right = rows[[key, "__as_of", *names]].astype({key: grid[key].dtype})
    joined = pd.merge_asof(grid, right, left_on="__t", right_on="__as_of", by=key, direction="backward")
    joined = joined[joined["__as_of"].notna()]  # the key had no row yet at that instant
    values = active(joined, names)
    return (Sample(values[names].astype(np.float64).reset_index(drop=True), int(values[key].nunique()),
                   f"{instants} instants x {keys.size:,} keys"), lo, hi)


def _glob_escape(raw: bytes) -> bytes:
    return re.sub(rb"([*?\[\]\\])", rb"\\\1", raw)


def online_samples(settings: Settings, views: list[WindowedView], sample: int, max_scan: int | None = None
                   ) -> dict[str, Sample]:
    """Up to `sample` active entities per view from Feast's Redis online store."""
    import redis

    from serving.online_reader import decode_as_of_ms, decode_value
    from serving.plan import plan_loader
    from tessera.services.redis_server import redis_client

    if not settings.registry_path.is_file():
        raise DriftDataError(f"no Feast registry at {settings.registry_path}: run tessera apply")
    plan = plan_loader(settings)()
    missing = [v.name for v in views if v.name not in plan.views]
    if missing:
        raise DriftDataError(f"view(s) {', '.join(missing)} are not in the Feast registry online: run tessera apply")
    view_plans = [plan.views[v.name] for v in views]
    fields: list[bytes] = []
    for vp in view_plans:
        fields.extend(f.field for f in vp.features)
        fields.append(vp.ts_field)
    suffix = settings.feast.project.encode()
    collected: dict[str, list[list[object]]] = {vp.name: [] for vp in view_plans}
    client = redis_client(settings, timeout_s=5.0)
    scanned, cursor, limit = 0, 0, max_scan or max(50 * sample, 100_000)
    try:
        while True:
            # The sync client's reply (redis-py's stubs type both clients' at once).
            page: tuple[int, list[bytes]] = client.scan(  # type: ignore[assignment]
                cursor, match=b"*" + _glob_escape(suffix), count=SCAN_BATCH)
            cursor, keys = page
            keys = [k for k in keys if not k.startswith(PROGRESS_PREFIX)]
            scanned += len(keys)
            if keys:
                with client.pipeline(transaction=False) as pipe:
                    for k in keys:
                        pipe.hmget(k, fields)  # type: ignore[arg-type]
                    replies = pipe.execute(raise_on_error=False)
                for reply in replies:
                    if isinstance(reply, Exception):  # a key of another type under the same suffix
                        continue
                    at = 0
                    for vp in view_plans:
                        raw = reply[at:at + len(vp.features)]
                        as_of = decode_as_of_ms(reply[at + len(vp.features)])
                        at += len(vp.features) + 1
                        if as_of is None or len(collected[vp.name]) >= sample:
                            continue  # this entity has no row of the view, or the view has enough
                        values = [decode_value(r, f.value_type) for r, f in zip(raw, vp.features)]
                        if any(isinstance(v, (int, float)) and v == v and v != 0 for v in values):  # active
                            collected[vp.name].append(values)
            full = all(len(rows) >= sample for rows in collected.values())
            if cursor == 0 or full or scanned >= limit:
                break
    except redis.RedisError as err:
        raise DriftDataError(f"reading Redis at {settings.redis.host}:{settings.redis.port} failed: {err}") from err
    finally:
        client.close()
    out: dict[str, Sample] = {}
    for vp in view_plans:
        names = [f.name for f in vp.features]
        frame = pd.DataFrame(collected[vp.name], columns=names, dtype=np.float64) if collected[vp.name] \
            else pd.DataFrame(columns=names, dtype=np.float64)
        out[vp.name] = Sample(frame, len(frame), f"{scanned:,} Redis keys scanned")
    return out
