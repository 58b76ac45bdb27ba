"""The window semantics of SPEC.md as pure arithmetic on epoch milliseconds.

Event e of key k is in a window of length w and granularity g at time t exactly when
    e.event_time <= t < ceil_g(e.event_time + w)
so an event counts from its own time on and leaves at the first g boundary after w has passed.
The streaming job, the backfill and the parity check all use these functions.
"""
from __future__ import annotations

import re
from typing import Mapping

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

_UNITS_MS = {"ms": 1, "s": SECOND_MS, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS}
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")


def parse_duration(text: str) -> int:
    """'5m' -> 300000. Only whole numbers of one unit, so every name maps to one length."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"duration {text!r} is not <number><unit> with unit one of ms, s, m, h, d")
    return int(match.group(1)) * _UNITS_MS[match.group(2)]


def format_duration(ms: int) -> str:
    """300000 -> '5m': the largest unit that divides the length exactly (feature-name suffixes)."""
    for unit in ("d", "h", "m", "s"):
        if ms % _UNITS_MS[unit] == 0 and ms >= _UNITS_MS[unit]:
            # 24h stays '24h' rather than '1d': SPEC names the 24-hour windows that way.
            if unit == "d" and ms < 2 * DAY_MS:
                continue
            return f"{ms // _UNITS_MS[unit]}{unit}"
    return f"{ms}ms"


def floor_to(ts_ms: int, granularity_ms: int) -> int:
    return (ts_ms // granularity_ms) * granularity_ms


def ceil_to(ts_ms: int, granularity_ms: int) -> int:
    return -((-ts_ms) // granularity_ms) * granularity_ms


def leave_boundary(event_time_ms: int, window_ms: int, granularity_ms: int) -> int:
    """The first instant at which the event no longer counts: ceil_g(event_time + w)."""
    return ceil_to(event_time_ms + window_ms, granularity_ms)


def last_leave(event_time_ms: int, granularities: Mapping[int, int]) -> int:
    """When an event has left every one of the windows {length: g}: the latest of its leave boundaries."""
    return max(leave_boundary(event_time_ms, w, g) for w, g in granularities.items())


def in_window(event_time_ms: int, t_ms: int, window_ms: int, granularity_ms: int) -> bool:
    return event_time_ms <= t_ms < leave_boundary(event_time_ms, window_ms, granularity_ms)


def daily_enter(event_time_ms: int) -> int:
    """A daily-snapshot view counts an event from the end of its UTC day (when that day's value is published)."""
    return floor_to(event_time_ms, DAY_MS) + DAY_MS


def daily_leave(event_time_ms: int, window_days: int) -> int:
    return daily_enter(event_time_ms) + window_days * DAY_MS


def in_daily_window(event_time_ms: int, t_ms: int, window_days: int) -> bool:
    """The value at t covers the `window_days` UTC days that ended at or before t."""
    return daily_enter(event_time_ms) <= t_ms < daily_leave(event_time_ms, window_days)
