"""Keys in, values out: one Redis round trip per request, decoded the way Feast decodes them.

Feast keeps one hash per entity key; every view of that entity lives in the same hash, so one
HMGET per id fetches all requested views at once (Feast itself sends one HMGET per view and id).
A single id is one HMGET; several ids are one pipeline of HMGETs, written and read back in one go.
Timeouts are short and there are no retries: a dead or hung Redis must turn into a 503 quickly,
never into a queue of waiting requests.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import redis.asyncio as aioredis
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.type_map import feast_value_type_to_python_type
from feast.value_type import ValueType
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from serving.metrics import REDIS_ERRORS
from serving.plan import Selection
from tessera.config import RedisSettings

# Oneof fields whose Python value is already what Feast's to_dict returns: read them directly and
# leave everything else (timestamps, lists, maps, UUIDs, decimals) to Feast's own converter.
_PLAIN_SCALARS = frozenset({"int64_val", "int32_val", "double_val", "float_val", "bool_val", "bytes_val"})
# Feast turns a string_val of a UUID-typed feature into a UUID object; leave those to Feast too.
_UUID_TYPES = frozenset({ValueType.UUID, ValueType.TIME_UUID})


class RedisFailure(RuntimeError):
    """A read that Redis did not answer. `kind` labels the metric: "timeout" and "connection" mean
    Redis is unreachable (503, retry later); "error" is an error reply, e.g. a key of another type."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind

    @property
    def unavailable(self) -> bool:
        return self.kind in ("timeout", "connection")


def _failure(err: BaseException) -> RedisFailure:
    if isinstance(err, (RedisTimeoutError, TimeoutError)):  # redis-py's, or our deadline's
        failure = RedisFailure("timeout", f"Redis did not answer in time: {err}")
    elif isinstance(err, (RedisConnectionError, OSError)):
        failure = RedisFailure("connection", f"Redis is unreachable: {err}")
    elif "unauthenticated" in str(err):
        # A server with a password answers a long command from an unauthenticated client with a
        # protocol error instead of NOAUTH: the same failure as a wrong password.
        failure = RedisFailure("connection", f"Redis refused an unauthenticated client ({err}); is the "
                                             f"[redis] password set?")
    else:
        failure = RedisFailure("error", f"Redis answered with an error: {err}")
    REDIS_ERRORS.labels(failure.kind).inc()
    return failure


@dataclass(frozen=True)
class EntityRow:
    """One entity's answer: values in selection order, and per view the as_of in ms (None: missing)."""

    values: list[Any]
    as_of_ms: list[int | None]


# Stored values repeat (small counts, the same timestamp for every row of a write), and parsing a
# protobuf costs more than a dict look-up: decoded plain scalars are kept by their bytes, up to a
# bound. Only kinds whose value does not depend on the feature's type (not strings, which may be
# UUIDs) and is immutable (not lists or maps, which a caller may change) are kept.
DECODED_CACHE_SIZE = 65_536
_decoded: dict[bytes, Any] = {}
_as_of: dict[bytes, int] = {}


def _remember(cache: dict[bytes, Any], raw: bytes, value: Any) -> Any:
    if len(cache) >= DECODED_CACHE_SIZE:
        cache.clear()  # bounded: arbitrary stored bytes cannot grow memory
    cache[raw] = value
    return value


def decode_value(raw: bytes | None, value_type: ValueType) -> Any:
    """A stored ValueProto -> the Python value Feast's get_online_features returns for it."""
    if not raw:
        return None  # absent field, or Feast's encoding of null (an empty Value)
    try:
        return _decoded[raw]
    except KeyError:
        pass
    value = ValueProto.FromString(raw)
    kind = value.WhichOneof("val")
    if kind is None:
        return None
    if kind in _PLAIN_SCALARS:
        return _remember(_decoded, raw, getattr(value, kind))
    if kind == "string_val" and value_type not in _UUID_TYPES:
        return value.string_val
    return feast_value_type_to_python_type(value, value_type)


