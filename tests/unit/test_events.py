"""parse_event accepts exactly the events of SPEC.md "Events" and rejects everything else with a
stable code and a reason that names what was wrong."""
from __future__ import annotations

import json
import random
from typing import Any

import pytest

from tessera.events import AdEvent, Rejection, parse_event

DAY_MS = 24 * 60 * 60 * 1000  # written out: SPEC.md's "more than 1 day ahead"
INT64_MAX = 2**63 - 1
CLOCK_MS = 1_750_000_000_000
FIELDS = ("event_id", "event_type", "event_time", "user_id", "ad_id", "campaign_id", "cost")
INT_FIELDS = ("event_time", "user_id", "ad_id", "campaign_id")


def good(**changes: Any) -> dict[str, Any]:
    """A valid event as a JSON-ready dict, with some fields replaced."""
    obj: dict[str, Any] = {
        "event_id": "evt-1",
        "event_type": "impression",
        "event_time": CLOCK_MS,
        "user_id": 42,
        "ad_id": 4_001,
        "campaign_id": 500,
        "cost": 0.0025,
    }
    obj.update(changes)
    return obj


def without(name: str) -> dict[str, Any]:
    obj = good()
    del obj[name]
    return obj


def encode(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def accepted(raw: bytes, clock_ms: int | None = None) -> AdEvent:
    result = parse_event(raw, clock_ms)
    assert isinstance(result, AdEvent), f"rejected: {result}"
    return result


def rejected(raw: bytes | None, clock_ms: int | None = None) -> Rejection:
    result = parse_event(raw, clock_ms)
    assert isinstance(result, Rejection), f"accepted: {result}"
    assert result.reason, "a rejection must say why"
    return result


# --- valid events -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(good(event_type="impression"), id="impression"),
        pytest.param(good(event_type="click", cost=0.61), id="click"),
        pytest.param(good(event_type="conversion", cost=0), id="conversion"),
        pytest.param(good(cost=3), id="int-cost"),
        pytest.param(good(cost=0.0), id="float-zero-cost"),
        pytest.param(good(user_id=0, ad_id=0, campaign_id=0, event_time=0), id="zeros"),
        pytest.param(good(user_id=INT64_MAX, ad_id=INT64_MAX, campaign_id=INT64_MAX), id="int64-max-ids"),
        pytest.param(good(event_id="ünïcode \"quoted\" id"), id="unicode-id"),
        pytest.param(good(event_id=" "), id="whitespace-id-is-non-empty"),
    ],
)
def test_accepts_valid_event(obj: dict[str, Any]) -> None:
    event = accepted(encode(obj))
    assert event.event_id == obj["event_id"]
    assert event.event_type == obj["event_type"]
    assert event.event_time == obj["event_time"]
    assert event.user_id == obj["user_id"]
    assert event.ad_id == obj["ad_id"]
    assert event.campaign_id == obj["campaign_id"]
    assert event.cost == obj["cost"]
    assert isinstance(event.cost, float), "cost is normalised to float whether sent as int or float"
    for name in INT_FIELDS:
        assert type(getattr(event, name)) is int


def test_extra_fields_are_ignored() -> None:
    obj = good(extra="x", nested={"a": [1, 2]}, user_agent=None)
    assert accepted(encode(obj)) == accepted(encode(good()))


def test_key_is_user_id_as_decimal_string() -> None:
    assert accepted(encode(good(user_id=INT64_MAX))).key == b"9223372036854775807"
    assert accepted(encode(good(user_id=0))).key == b"0"


def test_compact_and_pretty_json_parse_the_same() -> None:
    compact = json.dumps(good(), separators=(",", ":")).encode()
    pretty = json.dumps(good(), indent=4).encode()
    assert accepted(compact) == accepted(pretty)


# --- not JSON / not an object -----------------------------------------------------------------

@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(encode(good())[:-10], id="truncated"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00\x9f\x13\xc7garbage\xfe\xfe\x01", id="random-bytes"),
        pytest.param(json.dumps(good(event_id="café"), ensure_ascii=False).encode("latin-1"), id="latin-1"),
        pytest.param(b"\xff\xfe\xfd", id="invalid-utf8"),
        pytest.param(encode(good()) + b" trailing", id="trailing-garbage"),
        pytest.param(b"{'event_id': 'single-quoted'}", id="python-repr"),
        pytest.param(b"[" * 200_000, id="nested-too-deep"),
    ],
)
def test_rejects_non_json(raw: bytes) -> None:
    assert rejected(raw).code == "not_json"


def test_rejects_missing_value() -> None:
    assert rejected(None).code == "not_json"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(encode(list(good().values())), id="list"),
        pytest.param(b'"an event"', id="string"),
        pytest.param(b"42", id="number"),
        pytest.param(b"null", id="null"),
        pytest.param(b"true", id="bool"),
    ],
)
def test_rejects_json_that_is_not_an_object(raw: bytes) -> None:
    assert rejected(raw).code == "not_object"


