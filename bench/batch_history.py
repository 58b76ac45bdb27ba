"""Raw event history for the batch benchmark, written vectorized (numpy/pyarrow) in the layout of
tessera/raw_history.py: the pure-Python generator would take minutes for 10M events. Users,
campaigns, the event-type mix and costs follow tessera/generator.py's GeneratorConfig."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from batch.backfill import day_start_ms
from tessera.events import EVENT_TYPES
from tessera.generator import GeneratorConfig, zipf_cdf
from tessera.raw_history import SCHEMA
from tessera.windows import DAY_MS

_GENERATOR = GeneratorConfig()


@dataclass(frozen=True)
class HistorySpec:
    """Defaults are tessera/generator.py's GeneratorConfig."""

    events: int
    days: int
    start: date
    users: int = _GENERATOR.users
    campaigns: int = _GENERATOR.campaigns
    ads_per_campaign: int = _GENERATOR.ads_per_campaign
    zipf_s: float = _GENERATOR.zipf_s
    ctr: float = _GENERATOR.ctr
    cvr: float = _GENERATOR.cvr
    duplicates: float = 0.03
    seed: int = _GENERATOR.seed
    files_per_day: int = 4


@dataclass
class History:
    distinct_events: int
    rows_written: int
    seconds: float
    users: np.ndarray  # users with at least one event


@dataclass(frozen=True)
class Population:
    user_ids: np.ndarray
    user_cdf: np.ndarray
    campaign_ids: np.ndarray
    campaign_cdf: np.ndarray
    type_cdf: np.ndarray


def population(spec: HistorySpec, rng: np.random.Generator) -> Population:
    p_click = spec.ctr / (1 + spec.ctr + spec.ctr * spec.cvr)
    p_conv = p_click * spec.cvr
    return Population(rng.permutation(spec.users), zipf_cdf(spec.users, spec.zipf_s),
                      rng.permutation(spec.campaigns), zipf_cdf(spec.campaigns, spec.zipf_s),
                      np.cumsum([1 - p_click - p_conv, p_click, p_conv]))


def day_events(spec: HistorySpec, pop: Population, rng: np.random.Generator, day: date, first_id: int,
               n: int) -> pa.Table:
    """n distinct events of one UTC day in event-time order, plus retried copies right behind them."""
    t0 = day_start_ms(day)
    times = np.sort(rng.integers(t0, t0 + DAY_MS, n, dtype=np.int64))
    types = np.searchsorted(pop.type_cdf, rng.random(n), side="right").clip(0, 2)
    users = pop.user_ids[np.searchsorted(pop.user_cdf, rng.random(n))].astype(np.int64)
    campaigns = pop.campaign_ids[np.searchsorted(pop.campaign_cdf, rng.random(n))].astype(np.int64)
    ads = campaigns * spec.ads_per_campaign + rng.integers(0, spec.ads_per_campaign, n)
    cost = np.where(types == 0, rng.lognormal(np.log(0.002), 0.5, n),
                    np.where(types == 1, rng.lognormal(np.log(0.6), 0.6, n), 0.0)).round(6)
    ids = pc.binary_join_element_wise(pa.scalar(f"bench-{spec.seed:x}-"),
                                      pc.cast(pa.array(np.arange(first_id, first_id + n)), pa.string()), "")
    kinds = pa.DictionaryArray.from_arrays(pa.array(types.astype(np.int8)), pa.array(EVENT_TYPES))
    table = pa.table({"event_id": ids, "event_type": kinds.cast(pa.string()), "event_time": times,
                      "user_id": users, "ad_id": ads, "campaign_id": campaigns, "cost": cost}, schema=SCHEMA)
    retried = np.flatnonzero(rng.random(n) < spec.duplicates)
    return table.take(np.sort(np.concatenate([np.arange(n), retried])))


def write_day(root: Path, table: pa.Table, day: date, files: int, first_sequence: int) -> None:
    folder = root / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    step = -(-table.num_rows // files)
    for i in range(files):
        pq.write_table(table.slice(i * step, step), folder / f"bench-{first_sequence + i:06d}.parquet",
                       compression="zstd")


def write_history(root: Path, spec: HistorySpec, say: Callable[[str], None] = print) -> History:
    began = time.perf_counter()
    rng = np.random.default_rng(spec.seed)
    pop = population(spec, rng)
    per_day = np.full(spec.days, spec.events // spec.days)
    per_day[: spec.events % spec.days] += 1
    rows, first_id, seen = 0, 0, []
    for i, n in enumerate(per_day):
        day = spec.start + timedelta(days=i)
        table = day_events(spec, pop, rng, day, first_id, int(n))
        write_day(root, table, day, spec.files_per_day, i * spec.files_per_day)
        seen.append(np.unique(table.column("user_id").to_numpy()))
        rows += table.num_rows
        first_id += int(n)
        say(f"  {day}: {n:,} events + {table.num_rows - n:,} retried copies "
            f"({time.perf_counter() - began:.0f} s)")
    return History(spec.events, rows, time.perf_counter() - began, np.unique(np.concatenate(seen)))
