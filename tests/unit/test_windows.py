"""The window arithmetic of SPEC.md "Window semantics", checked against independent computations."""
from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction

import pytest

from tessera.windows import (
    ceil_to,
    floor_to,
    format_duration,
    in_daily_window,
    in_window,
    leave_boundary,
    parse_duration,
)

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def utc_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, ms: int = 0) -> int:
    """Epoch ms of a UTC wall-clock time: utc_ms(2024, 3, 10, 23, 59, 59, 999)."""
    whole = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    return int(whole.timestamp()) * 1000 + ms


# --- durations --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("5m", 5 * MINUTE),
        ("1h", HOUR),
        ("24h", DAY),
        ("30d", 30 * DAY),
        ("10s", 10 * SECOND),
        ("250ms", 250),
        ("90s", 90 * SECOND),
        ("0s", 0),
        (" 5m ", 5 * MINUTE),
    ],
)
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize(
    "text",
    ["", "5", "m", "5 m", "1.5h", "-5m", "5M", "5H", "5min", "5mm", "1h30m", "5w", "five m", "0x10s"],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (5 * MINUTE, "5m"),
        (HOUR, "1h"),
        (DAY, "24h"),  # SPEC.md names the day windows *_24h, never *_1d
        (2 * DAY, "2d"),
        (30 * DAY, "30d"),
        (36 * HOUR, "36h"),
        (90 * SECOND, "90s"),
        (90 * MINUTE, "90m"),
        (10 * SECOND, "10s"),
        (1_500, "1500ms"),
        (1, "1ms"),
    ],
)
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration(ms) == text


@pytest.mark.parametrize("ms", [1, 999, SECOND, 61 * SECOND, MINUTE, HOUR, DAY, 2 * DAY, 25 * HOUR, 7 * DAY])
def test_format_then_parse_round_trips(ms: int) -> None:
    assert parse_duration(format_duration(ms)) == ms


# --- rounding to the granularity --------------------------------------------------------------

@pytest.mark.parametrize(
    ("ts", "g", "floor", "ceil"),
    [
        (0, MINUTE, 0, 0),
        (1, MINUTE, 0, MINUTE),
        (MINUTE, MINUTE, MINUTE, MINUTE),
        (MINUTE - 1, MINUTE, 0, MINUTE),
        (MINUTE + 1, MINUTE, MINUTE, 2 * MINUTE),
        (utc_ms(2024, 3, 10, 12, 34, 56, 789), MINUTE,
         utc_ms(2024, 3, 10, 12, 34), utc_ms(2024, 3, 10, 12, 35)),
        (utc_ms(2024, 3, 10, 12), HOUR, utc_ms(2024, 3, 10, 12), utc_ms(2024, 3, 10, 12)),
        (utc_ms(2024, 3, 10, 12, 0, 0, 1), DAY, utc_ms(2024, 3, 10), utc_ms(2024, 3, 11)),
        (-1, MINUTE, -MINUTE, 0),
    ],
)
def test_floor_and_ceil(ts: int, g: int, floor: int, ceil: int) -> None:
    assert floor_to(ts, g) == floor
    assert ceil_to(ts, g) == ceil


def test_leave_boundary_on_and_off_the_grid() -> None:
    on_grid = utc_ms(2024, 3, 10, 12, 0)
    # e + w on a boundary: leaves exactly w later
    assert leave_boundary(on_grid, 5 * MINUTE, MINUTE) == on_grid + 5 * MINUTE
    # one ms past a boundary: leaves at the next boundary after e + w
    assert leave_boundary(on_grid + 1, 5 * MINUTE, MINUTE) == on_grid + 6 * MINUTE
    assert leave_boundary(on_grid + MINUTE - 1, HOUR, MINUTE) == on_grid + HOUR + MINUTE


# --- in_window --------------------------------------------------------------------------------

def reference_in_window(event_ms: int, t_ms: int, window_ms: int, g_ms: int) -> bool:
    """SPEC.md literally: e <= t < ceil_g(e + w), with ceil done in exact rational arithmetic."""
    leave = math.ceil(Fraction(event_ms + window_ms, g_ms)) * g_ms
    return event_ms <= t_ms < leave


def test_event_counts_from_its_own_time() -> None:
    e = utc_ms(2024, 3, 10, 12, 0, 30)
    assert in_window(e, e, 5 * MINUTE, MINUTE)
    assert not in_window(e, e - 1, 5 * MINUTE, MINUTE)


def test_event_is_out_at_its_leave_boundary() -> None:
    e = utc_ms(2024, 3, 10, 12, 0, 30)  # + 5m = 12:05:30, leaves at 12:06:00
    leave = utc_ms(2024, 3, 10, 12, 6)
    assert in_window(e, leave - 1, 5 * MINUTE, MINUTE)
    assert not in_window(e, leave, 5 * MINUTE, MINUTE)


def test_window_is_exactly_w_when_the_event_is_on_a_boundary() -> None:
    e = utc_ms(2024, 3, 10, 12, 0)
    assert in_window(e, e + HOUR - 1, HOUR, MINUTE)
    assert not in_window(e, e + HOUR, HOUR, MINUTE)


