"""SPEC.md's value(k, t), computed the slow obvious way, independently of tessera.windows."""
from __future__ import annotations

import math
from dataclasses import dataclass

DAY = 86_400_000
MIN = 60_000
HOUR = 60 * MIN
# The g of each window length of feature_repo/views.py (24h leaves by the hour, the rest by the minute).
GRANULARITY = {5 * MIN: MIN, HOUR: MIN, 24 * HOUR: HOUR}


@dataclass(frozen=True)
class Ev:
    event_id: str
    event_type: str
    event_time: int
    user_id: int
    campaign_id: int
    cost: float


def _in_sliding(e: Ev, t: int, w: int) -> bool:
    g = GRANULARITY[w]
    return e.event_time <= t < math.ceil((e.event_time + w) / g) * g


def _in_daily(e: Ev, t: int, days: int) -> bool:
    day_end = (e.event_time // DAY + 1) * DAY
    return day_end <= t < day_end + days * DAY


def _sliding(events: list[Ev], t: int, w: int) -> dict[str, float | int]:
    inside = [e for e in events if _in_sliding(e, t, w)]
    return {
        "impressions": sum(e.event_type == "impression" for e in inside),
        "clicks": sum(e.event_type == "click" for e in inside),
        "conversions": sum(e.event_type == "conversion" for e in inside),
        "spend": math.fsum(e.cost for e in inside),
    }


def user_ad_activity(events: list[Ev], t: int) -> dict[str, float | int | None]:
    out: dict[str, float | int | None] = {}
    windows = {"5m": 5 * MIN, "1h": 60 * MIN, "24h": 24 * 60 * MIN}
    agg = {name: _sliding(events, t, w) for name, w in windows.items()}
    for name in ("5m", "1h", "24h"):
        out[f"impressions_{name}"] = agg[name]["impressions"]
        out[f"clicks_{name}"] = agg[name]["clicks"]
    for name in ("1h", "24h"):
        out[f"conversions_{name}"] = agg[name]["conversions"]
        out[f"spend_{name}"] = agg[name]["spend"]
        imps = agg[name]["impressions"]
        out[f"ctr_{name}"] = None if imps == 0 else agg[name]["clicks"] / imps
    return out


def campaign_delivery(events: list[Ev], t: int) -> dict[str, float | int | None]:
    h, d = _sliding(events, t, 60 * MIN), _sliding(events, t, 24 * 60 * MIN)
    return {"impressions_1h": h["impressions"], "clicks_1h": h["clicks"], "conversions_24h": d["conversions"],
            "spend_1h": h["spend"], "spend_24h": d["spend"]}


def user_profile_daily(events: list[Ev], t: int) -> dict[str, float | int | None]:
    inside = [e for e in events if _in_daily(e, t, 30)]
    return {
        "impressions_30d": sum(e.event_type == "impression" for e in inside),
        "clicks_30d": sum(e.event_type == "click" for e in inside),
        "spend_30d": math.fsum(e.cost for e in inside),
        "active_days_30d": len({e.event_time // DAY for e in inside}),
    }


ORACLES = {"user_ad_activity": ("user_id", user_ad_activity),
           "campaign_delivery": ("campaign_id", campaign_delivery),
           "user_profile_daily": ("user_id", user_profile_daily)}


def dedup(events: list[Ev]) -> list[Ev]:
    seen: dict[str, Ev] = {}
    for e in events:
        seen.setdefault(e.event_id, e)
    return list(seen.values())


def agree(expected: float | int | None, got: float | int | None) -> bool:
    """Counts exactly; sums and ratios within 1e-9 relative (SPEC.md parity)."""
    if expected is None or got is None:
        return expected is None and got is None
    if isinstance(expected, int) and not isinstance(expected, bool):
        return got == expected
    return math.isclose(float(got), float(expected), rel_tol=1e-9, abs_tol=1e-12)
