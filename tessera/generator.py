"""A deterministic synthetic `ad_events` stream.

Users and campaigns are Zipf-skewed; each event is an impression, a click (about `ctr` of
impressions) or a conversion (about `cvr` of clicks). On request some messages are duplicates
(the same bytes again, as a retrying producer sends), out of order within the allowed lateness,
late beyond it, or invalid in one of the ways the schema rejects. The same seed, start and count
give the same messages, and every message says what kind it is so tests can check the pipeline.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator, Literal

import numpy as np

from tessera.events import AdEvent, EVENT_TYPES
from tessera.windows import DAY_MS, SECOND_MS

Kind = Literal["valid", "duplicate", "out_of_order", "late", "invalid"]
KINDS: tuple[Kind, ...] = ("valid", "duplicate", "out_of_order", "late", "invalid")
INVALID_SHAPES = ("not_json", "not_object", "missing_field", "wrong_type", "empty_event_id",
                  "unknown_event_type", "negative_value", "future_event_time")
_DUP_LOOKBACK = 1_000  # a duplicate repeats one of the last this-many in-order events...


@dataclass(frozen=True)
class GeneratorConfig:
    seed: int = 42
    users: int = 100_000
    campaigns: int = 500
    ads_per_campaign: int = 8
    zipf_s: float = 1.1
    ctr: float = 0.02
    cvr: float = 0.05
    duplicates: float = 0.0
    out_of_order: float = 0.0
    late: float = 0.0
    invalid: float = 0.0
    allowed_lateness_ms: int = 10 * SECOND_MS

    def __post_init__(self) -> None:
        fractions = (self.duplicates, self.out_of_order, self.late, self.invalid)
        if any(f < 0 for f in fractions) or sum(fractions) >= 1:
            raise ValueError("duplicate, out-of-order, late and invalid fractions must be >= 0 and sum below 1")
        if self.users < 1 or self.campaigns < 1 or self.ads_per_campaign < 1:
            raise ValueError("users, campaigns and ads per campaign must be at least 1")
        if not (0 <= self.ctr < 1 and 0 <= self.cvr < 1):
            raise ValueError("ctr and cvr are fractions in [0, 1)")


@dataclass(frozen=True, slots=True)
class Message:
    """One Kafka message as generated: bytes to send and what they are."""

    key: bytes | None
    value: bytes
    kind: Kind
    event: AdEvent | None  # None for an invalid message
    invalid_shape: str | None = None


def zipf_cdf(n: int, s: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


class EventGenerator:
    """Generates message i for i = 0, 1, ... in batches; state carries across batches."""

    def __init__(self, config: GeneratorConfig, start_ms: int, rate_per_s: float) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate must be positive")
        self.config = config
        self.start_ms = start_ms
        self.rate = rate_per_s
        self._rng = np.random.default_rng(config.seed)
        self._user_cdf = zipf_cdf(config.users, config.zipf_s)
        self._campaign_cdf = zipf_cdf(config.campaigns, config.zipf_s)
        # Shuffle which ids are popular so user 0 is not always the heaviest.
        self._user_ids = self._rng.permutation(config.users)
        self._campaign_ids = self._rng.permutation(config.campaigns)
        p_click = config.ctr / (1 + config.ctr + config.ctr * config.cvr)
        p_conv = p_click * config.cvr
        self._type_cdf = np.cumsum([1 - p_click - p_conv, p_click, p_conv])
        kinds_p = [config.duplicates, config.out_of_order, config.late, config.invalid]
        self._kind_cdf = np.cumsum([1 - sum(kinds_p), *kinds_p])
        self._next_index = 0
        self._max_time = start_ms - 1
        self._recent: list[Message] = []
        self._id_prefix = f"{config.seed:x}-{start_ms:x}"
        # ...and no older than half the allowed lateness, as a producer's retry is: so a duplicate
        # is itself on time, and only the `late` kind is late.
        self._dup_lookback = max(1, min(_DUP_LOOKBACK, int(rate_per_s * config.allowed_lateness_ms / 2000)))

    @property
    def hottest_user(self) -> int:
        """The user id with the highest Zipf weight (the one a demo watches)."""
        return int(self._user_ids[0])

    def take(self, count: int) -> list[Message]:
        """The next `count` messages."""
        c, rng, n = self.config, self._rng, count
        index = np.arange(self._next_index, self._next_index + n)
        base = self.start_ms + (index * 1000.0 / self.rate).astype(np.int64)
        kinds = np.searchsorted(self._kind_cdf, rng.random(n), side="right").clip(0, 4)
        types = np.searchsorted(self._type_cdf, rng.random(n), side="right").clip(0, 2)
        users = self._user_ids[np.searchsorted(self._user_cdf, rng.random(n))]
        campaigns = self._campaign_ids[np.searchsorted(self._campaign_cdf, rng.random(n))]
        ads = campaigns * c.ads_per_campaign + rng.integers(0, c.ads_per_campaign, n)
        impression_cost = rng.lognormal(np.log(0.002), 0.5, n)
        click_cost = rng.lognormal(np.log(0.6), 0.6, n)
        jitter = rng.random(n)
        late_extra_ms = rng.integers(5 * SECOND_MS, 10 * 60 * SECOND_MS, n)
        dup_pick = rng.integers(1, _DUP_LOOKBACK + 1, n)
        shape_pick = rng.integers(0, len(INVALID_SHAPES), n)
        out: list[Message] = []
        for j in range(n):
            kind: Kind = KINDS[int(kinds[j])]
            if kind in ("duplicate", "late", "out_of_order") and not self._recent:
                kind = "valid"  # nothing to repeat, and no stream clock to be behind, yet
            if kind == "duplicate":
                source = self._recent[-min(1 + int(dup_pick[j]) % self._dup_lookback, len(self._recent))]
                out.append(Message(source.key, source.value, "duplicate", source.event))
                continue
            t = int(base[j])
            if kind == "out_of_order":
                # Behind the newest event sent (by at least 1 ms) but within the allowed lateness, so
                # still on time. Relative to the newest event, not to this message's own time, which
                # at low rates can be ahead of it.
                t = self._max_time - 1 - int(jitter[j] * 0.9 * max(0, c.allowed_lateness_ms - 1))
            elif kind == "late":
                t = self._max_time - c.allowed_lateness_ms - int(late_extra_ms[j])
            event_type = EVENT_TYPES[int(types[j])]
            cost = {"impression": impression_cost[j], "click": click_cost[j]}.get(event_type, 0.0)
            event = AdEvent(
                event_id=f"{self._id_prefix}-{int(index[j]):x}",
                event_type=event_type,
                event_time=t,
                user_id=int(users[j]),
                ad_id=int(ads[j]),
                campaign_id=int(campaigns[j]),
                cost=round(float(cost), 6),
            )
            if kind == "invalid":
                shape = INVALID_SHAPES[int(shape_pick[j])]
                out.append(Message(event.key, _corrupt(event, shape), "invalid", None, shape))
                continue
            message = Message(event.key, event.to_json_bytes(), kind, event)
            out.append(message)
            self._max_time = max(self._max_time, t)
            if kind == "valid":
                self._recent.append(message)
            if len(self._recent) > 2 * _DUP_LOOKBACK:
                del self._recent[:_DUP_LOOKBACK]
        self._next_index += n
        return out

    def batches(self, count: int, batch_size: int = 10_000) -> Iterator[list[Message]]:
        remaining = count
        while remaining > 0:
            size = min(batch_size, remaining)
            yield self.take(size)
            remaining -= size


def _corrupt(event: AdEvent, shape: str) -> bytes:
    """The bytes of an invalid message of the given shape, derived from a real event."""
    obj: dict[str, object] = json.loads(event.to_json_bytes())
    if shape == "not_json":
        return event.to_json_bytes()[: len(event.to_json_bytes()) // 2]
    if shape == "not_object":
        return json.dumps(list(obj.values())).encode()
    if shape == "missing_field":
        del obj["campaign_id"]
    elif shape == "wrong_type":
        obj["user_id"] = str(obj["user_id"])
    elif shape == "empty_event_id":
        obj["event_id"] = ""
    elif shape == "unknown_event_type":
        obj["event_type"] = "view"
    elif shape == "negative_value":
        obj["cost"] = -abs(float(obj["cost"])) - 0.01
    elif shape == "future_event_time":
        obj["event_time"] = int(obj["event_time"]) + 2 * DAY_MS
    return json.dumps(obj, separators=(",", ":")).encode()