@pytest.mark.parametrize(("w", "g"), [(5 * MINUTE, MINUTE), (HOUR, MINUTE), (DAY, MINUTE), (90 * SECOND, MINUTE),
                                      (HOUR, 7 * SECOND), (10 * SECOND, 1)])
def test_window_length_is_at_least_w_and_less_than_w_plus_g(w: int, g: int) -> None:
    rng = random.Random(w * 31 + g)
    base = utc_ms(2024, 1, 1)
    for _ in range(500):
        e = base + rng.randrange(0, 30 * DAY)
        length = leave_boundary(e, w, g) - e
        assert w <= length < w + g
        # and the event is in for exactly that many milliseconds around the ends
        assert in_window(e, e + length - 1, w, g)
        assert not in_window(e, e + length, w, g)


def test_in_window_agrees_with_a_brute_force_reference() -> None:
    rng = random.Random(20240310)
    windows = [5 * MINUTE, HOUR, DAY, 90 * SECOND, 7 * SECOND, 1]
    grains = [MINUTE, SECOND, HOUR, 7 * SECOND, 1, 13]
    base = utc_ms(2024, 1, 1)
    checked_in = checked_out = 0
    for _ in range(20_000):
        w, g = rng.choice(windows), rng.choice(grains)
        e = base + rng.randrange(0, 60 * DAY)
        if rng.random() < 0.3:
            e = e - e % g  # often exactly on a boundary
        # t near the interesting places: e itself, e + w, the next boundary, or anywhere nearby
        anchor = rng.choice([e, e + w, e + w + g - (e + w) % g, e + rng.randrange(-2 * g - w, 2 * (w + g))])
        t = anchor + rng.randrange(-2, 3)
        expected = reference_in_window(e, t, w, g)
        assert in_window(e, t, w, g) == expected, (e, t, w, g)
        checked_in += expected
        checked_out += not expected
    assert checked_in > 3_000 and checked_out > 3_000  # both outcomes were exercised


# --- daily windows ----------------------------------------------------------------------------

def reference_in_daily_window(event_ms: int, t_ms: int, window_days: int) -> bool:
    """The value at t covers the window_days UTC days that ended at or before t."""
    event_day = datetime.fromtimestamp(event_ms // 1000, tz=timezone.utc).date()
    t_dt = datetime.fromtimestamp(t_ms // 1000, tz=timezone.utc)  # whole seconds: the day is what matters
    last_ended: date = t_dt.date() - timedelta(days=1)  # the day that ended at the latest midnight <= t
    first: date = last_ended - timedelta(days=window_days - 1)
    return first <= event_day <= last_ended


def test_event_counts_only_from_the_end_of_its_utc_day() -> None:
    e = utc_ms(2024, 3, 10, 15, 30)
    assert not in_daily_window(e, e, 30)
    assert not in_daily_window(e, utc_ms(2024, 3, 10, 23, 59, 59, 999), 30)
    assert in_daily_window(e, utc_ms(2024, 3, 11), 30)


def test_last_millisecond_of_a_day_and_first_of_the_next_belong_to_different_days() -> None:
    last_ms = utc_ms(2024, 3, 10, 23, 59, 59, 999)
    midnight = utc_ms(2024, 3, 11)
    assert midnight - last_ms == 1
    # the 23:59:59.999 event is published at midnight; the 00:00:00.000 event only a day later
    assert in_daily_window(last_ms, midnight, 1)
    assert not in_daily_window(midnight, midnight, 1)
    assert not in_daily_window(midnight, utc_ms(2024, 3, 11, 23, 59, 59, 999), 1)
    assert in_daily_window(midnight, utc_ms(2024, 3, 12), 1)


def test_event_leaves_after_window_days_complete_days() -> None:
    e = utc_ms(2024, 3, 10, 0, 0)  # midnight exactly belongs to 2024-03-10
    enter = utc_ms(2024, 3, 11)
    leave = utc_ms(2024, 4, 10)  # 30 days after it entered
    assert in_daily_window(e, enter, 30)
    assert in_daily_window(e, leave - 1, 30)
    assert not in_daily_window(e, leave, 30)
    assert not in_daily_window(e, enter - 1, 30)


def test_in_daily_window_agrees_with_a_calendar_reference() -> None:
    rng = random.Random(7)
    base = utc_ms(2023, 12, 1)
    for _ in range(10_000):
        days = rng.choice([1, 2, 7, 30])
        e = base + rng.randrange(0, 90 * DAY)
        if rng.random() < 0.2:
            e -= e % DAY  # midnight exactly
        t = e + rng.choice([rng.randrange(-2 * DAY, (days + 2) * DAY), DAY - e % DAY, DAY - e % DAY - 1,
                            (days + 1) * DAY - e % DAY, (days + 1) * DAY - e % DAY - 1])
        assert in_daily_window(e, t, days) == reference_in_daily_window(e, t, days), (e, t, days)
