"""What the streaming path is doing, as the feature API sees it: the writer's per-view progress
(Redis hashes, streaming/progress.py) and Kafka (consumer lag, dead letters, late events).

/metrics and /status read it through `PipelineProbe.snapshot()`, cached for TTL_S per worker so a
scrape storm costs one Redis round trip and one Kafka probe every couple of seconds. Kafka's
client calls block, so they run in a thread, one at a time, each bounded by a short timeout; a
request waits at most KAFKA_WAIT_S for it and otherwise answers with the last values it has (marked
stale): /metrics never hangs on a dead broker.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from streaming.consumer_groups import Lag
from streaming.progress import ViewProgress, parse_progress, progress_key
from tessera.config import Settings
from tessera.definitions import Definitions, DefinitionError, load_definitions

TTL_S = 2.0
KAFKA_WAIT_S = 1.0       # how long a request waits for a Kafka probe in flight
KAFKA_TIMEOUT_S = 1.0    # each Kafka call of the probe
REDIS_TIMEOUT_S = 0.25


@dataclass(frozen=True)
class KafkaState:
    ok: bool
    checked_ms: int
    error: str | None = None
    lags: tuple[Lag, ...] = ()
    dlq_messages: int | None = None    # messages the topic holds; None: unknown or no such topic
    late_messages: int | None = None


@dataclass(frozen=True)
class PipelineSnapshot:
    taken_ms: int
    views: dict[str, ViewProgress | None]  # streaming views; None: the writer never reported it
    redis_error: str | None
    kafka: KafkaState | None               # None: no Kafka probe has finished yet
    kafka_stale: bool                      # the newest probe is still running; these are older values
    definitions: Definitions | None = field(repr=False, default=None)


def _quiet_kafka(settings: Settings) -> Settings:
    """The same Kafka settings with librdkafka's connection-error logging off: a broker that is down
    shows in the metrics, not as a line in the API's log every couple of seconds."""
    options = {"log_level": "2", **settings.kafka.client_options}
    return settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"client_options": options})})


def probe_kafka(settings: Settings, timeout_s: float = KAFKA_TIMEOUT_S) -> KafkaState:
    """Blocking: consumer lag of the job, the writer and the archiver, and the DLQ and late topics' sizes."""
    from confluent_kafka import KafkaException

    from streaming.control import lags
    from tessera.kafka_io import topic_message_counts

    quiet = _quiet_kafka(settings)
    now = int(time.time() * 1000)
    try:
        found = lags(quiet, timeout_s=timeout_s)
        counts = topic_message_counts(quiet, [settings.kafka.dlq_topic, settings.kafka.late_topic],
                                      timeout_s=timeout_s)
    except KafkaException as err:
        detail = err.args[0].str() if err.args and hasattr(err.args[0], "str") else str(err)
        return KafkaState(False, now, f"Kafka at {settings.kafka.bootstrap_servers}: {detail}")

    def held(topic: str) -> int | None:
        return counts[topic] if counts.get(topic, -1) >= 0 else None

    return KafkaState(True, now, None, tuple(found),
                      held(settings.kafka.dlq_topic), held(settings.kafka.late_topic))


class PipelineProbe:
    """One per worker process; made in the app's lifespan, closed with it."""

    def __init__(self, settings: Settings, ttl_s: float = TTL_S, kafka_wait_s: float = KAFKA_WAIT_S) -> None:
        self.settings = settings
        self.ttl_s, self.kafka_wait_s = ttl_s, kafka_wait_s
        self._redis: aioredis.Redis | None = None
        self._cached: PipelineSnapshot | None = None
        self._cached_at = float("-inf")
        self._progress: tuple[dict[str, ViewProgress | None], str | None, Definitions | None] | None = None
        self._progress_at = float("-inf")
        self._lock = asyncio.Lock()
        self._kafka: KafkaState | None = None
        self._kafka_task: asyncio.Task[KafkaState] | None = None
        self._kafka_at = float("-inf")
        self._definitions: Definitions | None = None
        self._definitions_at = float("-inf")

    def definitions(self) -> Definitions | None:
        """The declarations (which views stream, their budgets); re-read at most once a minute."""
        if time.monotonic() - self._definitions_at > 60:
            self._definitions_at = time.monotonic()
            try:
                self._definitions = load_definitions(self.settings.feature_repo)
            except DefinitionError:
                pass  # keep the last good ones; serving itself reports a broken views.py
        return self._definitions

    async def snapshot(self) -> PipelineSnapshot:
        cached = self._cached
        if cached is not None and not cached.kafka_stale and time.monotonic() - self._cached_at < self.ttl_s:
            return cached
        async with self._lock:  # concurrent scrapes share one Redis read (bounded by its timeout)
            if self._progress is None or time.monotonic() - self._progress_at >= self.ttl_s:
                definitions = self.definitions()
                names = [v.name for v in definitions.streaming_views()] if definitions else []
                self._progress = (*await self._read_progress(names), definitions)
                self._progress_at = time.monotonic()
        views, redis_error, definitions = self._progress
        # Outside the lock: every waiter waits on the same probe, none queues behind another's wait.
        kafka, stale = await self._kafka_state()
        snapshot = PipelineSnapshot(int(time.time() * 1000), views, redis_error, kafka, stale, definitions)
        self._cached, self._cached_at = snapshot, time.monotonic()
        return snapshot

    async def _read_progress(self, names: list[str]) -> tuple[dict[str, ViewProgress | None], str | None]:
        if not names:
            return {}, None
        if self._redis is None:
            self._redis = aioredis.Redis(**self.settings.redis.client_kwargs(), socket_timeout=REDIS_TIMEOUT_S,
                                         socket_connect_timeout=REDIS_TIMEOUT_S)
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S * 2):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for name in names:
                        pipe.hgetall(progress_key(name))
                    replies: list[Any] = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as err:
            return {name: None for name in names}, f"Redis at {self.settings.redis.host}:" \
                                                   f"{self.settings.redis.port}: {err or type(err).__name__}"
        return {name: parse_progress(name, raw) for name, raw in zip(names, replies)}, None

    async def _kafka_state(self) -> tuple[KafkaState | None, bool]:
        task = self._kafka_task
        if task is not None and task.done():
            self._take(task)
            task = None
        if task is None and time.monotonic() - self._kafka_at >= self.ttl_s:
            # One probe at a time: with the broker down each takes its timeouts, and starting
            # another per request would pile threads up.
            task = self._kafka_task = asyncio.create_task(asyncio.to_thread(probe_kafka, self.settings))
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=self.kafka_wait_s)
            if done:
                self._take(task)
                task = None
        return self._kafka, task is not None

    def _take(self, task: asyncio.Task[KafkaState]) -> None:
        if self._kafka_task is not task:
            return  # another waiter took it already
        self._kafka_task = None
        self._kafka_at = time.monotonic()
        if task.cancelled():
            return
        err = task.exception()
        self._kafka = task.result() if err is None else \
            KafkaState(False, int(time.time() * 1000), f"Kafka probe failed: {type(err).__name__}: {err}")

    async def close(self) -> None:
        if self._kafka_task is not None:
            self._kafka_task.cancel()
        if self._redis is not None:
            await self._redis.aclose()
