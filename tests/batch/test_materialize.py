"""tessera's materializer against Feast: on a real Spark backfill of generated history, real Parquet,
a real Feast registry and a real Redis, what it writes is byte for byte what `feast materialize`
writes for the same range, reads back through Feast's SDK as the newest offline row per key, never
replaces a newer online row, and continues incrementally where it (or Feast) left off."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
from feast import FeatureStore
from pyspark.sql import SparkSession

from batch.backfill import backfill
from batch.materialize import Materializer, MaterializeError, ViewResult
from batch.online_layout import EntityKeyLayout
from tessera.config import Settings
from tessera.definitions import Definitions, load_definitions
from tessera.events import AdEvent
from tessera.feast_objects import repo_config
from tessera.generator import EventGenerator, GeneratorConfig
from tessera.raw_history import write_events
from tessera.services.redis_server import RedisServer
from tests.batch.test_backfill import D1, _edge_events
from tests.serving.stack import apply_registry, free_port, make_settings, subprocess_env

ROOT = Path(__file__).resolve().parents[2]
UTC = timezone.utc
# Cuts both stored days, so partition pruning and in-day filtering both matter.
START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
END = datetime(2026, 3, 3, 18, 30, tzinfo=UTC)
VIEWS = ("user_ad_activity", "campaign_delivery", "user_profile_daily")


@pytest.fixture(scope="module")
def offline(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Two backfilled days of generated history (duplicates, out-of-order, late, edge events), a Feast
    registry applied for them and a Redis of this module's own."""
    settings = make_settings(tmp_path_factory.mktemp("materialize"), free_port())
    config = GeneratorConfig(seed=23, users=60, campaigns=5, ctr=0.1, cvr=0.2,
                             duplicates=0.03, out_of_order=0.05, late=0.02)
    messages = EventGenerator(config, D1, rate_per_s=0.05).take(int(0.05 * 3 * 86_400))
    events: list[AdEvent] = [m.event for m in messages if m.event is not None] + _edge_events()
    write_events(settings.raw_history_dir, events, writer="t", sequence=0)
    definitions = load_definitions(ROOT / "feature_repo")
    backfill(spark, settings, definitions, date(2026, 3, 2), date(2026, 3, 3), say=lambda _: None)
    write_rewritten_rows(settings)
    server = RedisServer(settings)
    server.start()
    try:
        apply_registry(settings, definitions)
        yield settings
    finally:
        server.stop()  # ours: started above in this module's state dir


def write_rewritten_rows(settings: Settings, users: int = 3) -> None:
    """Some users' newest rows in the range again, with the same event_timestamp but a later
    `created` and other values (a replayed stream batch): both materializers must take these."""
    folder = settings.offline_store_dir / "user_ad_activity"
    newest = newest_offline_rows(settings, "user_ad_activity", "user_id", START, END).head(users).reset_index()
    newest["created"] = newest["created"] + pd.Timedelta(seconds=1)
    newest["clicks_24h"] += 1_000
    newest["spend_1h"] += 1_000.0
    schema = pq.read_schema(next(folder.glob("date=*/*.parquet")))
    for day, rows in newest.groupby(newest["event_timestamp"].dt.strftime("%Y-%m-%d")):
        table = pa.Table.from_pandas(rows[[n for n in schema.names]], preserve_index=False).cast(schema)
        pq.write_table(table, folder / f"date={day}" / "a-rewritten.parquet")  # before part-*: order cannot decide


def variant(settings: Settings, db: int, **changes: object) -> Settings:
    """The same stack, another Redis db (and optionally another Feast project or state dir)."""
    copy = settings.model_copy(deep=True)
    copy.redis.db = db
    for path, value in changes.items():
        section, _, key = path.partition("__")
        setattr(getattr(copy, section), key, value)
    return copy


def client(settings: Settings) -> redis.Redis:
    return redis.Redis(host=settings.redis.host, port=settings.redis.port, db=settings.redis.db)


