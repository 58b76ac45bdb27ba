"""The backfill's per-day index of the newest row per key (batch/offline_index.py): whatever happened
to the partitions after it was built, a read that uses it equals the slow obvious answer (every
offline row in the range, newest per key by (event_timestamp, created)), and it is used only when
it is still true and its day lies wholly in the range."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch.offline_index import index_partitions, index_path
from batch.offline_latest import OfflineSource, latest_in_range

UTC = timezone.utc
DAY1 = datetime(2026, 5, 4, tzinfo=UTC)
FEATURES = ["clicks", "spend"]
SCHEMA = pa.schema([("user_id", pa.int64()), ("clicks", pa.int64()), ("spend", pa.float64()),
                    ("event_timestamp", pa.timestamp("us", tz="UTC")), ("created", pa.timestamp("us", tz="UTC"))])


def rows(seed: int, day: datetime, n: int, users: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # Whole seconds: many rows of a key share an event_timestamp, so `created` must break ties.
    stamps = [day + timedelta(seconds=int(s)) for s in rng.integers(0, 86_400 // 600, n) * 600]
    return pd.DataFrame({
        "user_id": rng.integers(1, users + 1, n), "clicks": rng.integers(0, 1_000, n),
        "spend": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
        "event_timestamp": stamps,
        "created": [day + timedelta(days=1, microseconds=int(c)) for c in rng.integers(0, 3, n)],
    })


def write(folder: Path, day: datetime, name: str, frame: pd.DataFrame) -> Path:
    target = folder / f"date={day:%Y-%m-%d}" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False), target)
    return target


def brute_force(folder: Path, start: datetime, end: datetime) -> pd.DataFrame:
    frames = [pq.read_table(f).to_pandas() for f in sorted(folder.glob("date=*/*.parquet"))]
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[(frame["event_timestamp"] >= start) & (frame["event_timestamp"] <= end)]
    frame = frame.sort_values(["event_timestamp", "created"], kind="stable")
    newest = frame.drop_duplicates("user_id", keep="last")
    return newest.sort_values("user_id").reset_index(drop=True)


def read(source: OfflineSource, start: datetime, end: datetime) -> tuple[pd.DataFrame, int]:
    latest = latest_in_range(source, start, end)
    frame = latest.table.to_pandas().sort_values("user_id").reset_index(drop=True)
    return frame, latest.indexed


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got["user_id"]) == list(want["user_id"])
    stamps = (want["event_timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)
    assert list(got["event_timestamp"]) == list(stamps)
    assert list(got["clicks"]) == list(want["clicks"])
    assert np.array_equal(got["spend"].to_numpy(), want["spend"].to_numpy(), equal_nan=True)


@pytest.fixture
def store(tmp_path: Path) -> OfflineSource:
    folder = tmp_path / "offline" / "user_ad_activity"
    for d in range(3):
        day = DAY1 + timedelta(days=d)
        for part in range(3):
            write(folder, day, f"part-{part}.parquet", rows(10 * d + part, day, 400))
    source = OfflineSource(folder, "user_id", "event_timestamp", "created", FEATURES)
    assert index_partitions(source, [f"date={DAY1 + timedelta(days=d):%Y-%m-%d}" for d in range(3)]) == 3
    return source


def test_whole_days_read_from_the_index_equal_brute_force(store: OfflineSource) -> None:
    start, end = DAY1, DAY1 + timedelta(days=3)
    got, indexed = read(store, start, end)
    assert indexed == 3
    assert_same(got, brute_force(store.path, start, end))
    latest = latest_in_range(store, start, end)
    assert latest.scanned <= 3 * 40 < 3 * 3 * 400  # a row per key and day, not every row


def test_files_added_after_the_index_are_read_beside_it(store: OfflineSource) -> None:
    day = DAY1 + timedelta(days=2)  # the last day holds every key's newest row
    newest = brute_force(store.path, day, day + timedelta(days=1) - timedelta(microseconds=1))
    # The stream appends: a later row for one key, and a rewrite of another's newest row with a later `created`.
    later = newest.iloc[[0]].assign(event_timestamp=day + timedelta(hours=23, minutes=59), clicks=-1)
    rewrite = newest.iloc[[1]].assign(created=newest.iloc[1]["created"] + timedelta(seconds=5), clicks=-2)
    write(store.path, day, "stream-p0-1-2.parquet", pd.concat([later, rewrite]))
    got, indexed = read(store, DAY1, DAY1 + timedelta(days=3))
    assert indexed == 3
    want = brute_force(store.path, DAY1, DAY1 + timedelta(days=3))
    assert_same(got, want)
    assert {-1, -2} <= set(got["clicks"])


def test_an_index_whose_files_changed_is_not_used(store: OfflineSource) -> None:
    day = DAY1 + timedelta(days=2)
    write(store.path, day, "part-1.parquet", rows(99, day, 300))  # a re-run replaced a file it was built from
    (store.path / f"date={DAY1:%Y-%m-%d}" / "part-2.parquet").unlink()  # and removed one
    got, indexed = read(store, DAY1, DAY1 + timedelta(days=3))
    assert indexed == 1
    assert_same(got, brute_force(store.path, DAY1, DAY1 + timedelta(days=3)))


def test_a_range_that_cuts_a_day_reads_that_days_files(store: OfflineSource) -> None:
    start, end = DAY1 + timedelta(hours=7), DAY1 + timedelta(days=2, hours=5, minutes=30)
    got, indexed = read(store, start, end)
    assert indexed == 1  # only the middle day lies wholly in the range
    assert_same(got, brute_force(store.path, start, end))
    got, indexed = read(store, start, DAY1 + timedelta(days=3))
    assert indexed == 2
    assert_same(got, brute_force(store.path, start, DAY1 + timedelta(days=3)))


def test_an_index_built_for_other_features_is_not_used(store: OfflineSource) -> None:
    wider = OfflineSource(store.path, store.join_key, store.timestamp_field, store.created_field, [*FEATURES, "x"])
    for path in store.path.glob("date=*/*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.append_column("x", pa.array(np.arange(table.num_rows))), path)
    latest = latest_in_range(wider, DAY1, DAY1 + timedelta(days=3))
    assert latest.indexed == 0 and "x" in latest.table.column_names


def test_an_index_of_a_removed_partition_is_dropped(store: OfflineSource) -> None:
    gone = f"date={DAY1:%Y-%m-%d}"
    for f in (store.path / gone).iterdir():
        f.unlink()
    (store.path / gone).rmdir()
    assert index_path(store, gone).exists()
    index_partitions(store, [])
    assert not index_path(store, gone).exists()
    assert index_path(store, f"date={DAY1 + timedelta(days=1):%Y-%m-%d}").exists()
