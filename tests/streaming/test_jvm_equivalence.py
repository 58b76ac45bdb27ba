"""The JVM engine's aggregation (jars/aggregator) against the Python engine's, row for row.

Both run the same plan (compiled once from feature_repo/views.py) over the same generated events:
duplicates, out-of-order and late events, a stream clock that starts unknown and is the minimum
over two partitions, and costs with up to 17 significant digits at magnitudes from 1e-9 to 1e6 (so
the 60-digit Decimal rounding is exercised). A small driver stands in for Flink's timer service on
each side: Java's is dev.tessera.stream.Replay, Python's is `python_replay` below, step for step the
same. The outputs (feature rows and late events, as the JSON each engine writes to Kafka) must be
identical strings. No cluster: a JVM and the jar.
"""
from __future__ import annotations

import heapq
import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from streaming.aggregator import KeyAggregator, ViewPlan, on_event, on_timer, plans_to_json
from streaming.stream_clock import PartitionClock
from tessera.definitions import load_definitions
from tessera.generator import EventGenerator, GeneratorConfig
from tests.streaming.jvm import run_main

ROOT = Path(__file__).resolve().parents[2]
START = 1_772_323_200_000  # 2026-03-01T00:00Z


def _events(count: int) -> list[dict[str, Any]]:
    config = GeneratorConfig(seed=33, users=40, campaigns=6, ctr=0.2, cvr=0.3,
                             duplicates=0.05, out_of_order=0.1, late=0.03, invalid=0.0)
    rng = random.Random(7)
    clock = PartitionClock(partitions=2, idle_ms=10_000)
    out = []
    for i, m in enumerate(EventGenerator(config, START, rate_per_s=3.0).take(count)):
        assert m.event is not None
        e = m.event.as_dict()
        if i % 3 == 0:  # a full-precision float at any magnitude, not the generator's 6 decimals
            e["cost"] = rng.random() * 10.0 ** rng.randint(-9, 6)
        now = 1_000 + i  # processing time: no partition ever goes idle here
        out.append({**e, "clock": clock.observe(e["user_id"] % 2, e["event_time"], now, now)})
    return out


def python_replay(plans: list[ViewPlan], events: list[dict[str, Any]]) -> list[str]:
    """What streaming/job.py's Aggregate emits, with Flink's timers simulated as Replay.java does."""
    out: list[str] = []
    state: dict[str, KeyAggregator] = {}
    timers: list[tuple[int, str]] = []
    pending: set[tuple[int, str]] = set()  # Flink keeps one timer per (key, time)
    by_view = {p.view: p for p in plans}
    max_ts = watermark = -2**63

    def fire(until: float) -> None:
        while timers and timers[0][0] <= until:
            boundary, skey = heapq.heappop(timers)
            pending.discard((boundary, skey))
            agg = state.get(skey)
            if agg is None:
                continue
            view, _, key = skey.rpartition(":")
            row = on_timer(by_view[view], agg, int(key), boundary)
            if agg.is_empty():
                del state[skey]
            if row is not None:
                out.append(row.to_json())

    for e in events:
        for index, plan in enumerate(plans):
            key = e[plan.key_field]
            if e["clock"] is not None and e["event_time"] < e["clock"] - plan.allowed_lateness_ms:
                if index == 0:
                    out.append("late " + json.dumps(e, separators=(",", ":")))
                continue
            skey = f"{plan.view}:{key}"
            row, new_timers = on_event(plan, state.setdefault(skey, KeyAggregator()), key, e)
            if row is None:
                continue
            for boundary in new_timers:
                if (boundary, skey) not in pending:
                    pending.add((boundary, skey))
                    heapq.heappush(timers, (boundary, skey))
            out.append(row.to_json())
        max_ts = max(max_ts, e["clock"] if e["clock"] is not None else 0)
        watermark = max(watermark, max_ts - 1)
        fire(watermark)
    fire(float("inf"))
    return out


@pytest.mark.parametrize("forget_at_lateness,through_state", [(False, False), (True, False), (True, True)])
def test_jvm_rows_equal_python_rows(tmp_path: Path, forget_at_lateness: bool, through_state: bool) -> None:
    """through_state: the JVM's state goes through its checkpoint serializer and copy-on-write copy
    after every event, and must come back the same."""
    plans = [replace(ViewPlan.compile(v), forget_at_lateness=forget_at_lateness)
             for v in load_definitions(ROOT / "feature_repo").streaming_views()]
    events = _events(12_000)  # about 1.1 h of event time: every window decays at least once
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plans_to_json(plans))
    lines = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events)
    jvm = run_main("Replay", [str(plan_file), *(["--through-state"] if through_state else [])], lines)
    python = python_replay(plans, events)
    assert sum(line.startswith("late ") for line in python) > 100
    assert any('"impressions_1h":0,' in line for line in python), "no window decayed to 0"
    assert len(jvm) == len(python)
    for i, (j, p) in enumerate(zip(jvm, python)):
        assert j == p, f"row {i} differs:\n jvm    {j}\n python {p}"
