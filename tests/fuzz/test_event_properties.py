"""Property-based tests of the event schema and the dead-letter envelope (hypothesis).

Whatever bytes arrive on ad_events, `parse_event` answers an AdEvent or a Rejection with a stable
code and a short reason, never an exception; whatever it accepts, every stage after it (window
arithmetic, the Parquet history, Feast's timestamps) can hold; valid events round-trip exactly;
and a dead letter always keeps the original bytes and fits the DLQ topic.
"""
from __future__ import annotations

import base64
import json
import math
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streaming.dead_letters import MAX_ORIGINAL_BYTES, StreamValidator, envelope, original_bytes
from tessera.config import KafkaSettings
from tessera.events import (EVENT_TYPES, FIELDS, INT64_MAX, MAX_EVENT_ID_BYTES, MAX_EVENT_TIME_MS, MAX_FUTURE_MS,
                            REJECTION_CODES, AdEvent, Rejection, parse_event)
from tessera.raw_history import events_table, utc_date
from tessera.windows import DAY_MS, leave_boundary

CLOCK_MS = 1_750_000_000_000
LONGEST_WINDOW_MS = 31 * DAY_MS  # the daily view's 30 days plus its day of publication
MAX_REASON = 300
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- strategies ---------------------------------------------------------------------------------

# Anything JSON can spell, Python's json included (NaN, Infinity, ints of any size).
json_scalars = st.one_of(
    st.none(), st.booleans(), st.text(max_size=40),
    st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, INT64_MAX, INT64_MAX + 1, -(2**63), 2**64, 10**30, MAX_EVENT_TIME_MS]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-0.0, 5e-324, 1e15, 1e15 + 1, 1e308, 0.1 + 0.2]),
)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)

valid_events = st.builds(
    AdEvent,
    # Any Unicode text but lone surrogates (not text), within the id length limit.
    event_id=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=60)
    .filter(lambda s: len(s.encode()) <= MAX_EVENT_ID_BYTES),
    event_type=st.sampled_from(EVENT_TYPES),
    event_time=st.integers(0, MAX_EVENT_TIME_MS - 1),
    user_id=st.integers(0, INT64_MAX),
    ad_id=st.integers(0, INT64_MAX),
    campaign_id=st.integers(0, INT64_MAX),
    cost=st.floats(0, 1e15, allow_nan=False, allow_infinity=False),
)


def as_obj(event: AdEvent) -> dict[str, Any]:
    return event.as_dict()


