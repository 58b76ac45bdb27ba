"""The online writer sends only each key's newest row of a batch (what Feast would keep anyway), and
its bulk mode leaves Redis byte for byte as Feast's own writer does."""
from __future__ import annotations

import random
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import redis

from streaming.aggregator import FeatureRow
from streaming.online_writer import (OnlineOfflineWriter, feature_columns, newest_per_key, value_proto,
                                     view_table)
from tessera.definitions import Definitions, load_definitions
from tessera.services.redis_server import RedisServer
from tests.serving.stack import apply_registry, free_port, make_settings

ROOT = Path(__file__).resolve().parents[2]


def test_each_key_keeps_its_first_newest_row() -> None:
    rows = [FeatureRow("v", 1, 10, {"n": 1}), FeatureRow("v", 2, 5, {"n": 1}), FeatureRow("v", 1, 12, {"n": 2}),
            FeatureRow("v", 1, 11, {"n": 9}), FeatureRow("v", 1, 12, {"n": 3})]
    assert sorted((r.key, r.as_of, r.values["n"]) for r in newest_per_key(rows)) == [(1, 12, 2), (2, 5, 1)]


def test_feature_columns_transpose_rows_and_fill_what_a_row_lacks() -> None:
    rows = [FeatureRow("v", 1, 10, {"a": 1, "b": None, "c": 2.5}), FeatureRow("v", 2, 11, {"c": -0.0, "a": 3, "b": 4})]
    assert [list(c) for c in feature_columns(["a", "b", "c"], rows)] == [[1, 3], [None, 4], [2.5, -0.0]]
    assert [list(c) for c in feature_columns(["c"], rows)] == [[2.5, -0.0]]
    assert feature_columns(["a", "b"], []) == [(), ()]
    lacking = [*rows, FeatureRow("v", 3, 12, {"a": 5})]  # a row of an older job: its missing features are null
    assert [list(c) for c in feature_columns(["a", "b", "c"], lacking)] == [[1, 3, 5], [None, 4, None], [2.5, -0.0, None]]


def test_shared_value_protos_hold_the_right_values() -> None:
    assert value_proto(None, "int64").WhichOneof("val") is None
    assert value_proto(7, "int64").int64_val == 7 and value_proto(10**12, "int64").int64_val == 10**12
    assert value_proto(0.0, "float64").double_val == 0.0 and value_proto(0.25, "float64").double_val == 0.25
    assert str(value_proto(-0.0, "float64").double_val) == "-0.0"


def _batches(definitions: Definitions) -> list[list[FeatureRow]]:
    """Three batches of both streaming views: repeated keys within a batch, then rows older than what
    a key holds, rows at the very instant it holds (with other values) and newer ones; nulls, -0.0,
    infinities and counts past 2**53."""
    rng = random.Random(11)
    specials: list[Any] = [None, -0.0, 0.0, float("inf"), -1e-300, 2.5]
    batches: list[list[FeatureRow]] = []
    held: dict[tuple[str, int], int] = {}
    for b in range(3):
        batch = []
        for view in definitions.streaming_views():
            for _ in range(400):
                key = rng.randint(1, 150)
                as_of = held.get((view.name, key), 1_780_000_000_000) + rng.choice([-5_000, 0, 1, 7_000])
                values = {f.name: (rng.choice([None, 0, 3, 2**62 + rng.randint(0, 99)]) if f.dtype == "int64"
                                   else rng.choice([*specials, rng.uniform(-5, 5)])) for f in view.features}
                batch.append(FeatureRow(view.name, key, as_of, values))
                held[(view.name, key)] = max(held.get((view.name, key), 0), as_of)
        batches.append(batch)
    return batches


def test_bulk_writer_leaves_redis_exactly_as_feasts_writer_does(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, free_port())
    definitions = load_definitions(ROOT / "feature_repo")
    server = RedisServer(settings)
    server.start()
    try:
        apply_registry(settings, definitions)
        dumps = {}
        for db, mode in ((1, "feast"), (2, "bulk")):
            copy = settings.model_copy(deep=True)
            copy.redis.db, copy.sink.online_writer = db, mode
            copy.sink.keys_per_call = 7  # many calls, and a short last one
            writer = OnlineOfflineWriter(copy, definitions)
            for n, batch in enumerate(_batches(definitions)):
                assert writer.write(batch, f"{mode}-{n}") == len(batch)
            writer.close()
            client = redis.Redis(host=copy.redis.host, port=copy.redis.port, db=db)
            dumps[mode] = {key: client.hgetall(key) for key in client.scan_iter(count=1_000)}
        assert len(dumps["feast"]) >= 250
        script_calls = client.info("commandstats")["cmdstat_evalsha"]["calls"]
        assert script_calls >= len(dumps["bulk"]) / 7, "[sink] keys_per_call bounds each script call"
        assert dumps["bulk"] == dumps["feast"]
    finally:
        server.stop()


def test_offline_files_hold_every_row_of_a_batch_by_its_utc_date(tmp_path: Path) -> None:
    """Every row (not only each key's newest) goes offline, in the file of its as_of's UTC date."""
    settings = make_settings(tmp_path, free_port())
    definitions = load_definitions(ROOT / "feature_repo")
    view = definitions.view("user_ad_activity")
    apply_registry(settings, definitions)
    writer = OnlineOfflineWriter(settings, definitions)
    rng = random.Random(5)
    midnight = 1_780_012_800_000  # 2026-05-29T00:00Z
    rows = [FeatureRow(view.name, rng.randint(1, 20), midnight + rng.randint(-3_000, 3_000),
                       {f.name: (rng.choice([None, rng.randint(0, 9)]) if f.dtype == "int64"
                                 else rng.choice([None, -0.0, rng.uniform(-1, 1)])) for f in view.features})
            for _ in range(300)]
    writer._write_offline(view, view_table(view, rows), datetime.now(tz=timezone.utc), "b")
    for day, expected in (("2026-05-28", [r for r in rows if r.as_of < midnight]),
                          ("2026-05-29", [r for r in rows if r.as_of >= midnight])):
        got = pq.read_table(settings.offline_store_dir / view.name / f"date={day}" / "stream-b.parquet").to_pylist()
        assert [(g["user_id"], g["event_timestamp"]) for g in got] == \
            [(r.key, datetime.fromtimestamp(r.as_of / 1000, tz=timezone.utc)) for r in expected]
        assert [{f.name: g[f.name] for f in view.features} for g in got] == [r.values for r in expected]
