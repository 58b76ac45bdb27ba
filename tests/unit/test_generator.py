"""The synthetic ad_events stream: deterministic, schema-valid where it says so, rejected where it
says so, and with the mix of duplicates, disorder, lateness, skew and click rate that was asked for."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import pytest

from tessera.events import AdEvent, Rejection, parse_event
from tessera.generator import EventGenerator, GeneratorConfig, Message

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
N = 50_000
MIX = GeneratorConfig(seed=11, duplicates=0.05, out_of_order=0.08, late=0.03, invalid=0.04,
                      ctr=0.2, cvr=0.25, allowed_lateness_ms=10_000)  # high ctr/cvr: rates measurable
ORIGINAL_KINDS = ("valid", "out_of_order", "late")  # the kinds that carry a new event
# invalid_shape -> the rejection code parse_event must give (the names of the two vocabularies agree by design)
EXPECTED_CODE = {
    "not_json": "not_json",
    "not_object": "not_object",
    "missing_field": "missing_field",
    "wrong_type": "wrong_type",
    "empty_event_id": "empty_event_id",
    "unknown_event_type": "unknown_event_type",
    "negative_value": "negative_value",
    "future_event_time": "future_event_time",
}


@dataclass
class Replay:
    """What a consumer sees going through the stream in order."""

    messages: list[Message]
    max_before: list[int | None] = field(default_factory=list)  # max event_time of earlier originals

    def __post_init__(self) -> None:
        latest: int | None = None
        for m in self.messages:
            self.max_before.append(latest)
            if m.kind in ORIGINAL_KINDS:
                assert m.event is not None
                latest = m.event.event_time if latest is None else max(latest, m.event.event_time)


def generate(config: GeneratorConfig, count: int, rate: float = 1_000.0, start_ms: int = START_MS) -> list[Message]:
    return EventGenerator(config, start_ms, rate).take(count)


@pytest.fixture(scope="module")
def mixed() -> Replay:
    return Replay(generate(MIX, N))


def within_sigmas(observed: float, expected: float, sigma: float, k: float = 4.0) -> bool:
    return abs(observed - expected) <= k * sigma


# --- determinism ------------------------------------------------------------------------------

def test_same_seed_start_rate_and_batching_give_identical_messages() -> None:
    a = EventGenerator(MIX, START_MS, 500.0)
    b = EventGenerator(MIX, START_MS, 500.0)
    for size in (1, 7, 1_000, 3_000):
        assert a.take(size) == b.take(size)


def test_batches_are_consecutive_takes() -> None:
    via_batches = [m for batch in EventGenerator(MIX, START_MS, 500.0).batches(2_500, batch_size=1_000) for m in batch]
    gen = EventGenerator(MIX, START_MS, 500.0)
    via_take = gen.take(1_000) + gen.take(1_000) + gen.take(500)
    assert [m.value for m in via_batches] == [m.value for m in via_take]
    assert len(via_batches) == 2_500


def test_ids_and_times_do_not_depend_on_batching() -> None:
    """What batching does not change (the random draws are per batch, so other fields may differ):
    with no disorder, message i has its own id and the event time start + i / rate."""
    config = GeneratorConfig(seed=3)
    rate = 400.0
    one = generate(config, 600, rate)
    gen = EventGenerator(config, START_MS, rate)
    split = gen.take(250) + gen.take(350)
    for i, (x, y) in enumerate(zip(one, split, strict=True)):
        assert x.event is not None and y.event is not None
        assert x.event.event_id == y.event.event_id
        assert x.event.event_time == y.event.event_time == START_MS + math.floor(i * 1000 / rate)


def test_different_seed_or_start_gives_different_messages() -> None:
    base = [m.value for m in generate(MIX, 1_000)]
    other_seed = [m.value for m in generate(GeneratorConfig(**{**MIX.__dict__, "seed": 12}), 1_000)]
    other_start = [m.value for m in generate(MIX, 1_000, start_ms=START_MS + 1)]
    assert base != other_seed
    assert base != other_start
    assert not set(base) & set(other_seed)  # not even one message coincides


# --- every message is what it says it is -----------------------------------------------------

def test_every_event_message_parses_to_its_event(mixed: Replay) -> None:
    for m, clock in zip(mixed.messages, mixed.max_before):
        if m.kind == "invalid":
            continue
        assert m.event is not None and m.invalid_shape is None
        assert parse_event(m.value, clock) == m.event
        assert m.key == str(m.event.user_id).encode()  # SPEC: key = user_id as a decimal string


def test_every_invalid_message_is_rejected_for_its_shape(mixed: Replay) -> None:
    shapes: Counter[str] = Counter()
    for m, clock in zip(mixed.messages, mixed.max_before):
        if m.kind != "invalid":
            continue
        assert m.event is None
        result = parse_event(m.value, clock)
        assert isinstance(result, Rejection), (m.invalid_shape, m.value)
        assert result.code == EXPECTED_CODE[m.invalid_shape or ""], (m.invalid_shape, result)
        shapes[m.invalid_shape or ""] += 1
    assert set(shapes) == set(EXPECTED_CODE), "every invalid shape occurs in 50k messages"


def test_every_kind_occurs(mixed: Replay) -> None:
    assert set(Counter(m.kind for m in mixed.messages)) == {"valid", "duplicate", "out_of_order", "late", "invalid"}


@pytest.mark.parametrize(("kind", "asked"), [("duplicate", MIX.duplicates), ("out_of_order", MIX.out_of_order),
                                             ("late", MIX.late), ("invalid", MIX.invalid)])
def test_kind_fractions_are_as_asked(mixed: Replay, kind: str, asked: float) -> None:
    observed = sum(m.kind == kind for m in mixed.messages)
    assert within_sigmas(observed, N * asked, math.sqrt(N * asked * (1 - asked))), (kind, observed / N)


def test_zero_fractions_give_only_valid_in_order_events() -> None:
    replay = Replay(generate(GeneratorConfig(seed=5), 5_000))
    assert {m.kind for m in replay.messages} == {"valid"}
    for m, latest in zip(replay.messages, replay.max_before):
        assert m.event is not None
        assert latest is None or m.event.event_time >= latest


# --- duplicates, disorder, lateness -----------------------------------------------------------

def test_duplicates_repeat_an_earlier_event_exactly(mixed: Replay) -> None:
    originals: dict[str, Message] = {}
    for m, latest in zip(mixed.messages, mixed.max_before):
        if m.kind in ORIGINAL_KINDS:
            assert m.event is not None
            originals[m.event.event_id] = m
        elif m.kind == "duplicate":
            assert m.event is not None
            first = originals.get(m.event.event_id)
            assert first is not None, "a duplicate repeats an event that was already sent"
            assert (m.value, m.key, m.event) == (first.value, first.key, first.event)
            assert first.kind == "valid", "a retry repeats an in-order event"
            assert first.event is not None and latest is not None
            # a producer's retry comes soon: within the allowed lateness, so well inside SPEC's 24 h dedup horizon
            assert latest - first.event.event_time < MIX.allowed_lateness_ms


def test_event_ids_are_unique_among_originals(mixed: Replay) -> None:
    ids = [m.event.event_id for m in mixed.messages if m.kind in ORIGINAL_KINDS and m.event is not None]
    assert len(ids) == len(set(ids))
    assert all(ids)


@pytest.mark.parametrize("rate", [1.0, 20.0, 1_000.0, 20_000.0])
def test_out_of_order_events_are_behind_the_newest_but_within_lateness(rate: float) -> None:
    config = GeneratorConfig(seed=21, out_of_order=0.1, duplicates=0.05, invalid=0.05, late=0.02)
    replay = Replay(generate(config, 20_000, rate))
    checked = 0
    for m, latest in zip(replay.messages, replay.max_before):
        if m.kind != "out_of_order" or latest is None:
            continue
        assert m.event is not None
        behind = latest - m.event.event_time
        assert 0 < behind < config.allowed_lateness_ms, (rate, latest, m.event)
        checked += 1
    assert checked > 1_500


@pytest.mark.parametrize("rate", [0.1, 1.0, 20.0, 1_000.0, 20_000.0])
def test_late_events_are_more_than_the_allowed_lateness_behind(rate: float) -> None:
    config = GeneratorConfig(seed=22, late=0.1, duplicates=0.05, invalid=0.05, out_of_order=0.05)
    replay = Replay(generate(config, 20_000, rate))
    checked = 0
    for m, latest in zip(replay.messages, replay.max_before):
        if m.kind != "late" or latest is None:
            continue
        assert m.event is not None
        assert latest - m.event.event_time > config.allowed_lateness_ms, (rate, latest, m.event)
        checked += 1
    assert checked > 1_500


def test_valid_events_never_go_backwards(mixed: Replay) -> None:
    for m, latest in zip(mixed.messages, mixed.max_before):
        if m.kind == "valid" and latest is not None:
            assert m.event is not None and m.event.event_time >= latest


# --- the shape of the traffic -----------------------------------------------------------------

def originals(replay: Replay) -> list[AdEvent]:
    return [m.event for m in replay.messages if m.kind in ORIGINAL_KINDS and m.event is not None]


def test_users_are_zipf_skewed(mixed: Replay) -> None:
    events = originals(mixed)
    counts = sorted(Counter(e.user_id for e in events).values(), reverse=True)
    top_share = sum(counts[: MIX.users // 100]) / len(events)
    assert top_share > 0.10, f"top 1% of users have {top_share:.1%} of events"
    # the heaviest user gets what rank 1 of Zipf(s) over `users` ranks should: 1 / sum_k k^-s
    p_top = 1 / math.fsum(k ** -MIX.zipf_s for k in range(1, MIX.users + 1))
    assert within_sigmas(counts[0], len(events) * p_top, math.sqrt(len(events) * p_top * (1 - p_top)))
    assert all(0 <= e.user_id < MIX.users for e in events)


def test_campaigns_and_ads_are_consistent(mixed: Replay) -> None:
    for e in originals(mixed):
        assert 0 <= e.campaign_id < MIX.campaigns
        assert e.ad_id // MIX.ads_per_campaign == e.campaign_id  # every ad belongs to its campaign


def test_click_rate_is_ctr_of_impressions(mixed: Replay) -> None:
    types = Counter(e.event_type for e in originals(mixed))
    n = sum(types.values())
    imps, clicks, convs = types["impression"], types["click"], types["conversion"]
    # clicks - ctr * impressions has mean 0; its multinomial variance gives the tolerance
    p_i, p_c = imps / n, clicks / n
    sigma = math.sqrt(n * (p_c * (1 - p_c) + MIX.ctr**2 * p_i * (1 - p_i) + 2 * MIX.ctr * p_c * p_i))
    assert within_sigmas(clicks, MIX.ctr * imps, sigma), clicks / imps
    p_v = convs / n
    sigma = math.sqrt(n * (p_v * (1 - p_v) + MIX.cvr**2 * p_c * (1 - p_c) + 2 * MIX.cvr * p_v * p_c))
    assert within_sigmas(convs, MIX.cvr * clicks, sigma), convs / clicks


def test_costs_are_non_negative_and_impressions_are_cheaper_than_clicks(mixed: Replay) -> None:
    events = originals(mixed)
    assert all(e.cost >= 0 for e in events)
    mean = {t: sum(e.cost for e in events if e.event_type == t) / max(1, sum(e.event_type == t for e in events))
            for t in ("impression", "click")}
    assert mean["impression"] < mean["click"]


# --- configuration ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "changes",
    [
        {"duplicates": -0.01},
        {"invalid": -1.0},
        {"duplicates": 0.25, "out_of_order": 0.25, "late": 0.25, "invalid": 0.25},
        {"late": 1.0},
        {"out_of_order": 0.6, "late": 0.6},
        {"users": 0},
        {"campaigns": 0},
        {"ads_per_campaign": 0},
        {"ctr": 1.0},
        {"ctr": -0.1},
        {"cvr": 1.5},
    ],
)
def test_invalid_config_raises(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        GeneratorConfig(**changes)  # type: ignore[arg-type]


def test_fractions_just_below_one_are_allowed() -> None:
    GeneratorConfig(duplicates=0.25, out_of_order=0.25, late=0.25, invalid=0.2499)


@pytest.mark.parametrize("rate", [0.0, -5.0])
def test_non_positive_rate_raises(rate: float) -> None:
    with pytest.raises(ValueError):
        EventGenerator(GeneratorConfig(), START_MS, rate)
