"""The streaming aggregator against SPEC.md's brute force, on a simulated event-time clock.

The simulation stands in for Flink's timer service only (watermark = newest event time seen,
timers fire once it passes them, all remaining timers fire at the end of input); the rules under
test are the ones the Flink job runs.
"""
from __future__ import annotations

import heapq
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from streaming.aggregator import FeatureRow, KeyAggregator, ViewPlan, on_event, on_timer
from tessera.definitions import load_definitions
from tessera.generator import EventGenerator, GeneratorConfig
from tests.batch.brute_force import ORACLES, Ev, agree

ROOT = Path(__file__).resolve().parents[2]
START = 1_772_323_200_000  # 2026-03-01T00:00Z


def simulate(view_name: str, messages: list, lateness_ms: int, forget_at_lateness: bool = False
             ) -> tuple[dict[int, FeatureRow], list[Ev], int]:
    plan = replace(ViewPlan.compile(load_definitions(ROOT / "feature_repo").view(view_name)),
                   forget_at_lateness=forget_at_lateness)
    key_field = plan.key_field
    state: dict[int, KeyAggregator] = {}
    timers: list[tuple[int, int]] = []
    latest: dict[int, FeatureRow] = {}
    counted: list[Ev] = []
    late = 0
    clock = -1

    def fire(until: int) -> None:
        while timers and timers[0][0] <= until:
            boundary, key = heapq.heappop(timers)
            row = on_timer(plan, state[key], key, boundary)
            if row is not None:
                latest[key] = row

    for m in messages:
        if m.event is None:
            continue
        e = m.event.__dict__ if hasattr(m.event, "__dict__") else {f: getattr(m.event, f) for f in m.event.__slots__}
        if clock >= 0 and e["event_time"] < clock - lateness_ms:
            late += 1
            continue
        key = e[key_field]
        e = {**e, "clock": max(clock, e["event_time"])}  # as the job's Validate stamps it
        row, new_timers = on_event(plan, state.setdefault(key, KeyAggregator()), key, e)
        if row is not None:
            latest[key] = row
            counted.append(Ev(e["event_id"], e["event_type"], e["event_time"], e["user_id"], e["campaign_id"],
                              e["cost"]))
        for b in new_timers:
            heapq.heappush(timers, (b, key))
        clock = max(clock, e["event_time"])
        fire(clock)
    return latest, counted, late


# 2 events/s: ~2.8 h of event time, every minute boundary of the short windows; 0.2/s: ~28 h, so
# the 24h windows (which leave by the hour) have events leave them too.
@pytest.mark.parametrize("rate_per_s", [2.0, 0.2])
@pytest.mark.parametrize("forget_at_lateness", [False, True])
@pytest.mark.parametrize("view_name", ["user_ad_activity", "campaign_delivery"])
def test_latest_rows_equal_brute_force_mid_stream(view_name: str, forget_at_lateness: bool, rate_per_s: float
                                                  ) -> None:
    config = GeneratorConfig(seed=21, users=25, campaigns=5, ctr=0.15, cvr=0.3,
                             duplicates=0.05, out_of_order=0.1, late=0.03, invalid=0.02)
    messages = EventGenerator(config, START, rate_per_s=rate_per_s).take(20_000)
    latest, counted, late = simulate(view_name, messages, config.allowed_lateness_ms, forget_at_lateness)
    assert late == sum(m.kind == "late" for m in messages)
    assert len(counted) == sum(m.kind in ("valid", "out_of_order") for m in messages)
    key_field, oracle = ORACLES[view_name]
    for key, row in latest.items():
        expected = oracle([e for e in counted if getattr(e, key_field) == key], row.as_of)
        for name, got in row.values.items():
            assert agree(expected[name], got), f"{view_name}:{name} key={key} as_of={row.as_of}: " \
                                               f"{got!r} != {expected[name]!r}"


