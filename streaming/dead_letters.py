"""What goes to the dead-letter topic: the original bytes (base64, exact) and why they were refused."""
from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Callable

from tessera.events import FUTURE_EVENT_TIME, AdEvent, Rejection, parse_event

# The DLQ topic is created with max.message.bytes = 2 MiB (tessera.config.KafkaSettings) so that a
# message at the broker's default 1 MiB limit still fits once base64 has grown it by a third.
# Anything larger (a remote cluster with a higher limit) keeps a prefix, its size and its SHA-256:
# a dead letter too big to write would stop the job on every restart.
MAX_ORIGINAL_BYTES = 1_500_000
MAX_ORIGINAL_TEXT = 10_000


def envelope(raw: bytes | None, rejection: Rejection, clock_ms: int | None) -> str:
    """The DLQ record. `raw` None is a message without a value (a tombstone)."""
    data = raw if raw is not None else b""
    kept = data[:MAX_ORIGINAL_BYTES]
    try:
        text: str | None = kept.decode("utf-8") if raw is not None and len(data) <= MAX_ORIGINAL_TEXT else None
    except UnicodeDecodeError:
        text = None
    letter: dict[str, object] = {
        "code": rejection.code,
        "reason": rejection.reason,
        "original_base64": base64.b64encode(kept).decode(),
        "original_text": text,
        "original_size": len(data),
        "stream_clock_ms": clock_ms,
    }
    if raw is None:
        letter["original_null"] = True
    if len(kept) < len(data):
        letter["original_truncated"] = True
        letter["original_sha256"] = hashlib.sha256(data).hexdigest()
    return json.dumps(letter, separators=(",", ":"))


def original_bytes(dlq_value: bytes | str) -> bytes:
    return base64.b64decode(json.loads(dlq_value)["original_base64"])


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class StreamValidator:
    """Validates messages in arrival order; the stream clock is the newest valid event time seen.

    Until the stream has a clock (at start, and after every restart: the clock is not checkpointed)
    the wall clock stands in for the future-time rule. Otherwise the first message of a run could
    carry any event_time up to year 9999, become the clock, and make every real event after it late.
    """

    def __init__(self, now_ms: Callable[[], int] = wall_clock_ms) -> None:
        self.clock_ms: int | None = None
        self._now_ms = now_ms

    def check(self, raw: bytes | None) -> AdEvent | Rejection:
        if self.clock_ms is not None:
            result = parse_event(raw, self.clock_ms)
        else:
            result = parse_event(raw, self._now_ms())
            if isinstance(result, Rejection) and result.code == FUTURE_EVENT_TIME:
                result = Rejection(result.code, result.reason.replace(
                    "the stream clock", "the wall clock (the stream has no clock yet)"))
        if isinstance(result, AdEvent) and (self.clock_ms is None or result.event_time > self.clock_ms):
            self.clock_ms = result.event_time
        return result