def dump(settings: Settings) -> dict[bytes, dict[bytes, bytes]]:
    r = client(settings)
    return {key: r.hgetall(key) for key in r.scan_iter(count=1_000)}


def newest_offline_rows(settings: Settings, view: str, key: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The oracle, the slow obvious way: every offline row, filtered to [start, end], newest per key
    by (event_timestamp, created)."""
    frame = pd.read_parquet(settings.offline_store_dir / view)
    stamps = pd.to_datetime(frame["event_timestamp"], utc=True)
    frame = frame[(stamps >= start) & (stamps <= end)]
    frame = frame.sort_values(["event_timestamp", "created"]).drop_duplicates(key, keep="last")
    return frame.set_index(key)


def online_vectors(settings: Settings, definitions: Definitions, view: str, ids: list[int]
                   ) -> dict[int, tuple[int | None, dict[str, object]]]:
    """Through Feast's SDK: per id, (as_of in µs or None, {feature: value})."""
    store = FeatureStore(config=repo_config(settings))
    spec = definitions.view(view)
    response = store.get_online_features(features=[f"{view}:{f}" for f in spec.feature_names],
                                         entity_rows=[{spec.entity.join_key: i} for i in ids])
    values = response.to_dict()
    stamps = response.proto.results[-1].event_timestamps  # every feature of a view shares its timestamp
    out = {}
    for n, i in enumerate(ids):
        us = stamps[n].ToMicroseconds()
        out[i] = (us or None, {f: values[f][n] for f in spec.feature_names})
    return out


def plain(value: object) -> object:
    """A pandas cell as the Python value Feast's SDK returns (None for null and NaN)."""
    if pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else value


def by_view(results: list[ViewResult]) -> dict[str, ViewResult]:
    return {r.view: r for r in results}


def test_materialized_rows_equal_feast_materialize_and_sdk_reads(offline: Settings) -> None:
    definitions = load_definitions(ROOT / "feature_repo")
    ours, feast, no_check = variant(offline, 1), variant(offline, 2), variant(offline, 3)
    lines: list[str] = []
    results = by_view(Materializer(ours).materialize(None, START, END, say=lines.append))
    FeatureStore(config=repo_config(feast)).materialize(START, END, list(VIEWS))
    Materializer(no_check, skip_dedup=True).materialize(None, START, END, say=lambda _: None)

    written, reference = dump(ours), dump(feast)
    assert set(written) == set(reference) and len(reference) >= 50
    for key, fields in reference.items():
        assert written[key] == fields, f"hash {key!r}: tessera {written[key]!r} != feast {fields!r}"
    assert dump(no_check) == written  # Feast's skip_dedup path writes the same rows
    assert any(line.startswith("user_ad_activity:") for line in lines)

    checked = 0
    for view in VIEWS:
        key = definitions.view(view).entity.join_key
        oracle = newest_offline_rows(offline, view, key, START, END)
        result = results[view]
        assert (result.keys, result.written, result.kept_newer) == (len(oracle), len(oracle), 0)
        absent = 9_999  # a key without offline rows: Feast's SDK reads it as missing
        online = online_vectors(ours, definitions, view, [*map(int, oracle.index), absent])
        assert online[absent] == (None, {f: None for f in definitions.view(view).feature_names})
        for entity_id, row in oracle.iterrows():
            as_of, values = online[int(entity_id)]
            assert as_of == row["event_timestamp"].value // 1_000, f"{view} {entity_id}: as_of"
            for name, value in values.items():
                expected = plain(row[name])
                assert value == expected, f"{view}:{name} {key}={entity_id}: online {value!r} != offline {expected!r}"
                checked += 1
    assert checked > 1_000
    rewritten = newest_offline_rows(offline, "user_ad_activity", "user_id", START, END)["clicks_24h"] >= 1_000
    assert rewritten.sum() >= 3  # the newest `created` won the ties, as checked above


def test_whole_days_come_from_the_backfills_index_and_equal_feast(offline: Settings) -> None:
    """Over whole days each partition is read from the backfill's index of its newest row per key,
    plus the file written after the backfill (the rewritten rows, as the stream appends files): the
    result is still byte for byte what `feast materialize` writes for that range."""
    first, last = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC)
    ours, feast = variant(offline, 9), variant(offline, 10)
    lines: list[str] = []
    results = by_view(Materializer(ours).materialize(None, first, last, say=lines.append))
    FeatureStore(config=repo_config(feast)).materialize(first, last, list(VIEWS))
    assert sum("(2 from the backfill's per-day index)" in line for line in lines) == len(VIEWS), lines
    written, reference = dump(ours), dump(feast)
    assert set(written) == set(reference) and len(reference) >= 50
    for key, fields in reference.items():
        assert written[key] == fields, f"hash {key!r}: tessera {written[key]!r} != feast {fields!r}"
    activity = results["user_ad_activity"]
    assert activity.keys == len(newest_offline_rows(offline, "user_ad_activity", "user_id", first, last))
    offline_rows = len(pd.read_parquet(offline.offline_store_dir / "user_ad_activity"))
    assert activity.offline_rows < offline_rows / 2  # one row per key and day, not every change point


