"""Training sets are point-in-time correct: each row gets value(k, timestamp), brute-forced."""
from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from batch.backfill import backfill
from batch.training_set import TrainingSetError, build_training_set
from tessera.config import Settings
from tessera.definitions import load_definitions
from tests.batch.brute_force import DAY, MIN, ORACLES, Ev, agree
from tests.batch.test_backfill import D1, NEVER_SEEN_USER, QUIET_USER, history  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]


def test_training_set_equals_brute_force(spark: SparkSession, batch_settings: Settings, history: list[Ev]) -> None:
    definitions = load_definitions(ROOT / "feature_repo")
    backfill(spark, batch_settings, definitions, date(2026, 3, 2), date(2026, 3, 3), say=lambda _: None)
    rng = random.Random(8)
    users = sorted({e.user_id for e in history}) + [NEVER_SEEN_USER]
    stamps = [D1 + DAY + rng.randrange(2 * DAY) for _ in range(300)]
    stamps += [e.event_time for e in rng.sample([e for e in history if e.event_time >= D1 + DAY], 50)]
    stamps += [D1 + 2 * DAY, D1 + 2 * DAY - 1, D1 + DAY + 71 * MIN, D1 + DAY]
    rows = pd.DataFrame({
        "user_id": [rng.choice(users) if i % 7 else QUIET_USER for i in range(len(stamps))],
        "timestamp": pd.to_datetime(stamps, unit="ms", utc=True),
        "label": [rng.random() < 0.3 for _ in stamps],
    })
    frame = build_training_set(batch_settings, definitions, rows, ["user_ad_activity", "user_profile_daily"])
    assert list(frame["label"]) == list(rows["label"]) and list(frame["user_id"]) == list(rows["user_id"])
    checked = 0
    for view in ("user_ad_activity", "user_profile_daily"):
        key_col, oracle = ORACLES[view]
        for _, row in frame.iterrows():
            t = int(row["timestamp"].value // 1_000_000)
            expected = oracle([e for e in history if e.user_id == row["user_id"]], t)
            for name, value in expected.items():
                got = row[f"{view}__{name}"]
                got = None if pd.isna(got) else got.item() if hasattr(got, "item") else got
                assert agree(value, got), f"{view}:{name} user={row['user_id']} t={t}: {got!r} != {value!r}"
                checked += 1
    assert checked > 5_000


def test_clear_errors(spark: SparkSession, batch_settings: Settings, history: list[Ev]) -> None:
    definitions = load_definitions(ROOT / "feature_repo")
    backfill(spark, batch_settings, definitions, date(2026, 3, 2), date(2026, 3, 2), views=["user_ad_activity"],
             say=lambda _: None)
    rows = pd.DataFrame({"user_id": [1], "timestamp": pd.to_datetime([D1 + DAY + 5], unit="ms", utc=True)})
    with pytest.raises(TrainingSetError, match="no feature 'nope'"):
        build_training_set(batch_settings, definitions, rows, ["user_ad_activity:nope"])
    with pytest.raises(TrainingSetError, match="campaign_id"):
        build_training_set(batch_settings, definitions, rows, ["campaign_delivery:spend_1h"])
    with pytest.raises(TrainingSetError, match="timestamp column"):
        build_training_set(batch_settings, definitions, rows.rename(columns={"timestamp": "ts"}),
                           ["user_ad_activity:spend_1h"])
    early = pd.DataFrame({"user_id": [1], "timestamp": pd.to_datetime([D1], unit="ms", utc=True)})
    with pytest.raises(TrainingSetError, match="before the stored history"):
        build_training_set(batch_settings, definitions, early, ["user_ad_activity:spend_1h"])


def test_a_rewritten_row_wins_its_instant(spark: SparkSession, batch_settings: Settings, history: list[Ev]) -> None:
    """A row stored again at the same as_of with a later `created` (a re-run or a replayed stream
    batch) is the value at that instant, on its day and, through the carry, on the next."""
    definitions = load_definitions(ROOT / "feature_repo")
    backfill(spark, batch_settings, definitions, date(2026, 3, 2), date(2026, 3, 3), views=["user_ad_activity"],
             say=lambda _: None)
    folder = batch_settings.offline_store_dir / "user_ad_activity"
    day1 = pd.read_parquet(folder / "date=2026-03-02")
    first_on_day2 = pd.read_parquet(folder / "date=2026-03-03").groupby("user_id")["event_timestamp"].min()
    last = day1.sort_values("event_timestamp").drop_duplicates("user_id", keep="last").set_index("user_id")
    # Users whose next row comes after midnight: just before it, the carry from day 1 is the answer.
    later = first_on_day2[first_on_day2 > pd.Timestamp("2026-03-03", tz="UTC")].index
    last = last.loc[last.index.intersection(later)].head(5).reset_index()
    assert len(last) >= 2
    last = last.assign(created=last["created"] + pd.Timedelta(seconds=1), clicks_24h=last["clicks_24h"] + 1_000)
    schema = pq.read_schema(next(folder.glob("date=2026-03-02/*.parquet")))
    pq.write_table(pa.Table.from_pandas(last[schema.names], preserve_index=False).cast(schema),
                   folder / "date=2026-03-02" / "a-replayed.parquet")  # before part-*: file order cannot decide
    next_day = [first_on_day2[u] - pd.Timedelta(milliseconds=1) for u in last["user_id"]]
    rows = pd.DataFrame({"user_id": list(last["user_id"]) * 2, "timestamp": list(last["event_timestamp"]) + next_day})
    frame = build_training_set(batch_settings, definitions, rows, ["user_ad_activity:clicks_24h"])
    assert list(frame["user_ad_activity__clicks_24h"]) == list(last["clicks_24h"]) * 2
    assert last["clicks_24h"].min() >= 1_000