# --- field rules ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", FIELDS)
def test_rejects_missing_field(name: str) -> None:
    rejection = rejected(encode(without(name)))
    assert rejection.code == "missing_field"
    assert name in rejection.reason


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("event_id", 17),
        ("event_id", None),
        ("event_id", ["evt-1"]),
        ("event_type", 1),
        ("event_type", None),
        ("event_time", str(CLOCK_MS)),
        ("event_time", float(CLOCK_MS)),
        ("event_time", CLOCK_MS + 0.5),
        ("event_time", None),
        ("user_id", "42"),
        ("user_id", True),
        ("user_id", False),
        ("user_id", None),
        ("user_id", 42.0),
        ("ad_id", "4001"),
        ("ad_id", None),
        ("ad_id", {"id": 4001}),
        ("campaign_id", "500"),
        ("campaign_id", True),
        ("campaign_id", None),
        ("cost", "0.25"),
        ("cost", None),
        ("cost", True),
        ("cost", [0.25]),
    ],
)
def test_rejects_mistyped_field(name: str, value: Any) -> None:
    rejection = rejected(encode(good(**{name: value})))
    assert rejection.code == "wrong_type"
    assert name in rejection.reason


def test_rejects_empty_event_id() -> None:
    rejection = rejected(encode(good(event_id="")))
    assert rejection.code == "empty_event_id"
    assert "event_id" in rejection.reason


@pytest.mark.parametrize("event_type", ["view", "Impression", "CLICK", "impressions", "", " click"])
def test_rejects_unknown_event_type(event_type: str) -> None:
    rejection = rejected(encode(good(event_type=event_type)))
    assert rejection.code == "unknown_event_type"
    assert "event_type" in rejection.reason


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("event_time", -1),
        ("user_id", -1),
        ("ad_id", -1),
        ("campaign_id", -7),
        ("user_id", -(2**63)),
        ("cost", -0.01),
        ("cost", -1),
        ("cost", -1e-300),
    ],
)
def test_rejects_negative_number(name: str, value: int | float) -> None:
    rejection = rejected(encode(good(**{name: value})))
    assert rejection.code == "negative_value"
    assert name in rejection.reason


@pytest.mark.parametrize("name", INT_FIELDS)
@pytest.mark.parametrize("value", [INT64_MAX + 1, 2**64, 10**30])
def test_rejects_integer_beyond_int64(name: str, value: int) -> None:
    rejection = rejected(encode(good(**{name: value})))
    assert rejection.code == "out_of_range"
    assert name in rejection.reason


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_rejects_non_finite_cost(literal: bytes) -> None:
    # Python's json reads these non-standard literals, so the schema has to catch them itself.
    raw = encode(good(cost=123456.0)).replace(b"123456.0", literal)
    assert literal in raw
    rejection = rejected(raw)
    assert rejection.code == "out_of_range"
    assert "cost" in rejection.reason


# --- event time against the stream's clock ----------------------------------------------------

@pytest.mark.parametrize("ahead_ms", [DAY_MS + 1, DAY_MS + 60_000, 2 * DAY_MS, 365 * DAY_MS])
def test_rejects_event_more_than_a_day_ahead_of_the_clock(ahead_ms: int) -> None:
    rejection = rejected(encode(good(event_time=CLOCK_MS + ahead_ms)), clock_ms=CLOCK_MS)
    assert rejection.code == "future_event_time"
    assert "event_time" in rejection.reason


@pytest.mark.parametrize("ahead_ms", [DAY_MS, DAY_MS - 1, 1, 0, -1, -30 * DAY_MS])
def test_accepts_event_up_to_exactly_a_day_ahead_or_in_the_past(ahead_ms: int) -> None:
    event = accepted(encode(good(event_time=CLOCK_MS + ahead_ms)), clock_ms=CLOCK_MS)
    assert event.event_time == CLOCK_MS + ahead_ms


def test_without_a_clock_future_time_is_not_checked() -> None:
    far_future = CLOCK_MS + 1000 * DAY_MS
    assert accepted(encode(good(event_time=far_future))).event_time == far_future
    assert rejected(encode(good(event_time=far_future)), clock_ms=CLOCK_MS).code == "future_event_time"


def test_a_field_error_wins_over_the_clock() -> None:
    """Rule order does not let a bad event through: a negative id is still rejected with a clock."""
    assert rejected(encode(good(user_id=-1)), clock_ms=CLOCK_MS).code == "negative_value"


# --- round trip -------------------------------------------------------------------------------

def _random_event(rng: random.Random) -> AdEvent:
    return AdEvent(
        event_id=rng.choice(["e", "evt-", "é\"\\\n✓"]) + str(rng.getrandbits(64)),
        event_type=rng.choice(["impression", "click", "conversion"]),
        event_time=rng.randrange(0, 4_000_000_000_000),
        user_id=rng.choice([0, rng.randrange(10**6), INT64_MAX]),
        ad_id=rng.randrange(0, INT64_MAX + 1),
        campaign_id=rng.randrange(0, 10_000),
        cost=rng.choice([0.0, rng.random(), rng.lognormvariate(0, 3), 0.1 + 0.2]),
    )


def test_to_json_bytes_round_trips() -> None:
    rng = random.Random(1234)
    for _ in range(2_000):
        event = _random_event(rng)
        raw = event.to_json_bytes()
        assert accepted(raw) == event
        assert set(json.loads(raw)) == set(FIELDS)
