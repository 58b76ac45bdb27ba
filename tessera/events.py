"""The `ad_events` schema: one validation used by every producer and consumer.

`parse_event` turns the bytes of one Kafka message into an `AdEvent` or a `Rejection` whose
`code` is stable (for metrics and tests) and whose `reason` says exactly what was wrong.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from tessera.windows import DAY_MS

EVENT_TYPES = ("impression", "click", "conversion")
INT64_MAX = 2**63 - 1
MAX_FUTURE_MS = DAY_MS  # an event more than a day ahead of the stream's clock is bogus
# 9999-01-01T00:00Z. Any later event_time, once a window is added, is beyond the dates that
# Python, Parquet partitions and Feast's timestamps can hold: the sink would crash on it.
MAX_EVENT_TIME_MS = 253_370_764_800_000
# Every counted event_id is kept in keyed state for a day; a megabyte id would be a memory bomb.
MAX_EVENT_ID_BYTES = 512

# Stable rejection codes; the DLQ and the metrics carry them.
NOT_JSON = "not_json"
NOT_OBJECT = "not_object"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
EMPTY_EVENT_ID = "empty_event_id"
UNKNOWN_EVENT_TYPE = "unknown_event_type"
NEGATIVE_VALUE = "negative_value"
OUT_OF_RANGE = "out_of_range"
FUTURE_EVENT_TIME = "future_event_time"
REJECTION_CODES = (NOT_JSON, NOT_OBJECT, MISSING_FIELD, WRONG_TYPE, EMPTY_EVENT_ID, UNKNOWN_EVENT_TYPE,
                   NEGATIVE_VALUE, OUT_OF_RANGE, FUTURE_EVENT_TIME)

_INT_FIELDS = ("event_time", "user_id", "ad_id", "campaign_id")
FIELDS = ("event_id", "event_type", "event_time", "user_id", "ad_id", "campaign_id", "cost")


@dataclass(frozen=True, slots=True)
class AdEvent:
    event_id: str
    event_type: str
    event_time: int
    user_id: int
    ad_id: int
    campaign_id: int
    cost: float

    def as_dict(self) -> dict[str, Any]:
        # Built by hand: dataclasses.asdict is several times slower on the generator's hot path.
        return {"event_id": self.event_id, "event_type": self.event_type, "event_time": self.event_time,
                "user_id": self.user_id, "ad_id": self.ad_id, "campaign_id": self.campaign_id, "cost": self.cost}

    def to_json_bytes(self) -> bytes:
        return json.dumps(self.as_dict(), separators=(",", ":")).encode()

    @property
    def key(self) -> bytes:
        """The Kafka message key: user_id as a decimal string."""
        return str(self.user_id).encode()


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str
    reason: str


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, as a reason names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def json_preview(value: Any, limit: int) -> str:
    """A value for a reason: its JSON type, then for a scalar its JSON text cut at `limit` characters.
    JSON text (ASCII, floats as repr) rather than Python's repr, so the JVM engine's validator
    (jars/aggregator EventSchema.java) words every reason byte for byte the same."""
    if value is None or isinstance(value, (list, dict)):
        return json_type(value)
    return f"{json_type(value)} {json.dumps(value)[:limit]}"


def _check_fields(obj: dict[str, Any], clock_ms: int | None) -> Rejection | None:
    for name in FIELDS:
        if name not in obj:
            return Rejection(MISSING_FIELD, f"missing field {name!r}")
    for name in ("event_id", "event_type"):
        if not isinstance(obj[name], str):
            return Rejection(WRONG_TYPE, f"{name} must be a string, got {json_type(obj[name])}")
    if not obj["event_id"]:
        return Rejection(EMPTY_EVENT_ID, "event_id is empty")
    try:
        # A JSON escape like "\ud800" decodes to a lone surrogate, which no UTF-8 writer (Parquet,
        # Kafka's string serializer) accepts downstream.
        id_bytes = len(obj["event_id"].encode("utf-8"))
    except UnicodeEncodeError:
        return Rejection(WRONG_TYPE, "event_id is not valid Unicode text (it holds a lone surrogate escape)")
    if id_bytes > MAX_EVENT_ID_BYTES:
        return Rejection(OUT_OF_RANGE, f"event_id is {id_bytes} bytes long (limit {MAX_EVENT_ID_BYTES})")
    if obj["event_type"] not in EVENT_TYPES:
        return Rejection(UNKNOWN_EVENT_TYPE,
                         f"unknown event_type {json.dumps(obj['event_type'])[:60]} (expected one of {', '.join(EVENT_TYPES)})")
    for name in _INT_FIELDS:
        value = obj[name]
        if not _is_int(value):
            return Rejection(WRONG_TYPE, f"{name} must be an integer, got {json_preview(value, 40)}")
        if value < 0:
            return Rejection(NEGATIVE_VALUE, f"{name} is negative ({value})")
        if value > INT64_MAX:
            return Rejection(OUT_OF_RANGE, f"{name} does not fit in 64 bits")
    if obj["event_time"] >= MAX_EVENT_TIME_MS:
        return Rejection(OUT_OF_RANGE, f"event_time {obj['event_time']} is after 9999-01-01")
    cost = obj["cost"]
    if not (_is_int(cost) or isinstance(cost, float)):
        return Rejection(WRONG_TYPE, f"cost must be a number, got {json_type(cost)}")
    if isinstance(cost, float) and not math.isfinite(cost):
        return Rejection(OUT_OF_RANGE, f"cost is not finite ({cost})")
    if cost < 0:
        return Rejection(NEGATIVE_VALUE, f"cost is negative ({cost})")
    if abs(cost) > 1e15:
        return Rejection(OUT_OF_RANGE, f"cost {cost} is implausibly large")
    if clock_ms is not None and obj["event_time"] > clock_ms + MAX_FUTURE_MS:
        ahead_h = (obj["event_time"] - clock_ms) / 3_600_000
        return Rejection(FUTURE_EVENT_TIME, f"event_time is {ahead_h:.1f} h ahead of the stream clock (limit 24 h)")
    return None


def parse_event(raw: bytes | None, clock_ms: int | None = None) -> AdEvent | Rejection:
    """Validate one message value. `clock_ms` is the stream's clock for the future-time rule."""
    if raw is None:
        return Rejection(NOT_JSON, "message has no value")
    try:
        # Strict UTF-8 first (RFC 8259): json.loads(bytes) would also take UTF-16/32 and decode
        # UTF-8-encoded surrogates ("surrogatepass") into strings nothing downstream can write.
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        return Rejection(NOT_JSON, f"not JSON: {err}"[:200])
    except RecursionError:
        return Rejection(NOT_JSON, "not JSON: nested too deeply")
    if not isinstance(obj, dict):
        return Rejection(NOT_OBJECT, f"expected a JSON object, got {json_type(obj)}")
    rejection = _check_fields(obj, clock_ms)
    if rejection is not None:
        return rejection
    return AdEvent(
        event_id=obj["event_id"],
        event_type=obj["event_type"],
        event_time=obj["event_time"],
        user_id=obj["user_id"],
        ad_id=obj["ad_id"],
        campaign_id=obj["campaign_id"],
        cost=float(obj["cost"]),
    )
