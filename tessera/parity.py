"""`tessera parity`: sample keys, read their online rows, recompute value(k, as_of) with the Spark
path from the raw history, and report how well the two agree, per view and feature.

The comparison rules are in tessera.parity_compare; the Spark recomputation in
batch.parity_recompute; the terminal table in tessera.parity_render.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pyarrow.compute as pc
import pyarrow.dataset as ds

from tessera.config import Settings
from tessera.definitions import Definitions, WindowedView
from tessera.parity_compare import Context, LateEvent, ViewParity, compare_view, sample_keys


class ParityError(RuntimeError):
    pass


@dataclass(frozen=True)
class ParityOptions:
    views: list[str] | None = None
    fraction: float = 0.1
    max_keys: int = 5_000
    threshold: float = 1.0
    worst: int = 10


def report_path(settings: Settings) -> Path:
    return settings.state_dir / "parity" / "last.json"


def _keys_and_clock(settings: Settings, join_keys: set[str]) -> tuple[dict[str, list[int]], int]:
    """The keys the raw history knows, and its newest event time: the stream's clock as far as the
    history can tell (an upper bound while the job is behind, so settledness errs on the safe side)."""
    root = settings.raw_history_dir
    if not root.exists() or not any(root.glob("date=*/*.parquet")):
        raise ParityError(f"no raw event history under {root}: there is nothing to recompute the offline "
                          f"values from (run the stream, or `tessera generate history`)")
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table(
        columns=sorted(join_keys) + ["event_time"])
    keys = {jk: pc.unique(table[jk]).to_pylist() for jk in join_keys}
    return keys, int(pc.max(table["event_time"]).as_py())


LateByKey = dict[str, dict[int, list[LateEvent]]]


def _late_events(settings: Settings, join_keys: set[str], say: Callable[[str], None]) -> tuple[LateByKey, int]:
    """The events the stream set aside as too late, by join key and key, and how many there were."""
    from confluent_kafka import KafkaException

    from tessera.kafka_io import read_topic

    by_join_key: LateByKey = {jk: {} for jk in join_keys}
    try:
        messages = read_topic(settings, settings.kafka.late_topic)
    except KafkaException as err:
        say(f"warning: cannot read the late-event topic {settings.kafka.late_topic} ({err}); "
            f"late events will not be used to explain differences")
        return by_join_key, 0
    for raw in messages:
        event = json.loads(raw)
        for jk in join_keys:
            by_join_key[jk].setdefault(int(event[jk]), []).append(
                LateEvent(int(event[jk]), str(event["event_id"]), int(event["event_time"])))
    return by_join_key, len(messages)


def _writers_behind(settings: Settings, say: Callable[[str], None]) -> int:
    from confluent_kafka import KafkaException

    from streaming.control import lags

    try:
        behind = {lag.group: lag.behind for lag in lags(settings)}
    except KafkaException as err:
        say(f"warning: cannot read consumer lag ({err}); writer lag will not be used to explain differences")
        return 0
    if any(behind.values()):
        say("writers still behind: " + ", ".join(f"{g} {n:,}" for g, n in behind.items() if n))
    return sum(behind.values())


def run_parity(settings: Settings, definitions: Definitions, options: ParityOptions,
               say: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True)) -> dict[str, object]:
    from batch.parity_recompute import offline_values_at
    from batch.spark_session import spark_session
    from tessera.online_rows import read_online_rows

    if not 0 < options.fraction <= 1:
        raise ParityError(f"--sample must be a fraction in (0, 1], not {options.fraction}")
    try:
        views: list[WindowedView] = ([definitions.view(v) for v in options.views] if options.views
                                     else list(definitions.views.values()))
    except KeyError as err:
        raise ParityError(f"unknown view {err.args[0]}; known: {', '.join(definitions.views)}") from None
    join_keys = {v.entity.join_key for v in views}
    keys, clock = _keys_and_clock(settings, join_keys)
    late, late_count = _late_events(settings, join_keys, say)
    behind = _writers_behind(settings, say)
    results: list[ViewParity] = []
    began = time.monotonic()
    spark = spark_session(settings, "tessera-parity")
    try:
        for view in views:
            jk = view.entity.join_key
            sampled = sample_keys(jk, keys[jk], options.fraction, options.max_keys)
            online = read_online_rows(settings, view, sampled)
            say(f"{view.name}: {len(sampled):,} keys sampled of {len(keys[jk]):,}, {len(online):,} with an online "
                f"row; recomputing with Spark")
            offline = offline_values_at(spark, settings, view, {k: r.as_of_ms for k, r in online.items()})
            context = Context(clock, late[jk] if view.kind == "streaming" else {}, behind)
            results.append(compare_view(view, sampled, online, offline, context))
    finally:
        spark.stop()
    compared = sum(r.compared for r in results)
    agreeing = sum(r.agreeing for r in results)
    match_rate = agreeing / compared if compared else 0.0
    report: dict[str, object] = {
        "generated_at": datetime.now(tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "passed": compared > 0 and match_rate >= options.threshold,
        "threshold": options.threshold, "match_rate": match_rate, "compared": compared,
        "stream_clock_ms": clock, "writers_behind": behind,
        "late_events": late_count,
        "seconds": round(time.monotonic() - began, 1),
        "sample": {"fraction": options.fraction, "max_keys": options.max_keys},
        "views": [r.as_dict(options.worst) for r in results],
    }
    path = report_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(path)
    return report
