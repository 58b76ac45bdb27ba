"""bench/event_pump.py sends its plan again and again: every pass must be valid events, with ids no
other pass uses and times moved on by the plan's length, or a long soak would measure duplicates
the job drops (or late events it reports) instead of the load it claims."""
from __future__ import annotations

from collections import Counter
from itertools import islice

import pytest

from bench.event_pump import encode, plan_event, replay
from tessera.events import AdEvent, parse_event
from tessera.generator import EventGenerator, GeneratorConfig

START_MS = 1_790_000_000_000
RATE = 500.0


def generated(count: int) -> list[tuple[bytes | None, bytes]]:
    generator = EventGenerator(GeneratorConfig(seed=3, duplicates=0.05, out_of_order=0.05), START_MS, RATE)
    return [(m.key, m.value) for m in generator.take(count)]


def test_a_planned_event_encodes_back_to_its_bytes() -> None:
    for key, value in generated(300):
        event = plan_event(key, value)
        assert event.key == key
        assert event.id_head + event.mid + str(event.event_time).encode() + event.tail == value


@pytest.mark.parametrize("shift_ms", [0, 12_345])
def test_every_pass_renames_ids_and_moves_times_on(shift_ms: int) -> None:
    messages = generated(1_000)
    plan = [plan_event(k, v) for k, v in messages]
    span_ms = 2_000
    passes = 3
    sent = [(e.key, encode(e, suffix, shift_ms + shift))
            for e, suffix, shift in islice(replay(plan, span_ms), passes * len(plan))]
    events = [parse_event(value) for _, value in sent]
    assert all(isinstance(e, AdEvent) for e in events)
    originals = [parse_event(v) for _, v in messages]
    plan_ids = Counter(e.event_id for e in originals if isinstance(e, AdEvent))
    assert max(plan_ids.values()) > 1, "the plan must hold duplicates for this test to mean anything"
    for n in range(passes):
        chunk = [e for e in events[n * len(plan):(n + 1) * len(plan)] if isinstance(e, AdEvent)]
        # The plan's duplicates stay duplicates, within the pass only.
        assert sorted(Counter(e.event_id for e in chunk).values()) == sorted(plan_ids.values())
        for e, o in zip(chunk, originals):
            assert isinstance(o, AdEvent)
            assert e.event_time == o.event_time + shift_ms + n * span_ms
            assert (e.user_id, e.ad_id, e.campaign_id, e.event_type, e.cost) == (
                o.user_id, o.ad_id, o.campaign_id, o.event_type, o.cost)
        assert [k for k, _ in sent[n * len(plan):(n + 1) * len(plan)]] == [k for k, _ in messages]
    all_ids = Counter(e.event_id for e in events if isinstance(e, AdEvent))
    assert len(all_ids) == passes * len(plan_ids)


def test_an_event_in_another_field_order_is_refused() -> None:
    with pytest.raises(ValueError, match="field order"):
        plan_event(b"1", b'{"event_time":5,"event_id":"a-1","event_type":"click"}')