def decode_as_of_ms(raw: bytes | None) -> int | None:
    """Feast's `_ts:<view>` field (a protobuf Timestamp) -> epoch ms; None when the view has no row."""
    if not raw:
        return None
    found = _as_of.get(raw)
    if found is None:
        ts = Timestamp.FromString(raw)
        found = _remember(_as_of, raw, ts.seconds * 1000 + ts.nanos // 1_000_000)
    return found


def decode_row(selection: Selection, raw: Sequence[bytes | None]) -> EntityRow:
    n = len(selection.features)
    values = [decode_value(raw[i], f.value_type) for i, f in enumerate(selection.features)]
    as_of = [decode_as_of_ms(raw[n + j]) for j in range(len(selection.views))]
    return EntityRow(values, as_of)


def _bulk(arg: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(arg), arg)


@lru_cache(maxsize=4096)
def _hmget_tail(fields: tuple[bytes, ...]) -> bytes:
    """The field-name part of an HMGET in RESP: the same for every id of a selection, so packed once."""
    return b"".join(_bulk(f) for f in fields)


def pack_hmgets(keys: Sequence[bytes], fields: tuple[bytes, ...]) -> bytes:
    """`HMGET key field...` for each key, in RESP, ready to write in one go."""
    head = b"*%d\r\n$5\r\nHMGET\r\n" % (len(fields) + 2)
    tail = _hmget_tail(fields)
    return b"".join(head + _bulk(key) + tail for key in keys)


# A deadline that fires this much after it was due means this worker was not running (CPU
# starvation, a long GC, a throttled container), not that Redis was slow.
STALL_S = 0.010
# The grace then: Redis stalled too when the whole host did, and first answers what queued
# meanwhile (the soak's 2,000 requests/s and the writer's scripts; 5 ms was too short twice in 16
# minutes of 100 ms host stalls). A hung Redis with no stall still fails at the plain timeout.
STALL_GRACE_S = 0.040


class _Deadline:
    """Times a request out after `timeout_s`, unless the event loop itself was stalled past it.

    After a stall the loop runs due timers before it polls sockets, so a reply that arrived long
    ago would still be reported as a Redis timeout. Once per request, a deadline that fires late
    gets a grace for the loop to read what is waiting and for a Redis that was stalled with it to
    answer; a Redis that is really silent still fails within the timeout plus that grace.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, scope: asyncio.Timeout, timeout_s: float) -> None:
        self.loop, self.scope = loop, scope
        self.due = loop.time() + timeout_s
        self.graced = False
        self.handle = loop.call_at(self.due, self._fire)

    def _fire(self) -> None:
        if not self.graced and self.loop.time() - self.due > STALL_S:
            self.graced = True
            self.handle = self.loop.call_later(STALL_GRACE_S, self._fire)
            return
        self.scope.reschedule(self.loop.time())  # expire now: the request fails with TimeoutError

    def cancel(self) -> None:
        self.handle.cancel()


class OnlineReader:
    """HMGETs over redis.asyncio connections kept by this worker.

    It talks to redis.asyncio's Connection directly (pack, send, read replies) with a plain list of
    idle connections instead of going through Redis()/ConnectionPool: their per-command bookkeeping
    (observability hooks, a health probe of the socket before every command, a lock) cost more
    CPU than the command itself. A connection that fails or times out mid-request is dropped,
    never reused, so a reply can never be read by the wrong request.
    """

    def __init__(self, redis_settings: RedisSettings, timeout_ms: int, max_idle_connections: int) -> None:
        self._timeout_s = timeout_ms / 1000
        # The pool only makes connections (host, auth, TLS, connect timeout); it never lends them out.
        # No socket timeout on them: one deadline around the whole round trip (below) is cheaper than
        # redis-py's per-send task and per-read timer, and bounds the request as a whole.
        # The same host, auth and TLS options as every other client (RedisSettings.client_kwargs);
        # the pool takes TLS as a connection class rather than ssl=True.
        options = redis_settings.client_kwargs()
        tls = options.pop("ssl", False)
        self._factory = aioredis.ConnectionPool(
            connection_class=aioredis.SSLConnection if tls else aioredis.Connection,
            **options,
            socket_connect_timeout=self._timeout_s,
            retry=Retry(NoBackoff(), 0),  # no retries on the hot path: fail fast, the client retries
        )
        self._idle: list[aioredis.Connection] = []
        self._max_idle = max_idle_connections

    async def _round_trip(self, packed: bytes, replies_expected: int) -> list[Any]:
        """Write the packed commands at once and read their replies: one round trip."""
        conn = self._idle.pop() if self._idle else self._factory.make_connection()
        try:
            async with asyncio.timeout(None) as scope:
                deadline = _Deadline(asyncio.get_running_loop(), scope, self._timeout_s)
                try:
                    await conn.connect()  # a no-op when already connected
                    await conn.send_packed_command(packed, check_health=False)
                    replies = [await conn.read_response() for _ in range(replies_expected)]
                finally:
                    deadline.cancel()
        except BaseException:
            await conn.disconnect(nowait=True)  # unknown state (half-read replies): never reuse
            raise
        if len(self._idle) < self._max_idle:
            self._idle.append(conn)
        else:
            await conn.disconnect(nowait=True)
        return replies

    async def read(self, selection: Selection, keys: Sequence[bytes]) -> list[EntityRow]:
        """The selection's fields of each key, in one round trip."""
        if not keys:
            return []
        if not selection.fields:
            return [EntityRow([], []) for _ in keys]
        try:
            replies = await self._round_trip(pack_hmgets(keys, selection.fields), len(keys))
        except (RedisError, OSError) as err:
            raise _failure(err) from None
        try:
            return [decode_row(selection, raw) for raw in replies]
        except DecodeError:
            # Not what Feast writes (another writer, or a corrupted hash): Redis's data, not a bug here.
            REDIS_ERRORS.labels("error").inc()
            raise RedisFailure("error", "a stored value is not a Feast value (corrupted or foreign data in "
                                        "the online store)") from None

    async def ping(self) -> None:
        try:
            await self._round_trip(b"*1\r\n$4\r\nPING\r\n", 1)
        except (RedisError, OSError) as err:
            raise _failure(err) from None

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.disconnect(nowait=True)
