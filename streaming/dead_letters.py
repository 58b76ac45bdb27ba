"""What goes to the dead-letter topic: the original bytes (base64, exact) and why they were refused."""
from __future__ import annotations

import base64
import json

from tessera.events import AdEvent, Rejection, parse_event


def envelope(raw: bytes, rejection: Rejection, clock_ms: int | None) -> str:
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return json.dumps({
        "code": rejection.code,
        "reason": rejection.reason,
        "original_base64": base64.b64encode(raw).decode(),
        "original_text": text if text is not None and len(text) <= 10_000 else None,
        "stream_clock_ms": clock_ms,
    }, separators=(",", ":"))


def original_bytes(dlq_value: bytes | str) -> bytes:
    return base64.b64decode(json.loads(dlq_value)["original_base64"])


class StreamValidator:
    """Validates messages in arrival order; the stream clock is the newest valid event time seen."""

    def __init__(self) -> None:
        self.clock_ms: int | None = None

    def check(self, raw: bytes) -> AdEvent | Rejection:
        result = parse_event(raw, self.clock_ms)
        if isinstance(result, AdEvent) and (self.clock_ms is None or result.event_time > self.clock_ms):
            self.clock_ms = result.event_time
        return result