def test_a_newer_online_row_is_not_replaced(offline: Settings) -> None:
    settings = variant(offline, 4)
    definitions = load_definitions(ROOT / "feature_repo")
    oracle = newest_offline_rows(offline, "user_ad_activity", "user_id", START, END)
    newer, same, older = (int(u) for u in oracle.index[:3])
    stream = FeatureStore(config=repo_config(settings))

    def stream_row(user: int, as_of: datetime) -> dict[str, object]:
        row: dict[str, object] = {f: 777_777 for f in definitions.view("user_ad_activity").feature_names}
        row.update({"ctr_1h": 0.5, "ctr_24h": 0.5, "spend_1h": 7.0, "spend_24h": 7.0})
        return {"user_id": user, "event_timestamp": as_of, "created": as_of, **row}

    # What the stream writes, through Feast's own writer: newer than the range, at the very instant
    # of the materialized row (Feast keeps the stored one), and older.
    same_as_of = oracle.loc[same, "event_timestamp"].to_pydatetime()
    stream.write_to_online_store("user_ad_activity", pd.DataFrame([
        stream_row(newer, END + timedelta(hours=1)), stream_row(same, same_as_of),
        stream_row(older, START - timedelta(days=1))]))
    materializer = Materializer(settings)
    materializer.config.online_store.key_ttl_seconds = 86_400
    result = by_view(materializer.materialize(["user_ad_activity"], START, END, say=lambda _: None))
    assert result["user_ad_activity"].kept_newer == 2
    assert result["user_ad_activity"].written == len(oracle) - 2

    online = online_vectors(settings, definitions, "user_ad_activity", [newer, same, older])
    end_us = int((END + timedelta(hours=1)).timestamp() * 1_000_000)
    assert online[newer][0] == end_us and online[newer][1]["impressions_5m"] == 777_777
    assert online[same][1]["clicks_24h"] == 777_777
    assert online[older][1]["clicks_24h"] == plain(oracle.loc[older, "clicks_24h"]) != 777_777
    r = client(settings)
    layout = EntityKeyLayout.for_join_key("user_id", settings.feast.project, 3)
    assert 0 < r.ttl(layout.key(older)) <= 86_400  # written: the repo's key TTL applies
    assert r.ttl(layout.key(newer)) == -1           # left alone