def test_quiet_key_decays_to_zero() -> None:
    from tessera.generator import Message
    from tessera.events import AdEvent

    def msg(i: int, t: int, user: int, kind: str = "impression") -> Message:
        e = AdEvent(f"e{i}", kind, t, user, 1, 1, 0.25)
        return Message(e.key, e.to_json_bytes(), "valid", e)

    # User 1 is active once; user 2 keeps the clock moving for two more hours.
    stream = [msg(0, START + 30_500, 1, "click"), msg(1, START + 31_000, 1)]
    stream += [msg(10 + i, START + 60_000 * i, 2) for i in range(1, 130)]
    latest, _counted, _late = simulate("user_ad_activity", stream, 10_000)
    row = latest[1]
    assert row.as_of == START + 61 * 60_000  # ceil_1m(00:00:31 + 1h): both events have left the 1h window
    assert row.values["impressions_1h"] == 0 and row.values["clicks_1h"] == 0
    assert row.values["spend_1h"] == 0.0 and row.values["ctr_1h"] is None
    assert row.values["impressions_24h"] == 1 and row.values["spend_24h"] == 0.5


def test_a_checkpoint_of_the_first_state_format_restores() -> None:
    """The first KeyAggregator kept counted ids as a dict of id -> forget time, without a heap."""
    import pickle

    old = KeyAggregator()
    old.__dict__.pop("forget")
    old.__dict__["seen"] = {"a": 5, "b": 3}
    restored = pickle.loads(pickle.dumps(old))
    assert restored.seen == {"a", "b"}
    assert sorted(restored.forget) == [(3, "b"), (5, "a")] and restored.forget[0] == (3, "b")


def test_decay_is_exactly_zero_whatever_the_magnitudes_of_the_costs() -> None:
    """Sums are exact: a fixed decimal precision (the totals once kept 60 digits) rounds a sum of costs
    of very different magnitudes, and the total left after every bucket has gone was then a residue
    such as -3.6e-56 instead of 0."""
    from tessera.events import AdEvent
    from tessera.generator import Message

    costs = [1e-9 / 3, 1234.5678901234567, 0.1, 7e5 / 7, 2.5e-7, 0.3]  # the first has 75 significant digits
    stream = []
    for i, cost in enumerate(costs):
        e = AdEvent(f"c{i}", "impression", START + 1_000 * i, 1, 1, 1, cost)
        stream.append(Message(e.key, e.to_json_bytes(), "valid", e))
    for i in range(1, 70):  # user 2 moves the clock past every 1h leave boundary of user 1
        e = AdEvent(f"q{i}", "impression", START + 60_000 * i, 2, 1, 1, 0.0)
        stream.append(Message(e.key, e.to_json_bytes(), "valid", e))
    latest, _counted, _late = simulate("user_ad_activity", stream, 10_000)
    assert latest[1].values["spend_1h"] == 0.0 and latest[1].values["impressions_1h"] == 0
    assert latest[1].values["spend_24h"] == float(sum(map(Fraction, costs)))  # the exact sum, rounded once


def test_forgetting_at_lateness_keeps_seconds_of_ids_and_still_drops_every_copy() -> None:
    """ViewPlan.forget_at_lateness: a key busy for two hours remembers the ids of its last allowed
    lateness (10 s), not of its longest window (24 h); a copy within the lateness still counts once."""
    base = ViewPlan.compile(load_definitions(ROOT / "feature_repo").view("user_ad_activity"))
    remembered, values = {}, {}
    for forget in (False, True):
        plan = replace(base, forget_at_lateness=forget)
        agg, counted = KeyAggregator(), 0
        for i in range(7_200):  # one event a second, and a copy of each 5 s later (within the lateness)
            t = START + i * 1_000
            copies = [(f"e{i - 5}", t - 5_000)] if i >= 5 else []
            for event_id, event_time in [(f"e{i}", t), *copies]:
                event = {"event_id": event_id, "event_type": "impression", "event_time": event_time, "user_id": 1,
                         "ad_id": 1, "campaign_id": 1, "cost": 0.5, "clock": t}
                row, _timers = on_event(plan, agg, 1, event)
                counted += row is not None
        assert counted == 7_200, "a copy was counted twice"
        values[forget] = agg.values(plan)
        remembered[forget] = len(agg.seen)
    assert values[True] == values[False]
    assert remembered[False] == 7_200  # every id of the 24 h window
    assert remembered[True] <= 11      # t >= clock - 10 s
