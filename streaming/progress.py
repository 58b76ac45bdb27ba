"""Per-view progress of the online writer and the archiver, kept in Redis where the feature API reads it cheaply.

One small hash per streaming view, `tessera:progress:<view>`:

  as_of_ms     newest as_of written for the view (never moves back, also across restarts)
  clock_ms     the stream clock: newest valid event time the archiver has seen on ad_events
  rows_total   rows written for the view, over every run of the writer (a Prometheus counter)
  rows_per_s   rows written per second over the last RATE_WINDOW_S
  updated_ms   wall-clock time of this update: a writer that stopped reporting shows here

Feast's keys are serialized entity keys (binary, starting with the number of join keys as four
little-endian bytes) followed by the project name, so an ASCII "tessera:" prefix never collides
with one. Publishing is telemetry: a failure is logged and never stops the writer or the archiver.
Importable without Feast or Flink (the API reads these hashes with the helpers below).
"""
from __future__ import annotations

import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import ClassVar, Iterable, Mapping, Self

import redis

from streaming.aggregator import FeatureRow
from tessera.config import Settings

KEY_PREFIX = "tessera:progress:"
PUBLISH_EVERY_S = 1.0
RATE_WINDOW_S = 10.0


def progress_key(view: str) -> str:
    return KEY_PREFIX + view


@dataclass(frozen=True)
class ViewProgress:
    view: str
    as_of_ms: int | None
    clock_ms: int | None
    rows_total: int
    rows_per_s: float
    updated_ms: int

    @property
    def freshness_lag_ms(self) -> int | None:
        """How far the newest as_of is behind the stream clock (0 when it is level or ahead)."""
        if self.as_of_ms is None or self.clock_ms is None:
            return None
        return max(0, self.clock_ms - self.as_of_ms)


def _int(raw: bytes | str | None) -> int | None:
    try:
        return int(raw) if raw not in (None, b"", "") else None  # type: ignore[arg-type]
    except ValueError:
        return None


def parse_progress(view: str, raw: Mapping[bytes, bytes]) -> ViewProgress | None:
    """An HGETALL reply -> the progress, or None when the writer never reported this view."""
    if not raw:
        return None
    try:
        rate = float(raw.get(b"rows_per_s") or 0.0)
    except ValueError:
        rate = 0.0
    return ViewProgress(view, _int(raw.get(b"as_of_ms")), _int(raw.get(b"clock_ms")),
                        _int(raw.get(b"rows_total")) or 0, rate, _int(raw.get(b"updated_ms")) or 0)


class _Throttled:
    """Publishes at most once per `every_s`, starting from what an earlier run published."""

    name: ClassVar[str]  # the process, in its log lines

    def __init__(self, client: redis.Redis, views: Iterable[str], every_s: float = PUBLISH_EVERY_S) -> None:
        self.client = client
        self.views = list(views)
        self.every_s = every_s
        self.last_publish = float("-inf")
        self.started = False
        self.warned_at = float("-inf")

    @classmethod
    def for_settings(cls, settings: Settings, views: Iterable[str]) -> Self:
        from tessera.services.redis_server import redis_client

        return cls(redis_client(settings, timeout_s=1.0), views)

    def maybe_publish(self, force: bool = False) -> bool:
        now = time.monotonic()
        if not force and now - self.last_publish < self.every_s:
            return False
        self.last_publish = now
        try:
            if not self.started:
                self._resume()
                self.started = True
            self._publish(now)
            return True
        except redis.RedisError as err:
            if now - self.warned_at >= 60:  # telemetry: say it, but do not flood the log
                self.warned_at = now
                print(f"[{self.name}] progress not published to Redis: {err}", file=sys.stderr, flush=True)
            return False

    def _resume(self) -> None:
        raise NotImplementedError

    def _publish(self, now: float) -> None:
        raise NotImplementedError


class ClockPublisher(_Throttled):
    """The archiver's part of each view's hash: the stream clock (clock_ms), which never moves back."""

    name = "archive"

    def __init__(self, client: redis.Redis, views: Iterable[str], every_s: float = PUBLISH_EVERY_S) -> None:
        super().__init__(client, views, every_s)
        self.clock_ms: int | None = None

    def note(self, clock_ms: int | None) -> None:
        if clock_ms is not None and (self.clock_ms is None or clock_ms > self.clock_ms):
            self.clock_ms = clock_ms

    def _resume(self) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            for view in self.views:
                pipe.hget(progress_key(view), "clock_ms")
            self.note(max((c for c in map(_int, pipe.execute()) if c is not None), default=None))

    def _publish(self, now: float) -> None:
        if self.clock_ms is None:
            return
        with self.client.pipeline(transaction=False) as pipe:
            for view in self.views:
                pipe.hset(progress_key(view), "clock_ms", str(self.clock_ms))
            pipe.execute()


class ProgressPublisher(_Throttled):
    """The writer's part of each view's hash: what it wrote (as_of_ms, rows_total, rows_per_s, updated_ms)."""

    name = "sink"

    def __init__(self, client: redis.Redis, views: Iterable[str], every_s: float = PUBLISH_EVERY_S) -> None:
        super().__init__(client, views, every_s)
        self.as_of: dict[str, int] = {}
        self.unpublished: dict[str, int] = {v: 0 for v in self.views}
        self.written: dict[str, int] = {v: 0 for v in self.views}  # this run, for the rate
        self.history: deque[tuple[float, dict[str, int]]] = deque()

    def note(self, rows: Iterable[FeatureRow]) -> None:
        """Rows that were just written online (their offline files may follow)."""
        for row in rows:
            if row.view not in self.written:
                continue
            self.written[row.view] += 1
            self.unpublished[row.view] += 1
            if row.as_of > self.as_of.get(row.view, -1):
                self.as_of[row.view] = row.as_of

    def _resume(self) -> None:
        """Start from what an earlier run published, so as_of never goes back on a replay."""
        with self.client.pipeline(transaction=False) as pipe:
            for view in self.views:
                pipe.hget(progress_key(view), "as_of_ms")
            replies = pipe.execute()
        for view, raw_as_of in zip(self.views, replies):
            as_of = _int(raw_as_of)
            if as_of is not None and as_of > self.as_of.get(view, -1):
                self.as_of[view] = as_of

    def _rates(self, now: float) -> dict[str, float]:
        self.history.append((now, dict(self.written)))
        while len(self.history) > 2 and now - self.history[1][0] >= RATE_WINDOW_S:
            self.history.popleft()
        then, old = self.history[0]
        span = now - then
        return {v: (self.written[v] - old[v]) / span if span > 0 else 0.0 for v in self.views}

    def _publish(self, now: float) -> None:
        rates = self._rates(now)
        updated_ms = int(time.time() * 1000)
        # MULTI/EXEC: a half-applied update would count its rows again on the next publish.
        with self.client.pipeline(transaction=True) as pipe:
            for view in self.views:
                key = progress_key(view)
                fields: dict[str, str | int] = {"rows_per_s": f"{rates[view]:.3f}", "updated_ms": updated_ms}
                if view in self.as_of:
                    fields["as_of_ms"] = self.as_of[view]
                pipe.hset(key, mapping=fields)
                pipe.hincrby(key, "rows_total", self.unpublished[view])
            pipe.execute()
        self.unpublished = {v: 0 for v in self.views}