def test_incremental_continues_where_tessera_or_feast_left_off(offline: Settings) -> None:
    # A project of its own: its own registry entries, state file and Redis keys.
    settings = variant(offline, 5, feast__project="incremental")
    apply_registry(settings, load_definitions(ROOT / "feature_repo"))
    t1, t2, t3 = (datetime(2026, 3, 2, 12, tzinfo=UTC), datetime(2026, 3, 3, 20, tzinfo=UTC),
                  datetime(2026, 3, 3, 22, tzinfo=UTC))
    first = Materializer(settings).materialize_incremental(None, t1, say=lambda _: None)
    assert {r.view: r.start for r in first} == {v: datetime(2026, 3, 2, tzinfo=UTC) for v in VIEWS}
    second = Materializer(settings).materialize_incremental(None, t2, say=lambda _: None)
    assert {r.view: (r.start, r.end) for r in second} == {v: (t1, t2) for v in VIEWS}
    assert sum(r.keys for r in second) > 0
    store = FeatureStore(config=repo_config(settings))
    assert all(store.get_feature_view(v).most_recent_end_time == t2 for v in VIEWS)  # recorded for Feast

    once = variant(settings, 6)
    FeatureStore(config=repo_config(once)).materialize(datetime(2026, 3, 2, tzinfo=UTC), t2, list(VIEWS))
    assert dump(settings) == dump(once)  # two incremental runs == one run over both ranges

    store.materialize_incremental(end_date=t3)  # Feast continues from tessera's end...
    for view in VIEWS:
        assert store.get_feature_view(view).materialization_intervals[-1] == (t2, t3)
    lines: list[str] = []
    assert Materializer(settings).materialize_incremental(None, t3, say=lines.append) == []  # ...and back
    assert sum("already materialized up to" in line for line in lines) == len(VIEWS)


def test_clear_errors(offline: Settings, tmp_path: Path) -> None:
    materializer = Materializer(variant(offline, 7))
    with pytest.raises(MaterializeError, match="unknown feature view.*'nope'.*registered: campaign_delivery"):
        materializer.materialize(["user_ad_activity", "nope"], START, END)
    with pytest.raises(MaterializeError, match="empty range"):
        materializer.materialize(None, END, END)
    with pytest.raises(MaterializeError, match="empty range"):
        materializer.materialize(None, END, START)

    unbackfilled = variant(offline, 7, paths__data_dir=tmp_path / "data", paths__state_dir=tmp_path / "state")
    with pytest.raises(MaterializeError, match="no Feast registry.*tessera apply"):
        Materializer(unbackfilled).materialize(None, START, END)
    apply_registry(unbackfilled, load_definitions(ROOT / "feature_repo"))
    with pytest.raises(MaterializeError, match="user_ad_activity: the offline store has no Parquet files.*backfill"):
        Materializer(unbackfilled).materialize(["user_ad_activity"], START, END)

    nowhere = variant(offline, 7)
    nowhere.redis.port = free_port()
    with pytest.raises(MaterializeError, match="cannot reach Redis"):
        Materializer(nowhere).materialize(["user_profile_daily"], START, END)


def test_cli(offline: Settings) -> None:
    env = {**os.environ, **subprocess_env(offline), "TESSERA_REDIS__DB": "8"}

    def tessera(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tessera.cli", "materialize", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)

    done = tessera("--start", "2026-03-02T06:00", "--end", "2026-03-03T18:30", "--views", "user_profile_daily")
    assert done.returncode == 0, done.stderr
    assert "user_profile_daily" in done.stdout and "rows/s" in done.stdout
    assert "read " in done.stderr and "wrote " in done.stderr  # progress per view
    oracle = newest_offline_rows(offline, "user_profile_daily", "user_id", START, END)
    assert client(variant(offline, 8)).dbsize() == len(oracle)

    failed = tessera("--start", "2026-03-02", "--end", "2026-03-03", "--views", "nope")
    assert failed.returncode == 2 and "unknown feature view(s) 'nope'" in failed.stderr
    failed = tessera("--end", "2026-03-03")
    assert failed.returncode == 2 and "--incremental" in failed.stderr
