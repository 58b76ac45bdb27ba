"""`tessera drift` against real Redis (Feast's online layout) and a real offline store (Parquet), both
filled with rows the streaming aggregator computed from generated events. In the last hour every
cost is tripled: the spend features must be flagged, the counts and CTRs left alone."""
from __future__ import annotations

import heapq
import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timezone
from typing import Iterator

import pytest

from streaming.aggregator import FeatureRow, KeyAggregator, ViewPlan, on_event, on_timer
from streaming.online_writer import OnlineOfflineWriter, view_table
from tessera.config import Settings
from tessera.definitions import load_definitions
from tessera.generator import EventGenerator, GeneratorConfig
from tessera.services.redis_server import RedisServer
from tests.serving.stack import ROOT, apply_registry, free_port, make_settings

HOUR = 3_600_000
T0 = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
# 24 h of history first, so the 24 h windows are as full in the reference window as at the end.
REFERENCE = (T0 + 24 * HOUR, T0 + 26 * HOUR)
SHIFT_FROM, END = T0 + 26 * HOUR, T0 + 27 * HOUR
COST_FACTOR = 3.0
RATE = 0.5  # events per second of event time: 48,600 events, about 1,000 users


def simulate(view_plan: ViewPlan, settings: Settings) -> tuple[list[FeatureRow], list[FeatureRow]]:
    """Every row the streaming job would emit for the view (events in order, timers as the clock
    passes them), and each key's newest row at the end: what the online store holds then."""
    generator = EventGenerator(GeneratorConfig(seed=11, users=1_000, campaigns=50), T0, RATE)
    aggregators: dict[int, KeyAggregator] = {}
    timers: list[tuple[int, int]] = []
    rows: list[FeatureRow] = []
    for batch in generator.batches(int(RATE * (END - T0) / 1000), batch_size=20_000):
        for message in batch:
            event = message.event
            assert event is not None
            if event.event_time >= SHIFT_FROM:
                event = replace(event, cost=round(event.cost * COST_FACTOR, 6))
            while timers and timers[0][0] <= event.event_time:
                boundary, key = heapq.heappop(timers)
                decayed = on_timer(view_plan, aggregators[key], key, boundary)
                if decayed is not None:
                    rows.append(decayed)
            aggregator = aggregators.setdefault(event.user_id, KeyAggregator())
            row, boundaries = on_event(view_plan, aggregator, event.user_id, event.as_dict())
            if row is not None:
                rows.append(row)
            for boundary in boundaries:
                heapq.heappush(timers, (boundary, event.user_id))
    newest: dict[int, FeatureRow] = {}
    for row in rows:
        newest[row.key] = row
    return rows, list(newest.values())


@pytest.fixture(scope="module")
def drift_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    # A project of its own: SCAN sees only this test's entity keys.
    settings = make_settings(tmp_path_factory.mktemp("drift"), free_port(), project="drift_test")
    redis = RedisServer(settings)
    redis.start()
    try:
        definitions = load_definitions(settings.feature_repo)
        apply_registry(settings, definitions)
        view = definitions.view("user_ad_activity")
        rows, newest = simulate(ViewPlan.compile(view), settings)
        writer = OnlineOfflineWriter(settings, definitions)
        created = datetime.now(timezone.utc)
        # Every row into the offline store, as the sink appends them (its own Parquet layout) ...
        for start in range(0, len(rows), 50_000):
            writer._write_offline(view, view_table(view, rows[start:start + 50_000]), created, f"test-{start}")
        # ... and the online store holding each key's newest row, written by Feast's RedisOnlineStore.
        writer.write(newest, "final")
        yield settings
    finally:
        redis.stop()


def tessera(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TESSERA_CONFIG": str(ROOT / "tessera.toml"),
           "TESSERA_PATHS__STATE_DIR": str(settings.state_dir), "TESSERA_PATHS__DATA_DIR": str(settings.data_dir),
           "TESSERA_REDIS__PORT": str(settings.redis.port), "TESSERA_FEAST__PROJECT": settings.feast.project}
    return subprocess.run([sys.executable, "-m", "tessera.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


def test_drift_flags_the_shifted_feature_only(drift_stack: Settings) -> None:
    done = tessera(drift_stack, "drift", "--views", "user_ad_activity", "--reference-start", iso(REFERENCE[0]),
                   "--reference-end", iso(REFERENCE[1]))
    assert done.returncode == 1, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    report = json.loads((drift_stack.state_dir / "drift" / "last.json").read_text())
    view = report["views"][0]
    assert view["error"] is None, view
    features = {f["feature"]: f for f in view["features"]}
    assert view["online"]["keys"] > 500 and view["reference"]["values"] > 10_000
    assert features["spend_1h"]["flagged"] and features["spend_1h"]["psi"] > 0.4, done.stdout  # 0.57 here
    assert features["spend_1h"]["online_mean"] == pytest.approx(COST_FACTOR * features["spend_1h"]["reference_mean"],
                                                                rel=0.35)
    left_alone = ["impressions_5m", "impressions_1h", "impressions_24h", "clicks_5m", "clicks_1h", "clicks_24h",
                  "conversions_1h", "conversions_24h", "ctr_1h", "ctr_24h"]
    for name in left_alone:
        assert not features[name]["flagged"] and features[name]["psi"] < 0.1, features[name]
    # One hour of tripled costs in 24: spend_24h moves, but much less than spend_1h.
    assert features["spend_24h"]["psi"] < features["spend_1h"]["psi"] / 3
    assert report["flagged"][0] == "user_ad_activity:spend_1h"
    assert "spend_1h" in done.stdout and "DRIFT" in done.stdout


def test_drift_without_reference_rows_exits_2(drift_stack: Settings) -> None:
    done = tessera(drift_stack, "drift", "--views", "user_ad_activity", "--reference-start", "2020-01-01",
                   "--reference-end", "2020-01-02", "--json")
    assert done.returncode == 2, done.stderr
    report = json.loads(done.stdout)
    assert "no rows" in report["views"][0]["error"] and report["passed"] is False


def test_drift_rejects_an_unknown_view(drift_stack: Settings) -> None:
    done = tessera(drift_stack, "drift", "--views", "no_such_view")
    assert done.returncode == 2 and "no_such_view" in done.stderr