def encode(obj: Any, ascii_only: bool = True) -> bytes:
    return json.dumps(obj, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


# --- what every answer must look like ---------------------------------------------------------------

def check_answer(result: AdEvent | Rejection) -> None:
    """A Rejection names a known code and says why, briefly; an AdEvent is one every stage can hold."""
    if isinstance(result, Rejection):
        assert result.code in REJECTION_CODES
        assert result.reason and len(result.reason) <= MAX_REASON
        return
    assert isinstance(result, AdEvent)
    assert result.event_type in EVENT_TYPES
    assert result.event_id and len(result.event_id.encode("utf-8")) <= MAX_EVENT_ID_BYTES
    for name in ("event_time", "user_id", "ad_id", "campaign_id"):
        value = getattr(result, name)
        assert type(value) is int and 0 <= value <= INT64_MAX
    assert isinstance(result.cost, float) and math.isfinite(result.cost) and result.cost >= 0
    # Downstream: the longest window's leave boundary fits a Java long and a calendar date, and
    # the Parquet history takes the event (UTF-8 only, int64 columns).
    assert leave_boundary(result.event_time, LONGEST_WINDOW_MS, 60_000) <= INT64_MAX
    utc_date(result.event_time + LONGEST_WINDOW_MS)
    events_table([result])


# --- never an exception -------------------------------------------------------------------------

@FAST
@given(raw=st.one_of(st.none(), st.binary(max_size=300)),
       clock=st.one_of(st.none(), st.integers(-(2**64), 2**64)))
@example(raw=b'"\xed\xa0\x80"', clock=None)         # a UTF-8-encoded surrogate
@example(raw=b"\xef\xbb\xbf{}", clock=None)         # a byte-order mark
@example(raw='{"a": 1}'.encode("utf-16"), clock=None)
def test_random_bytes_never_raise(raw: bytes | None, clock: int | None) -> None:
    check_answer(parse_event(raw, clock))


@FAST
@given(obj=json_values)
def test_any_json_value_is_answered(obj: Any) -> None:
    check_answer(parse_event(encode(obj)))


@FAST
@given(event=valid_events, field=st.sampled_from(FIELDS), value=json_values,
       clock=st.one_of(st.none(), st.integers(0, 2 * MAX_EVENT_TIME_MS)))
def test_one_wrong_field_is_answered(event: AdEvent, field: str, value: Any, clock: int | None) -> None:
    obj = as_obj(event)
    obj[field] = value
    result = parse_event(encode(obj), clock)
    check_answer(result)
    if isinstance(result, AdEvent):
        assert getattr(result, field) == value  # accepted only because the value was valid after all


@FAST
@given(event=valid_events, cut=st.integers(min_value=0))
def test_truncated_json_is_not_json(event: AdEvent, cut: int) -> None:
    raw = event.to_json_bytes()
    result = parse_event(raw[:cut % len(raw)])
    assert isinstance(result, Rejection) and result.code == "not_json", result


@FAST
@given(event=valid_events, escape=st.sampled_from(["\\ud800", "\\udfff", "a\\udc80b"]))
def test_lone_surrogate_escapes_in_the_id_are_rejected(event: AdEvent, escape: str) -> None:
    # The id's value, not its first spelling anywhere: an id such as "event_id" is also a key.
    field = b'"event_id":'
    raw = event.to_json_bytes().replace(field + json.dumps(event.event_id).encode(), field + f'"{escape}"'.encode(), 1)
    assert raw != event.to_json_bytes()
    result = parse_event(raw)
    assert isinstance(result, Rejection) and result.code == "wrong_type", result


@pytest.mark.parametrize("literal, code", [
    (b"NaN", "out_of_range"), (b"Infinity", "out_of_range"), (b"-Infinity", "out_of_range"),
    (b"1e309", "out_of_range"), (b"1e16", "out_of_range"), (b"-0.0", None), (b"5e-324", None),
    (b"1" + b"0" * 5000, "not_json"),  # more digits than Python's int parser allows
    (b'"12"', "wrong_type"), (b"true", "wrong_type"), (b"[1]", "wrong_type"), (b"{}", "wrong_type"),
])
def test_extreme_costs(literal: bytes, code: str | None) -> None:
    raw = encode(as_obj(AdEvent("e", "click", CLOCK_MS, 1, 2, 3, 123.5))).replace(b"123.5", literal)
    result = parse_event(raw)
    check_answer(result)
    assert (result.code if isinstance(result, Rejection) else None) == code


@pytest.mark.parametrize("event_time, code", [
    (-1, "negative_value"), (-(2**63), "negative_value"), (0, None), (MAX_EVENT_TIME_MS - 1, None),
    (MAX_EVENT_TIME_MS, "out_of_range"), (INT64_MAX, "out_of_range"), (INT64_MAX + 1, "out_of_range"),
    (2**200, "out_of_range"),
])
def test_extreme_event_times_without_a_clock(event_time: int, code: str | None) -> None:
    result = parse_event(encode({**as_obj(AdEvent("e", "click", 0, 1, 2, 3, 1.0)), "event_time": event_time}))
    check_answer(result)
    assert (result.code if isinstance(result, Rejection) else None) == code


@pytest.mark.parametrize("raw, code", [
    pytest.param(b"{" * 1_000_000, "not_json", id="deeply-nested"),
    pytest.param(b"[" * 1_000_000, "not_json", id="deeply-nested-list"),
    pytest.param(b"\x00" * 1_000_000, "not_json", id="zeros"),
    pytest.param(b"7" * 1_000_000, "not_json", id="huge-number"),
    pytest.param(json.dumps("x" * 1_000_000).encode(), "not_object", id="huge-string"),
    pytest.param(encode({**as_obj(AdEvent("e", "click", 0, 1, 2, 3, 1.0)), "event_id": "é" * 500_000}),
                 "out_of_range", id="huge-event-id"),
    pytest.param(encode({**as_obj(AdEvent("e", "click", 0, 1, 2, 3, 1.0)), "event_type": "x" * 1_000_000}),
                 "unknown_event_type", id="huge-event-type"),
    pytest.param(encode({**as_obj(AdEvent("e", "click", 0, 1, 2, 3, 1.0)), "padding": "p" * 1_000_000}),
                 None, id="huge-extra-field"),
])
def test_huge_messages(raw: bytes, code: str | None) -> None:
    result = parse_event(raw)
    check_answer(result)
    assert (result.code if isinstance(result, Rejection) else None) == code


# --- valid events round-trip --------------------------------------------------------------------

@FAST
@given(event=valid_events, ascii_only=st.booleans(), indent=st.sampled_from([None, 2]))
def test_valid_events_round_trip(event: AdEvent, ascii_only: bool, indent: int | None) -> None:
    assert parse_event(event.to_json_bytes()) == event
    spelled = json.dumps(as_obj(event), ensure_ascii=ascii_only, indent=indent).encode("utf-8")
    result = parse_event(spelled, event.event_time)
    assert result == event
    check_answer(result)


@FAST
@given(event=valid_events, ahead=st.integers(-DAY_MS, 2 * MAX_FUTURE_MS))
def test_the_future_rule_is_exactly_one_day(event: AdEvent, ahead: int) -> None:
    clock = max(0, event.event_time - ahead)
    result = parse_event(event.to_json_bytes(), clock)
    if event.event_time - clock > MAX_FUTURE_MS:
        assert isinstance(result, Rejection) and result.code == "future_event_time"
    else:
        assert result == event


# --- the stream validator -----------------------------------------------------------------------

@FAST
@given(messages=st.lists(st.one_of(valid_events.map(AdEvent.to_json_bytes), st.binary(max_size=50), st.none()),
                         max_size=30),
       now=st.integers(0, MAX_EVENT_TIME_MS))
def test_the_validator_never_accepts_beyond_a_day_ahead(messages: list[bytes | None], now: int) -> None:
    validator = StreamValidator(now_ms=lambda: now)
    for raw in messages:
        before = validator.clock_ms
        reference = before if before is not None else now
        result = validator.check(raw)
        check_answer(result)
        if isinstance(result, AdEvent):
            assert result.event_time <= reference + MAX_FUTURE_MS
        assert before is None or validator.clock_ms >= before  # the clock never moves back


def test_without_a_stream_clock_the_wall_clock_bounds_the_future() -> None:
    validator = StreamValidator(now_ms=lambda: CLOCK_MS)
    far = AdEvent("e1", "click", CLOCK_MS + 365 * DAY_MS, 1, 2, 3, 1.0)
    result = validator.check(far.to_json_bytes())
    assert isinstance(result, Rejection) and result.code == "future_event_time"
    assert "wall clock" in result.reason and validator.clock_ms is None
    replay = AdEvent("e2", "click", CLOCK_MS - 300 * DAY_MS, 1, 2, 3, 1.0)  # old events are fine
    assert validator.check(replay.to_json_bytes()) == replay and validator.clock_ms == replay.event_time


# --- dead letters -------------------------------------------------------------------------------

@FAST
@given(raw=st.one_of(st.none(), st.binary(max_size=2_000), st.text(max_size=200).map(str.encode)),
       clock=st.one_of(st.none(), st.integers(0, INT64_MAX)))
def test_dead_letters_keep_the_original_and_the_reason(raw: bytes | None, clock: int | None) -> None:
    result = parse_event(raw, clock)
    if isinstance(result, AdEvent):
        return
    value = envelope(raw, result, clock)
    letter = json.loads(value)
    assert value.isascii()
    assert letter["code"] == result.code and letter["reason"] == result.reason
    assert letter["stream_clock_ms"] == clock
    assert original_bytes(value) == (raw or b"")
    assert letter["original_size"] == len(raw or b"")
    assert letter.get("original_null", False) is (raw is None)
    if letter["original_text"] is not None:
        assert letter["original_text"].encode() == raw


@pytest.mark.parametrize("size", [1_048_576, MAX_ORIGINAL_BYTES, MAX_ORIGINAL_BYTES + 1, 5_000_000])
def test_a_dead_letter_always_fits_the_dlq_topic(size: int) -> None:
    raw = bytes(range(256)) * (size // 256) + b"\xff" * (size % 256)
    result = parse_event(raw)
    assert isinstance(result, Rejection)
    value = envelope(raw, result, None).encode()
    assert len(value) < KafkaSettings().dlq_max_message_bytes - 1_000  # room for the record's headers
    letter = json.loads(value)
    kept = base64.b64decode(letter["original_base64"])
    assert letter["original_size"] == size
    if size <= MAX_ORIGINAL_BYTES:
        assert kept == raw and "original_truncated" not in letter
    else:
        assert raw.startswith(kept) and letter["original_truncated"] is True
        import hashlib
        assert letter["original_sha256"] == hashlib.sha256(raw).hexdigest()


def test_the_max_event_time_leaves_room_for_every_window() -> None:
    last = datetime.fromtimestamp((MAX_EVENT_TIME_MS + LONGEST_WINDOW_MS) / 1000, tz=timezone.utc)
    assert last.year == 9999
