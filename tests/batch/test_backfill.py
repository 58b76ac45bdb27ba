"""The Spark backfill answers SPEC.md's value(k, t) exactly, checked against a brute force.

History with duplicates, out-of-order and late events, plus hand-placed edge cases: an event
exactly at t, a query exactly at a leave boundary, events at midnight for the daily view, a key
that went quiet (decays to 0) and a key never seen.
"""
from __future__ import annotations

import random
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from batch.backfill import backfill, day_start_ms
from tessera.config import Settings
from tessera.definitions import load_definitions
from tessera.events import AdEvent
from tessera.generator import EventGenerator, GeneratorConfig
from tessera.raw_history import write_events
from tests.batch.brute_force import DAY, MIN, ORACLES, Ev, agree, dedup

ROOT = Path(__file__).resolve().parents[2]
DAY1 = date(2026, 3, 1)
D1 = day_start_ms(DAY1)
QUIET_USER, NEVER_SEEN_USER = 9_001, 9_999


def _edge_events() -> list[AdEvent]:
    """Hand-placed events whose instants the queries below hit exactly."""
    def ev(i: int, kind: str, t: int, user: int, cost: float = 0.5) -> AdEvent:
        return AdEvent(f"edge-{i}", kind, t, user, 1, 7, cost)
    return [
        ev(1, "impression", D1 + DAY + 10 * MIN + 1_234, QUIET_USER),      # quiet afterwards: decays
        ev(2, "click", D1 + DAY + 10 * MIN + 5_000, QUIET_USER, 0.75),
        ev(3, "impression", D1 + 2 * DAY, 9_002),                           # exactly at midnight
        ev(4, "impression", D1 + 2 * DAY - 1, 9_003),                       # the last ms of a day
        ev(5, "conversion", D1 + DAY + 3 * 60 * MIN, 9_004, 0.0),
    ]


@pytest.fixture()
def history(batch_settings: Settings) -> list[Ev]:
    """Three days of raw history; returns what the brute force sees (valid events, deduplicated)."""
    config = GeneratorConfig(seed=11, users=40, campaigns=4, ctr=0.1, cvr=0.2,
                             duplicates=0.03, out_of_order=0.05, late=0.02)
    messages = EventGenerator(config, D1, rate_per_s=0.05).take(int(0.05 * 3 * 86_400))
    events = [m.event for m in messages if m.event is not None] + _edge_events()
    write_events(batch_settings.raw_history_dir, events, writer="t", sequence=0)
    return dedup([Ev(e.event_id, e.event_type, e.event_time, e.user_id, e.campaign_id, e.cost) for e in events])


def _offline(settings: Settings, view: str) -> pd.DataFrame:
    frame = pd.read_parquet(settings.offline_store_dir / view)
    stamps = pd.to_datetime(frame["event_timestamp"], utc=True)
    frame["as_of_ms"] = (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    return frame.sort_values("as_of_ms")


def _lookup(frame: pd.DataFrame, key_col: str, key: int, t: int, names: list[str]) -> dict:
    rows = frame[(frame[key_col] == key) & (frame["as_of_ms"] <= t)]
    if rows.empty:  # no row: the key had no event in reach, so counts and sums are 0
        return {n: (None if n.startswith("ctr") else 0) for n in names}
    row = rows.iloc[-1]
    return {n: (None if pd.isna(row[n]) else row[n].item()) for n in names}


def _query_times(events: list[Ev], rng: random.Random) -> list[int]:
    start, end = D1 + DAY, D1 + 3 * DAY
    times = [rng.randrange(start, end) for _ in range(40)]
    sample = [e for e in events if start <= e.event_time < end]
    for e in rng.sample(sample, 25):
        times += [e.event_time, e.event_time - 1]                      # at the event, just before it
        leave = -(-(e.event_time + 5 * MIN) // MIN) * MIN
        times += [leave - 1, leave] if leave < end else []             # at the 5m leave boundary
    edge = D1 + DAY + 10 * MIN + 1_234
    times += [edge, edge + 5 * MIN - 1_234, edge + 5 * MIN + 48_766, edge + 61 * MIN, D1 + 2 * DAY, end - 1]
    return sorted(t for t in set(times) if start <= t < end)


def test_backfill_equals_brute_force(spark: SparkSession, batch_settings: Settings, history: list[Ev]) -> None:
    definitions = load_definitions(ROOT / "feature_repo")
    backfill(spark, batch_settings, definitions, date(2026, 3, 2), date(2026, 3, 3), say=lambda _: None)
    rng = random.Random(3)
    times = _query_times(history, rng)
    checked = 0
    for view_name, (key_col, oracle) in ORACLES.items():
        frame = _offline(batch_settings, view_name)
        names = definitions.view(view_name).feature_names
        keys = sorted({getattr(e, key_col) for e in history}) + [NEVER_SEEN_USER]
        for t in times if view_name != "user_profile_daily" else times + [D1 + 2 * DAY, D1 + 2 * DAY - 1]:
            for key in rng.sample(keys, min(len(keys), 12)) + [QUIET_USER, NEVER_SEEN_USER, 9_002, 9_003]:
                if key_col == "campaign_id" and key >= 9_000:
                    continue
                expected = oracle([e for e in history if getattr(e, key_col) == key], t)
                got = _lookup(frame, key_col, key, t, names)
                for name in names:
                    assert agree(expected[name], got[name]), \
                        f"{view_name}:{name} key={key} t={t}: offline {got[name]!r} != brute force {expected[name]!r}"
                    checked += 1
    assert checked > 5_000


def test_quiet_key_decays_to_zero_and_rerun_is_idempotent(spark: SparkSession, batch_settings: Settings,
                                                          history: list[Ev]) -> None:
    definitions = load_definitions(ROOT / "feature_repo")
    backfill(spark, batch_settings, definitions, date(2026, 3, 2), date(2026, 3, 2), say=lambda _: None)
    first = _offline(batch_settings, "user_ad_activity")
    quiet = first[first["user_id"] == QUIET_USER]
    last = quiet.iloc[-1]
    # Both events leave the 1h window at ceil_1m(10m05s + 1h) = 1h11m; the 24h window ends next day.
    after = quiet[quiet["as_of_ms"] == D1 + DAY + 71 * MIN].iloc[0]
    assert (quiet["as_of_ms"] < D1 + DAY + 71 * MIN).sum() == 4  # range start, 2 events, 5m leave
    assert after["impressions_1h"] == 0 and after["spend_1h"] == 0.0 and pd.isna(after["ctr_1h"])
    assert last["impressions_24h"] == 1 and last["clicks_24h"] == 1

    backfill(spark, batch_settings, definitions, date(2026, 3, 2), date(2026, 3, 2), say=lambda _: None)
    second = _offline(batch_settings, "user_ad_activity")
    columns = [c for c in first.columns if c != "created"]
    pd.testing.assert_frame_equal(first[columns].reset_index(drop=True), second[columns].reset_index(drop=True))
