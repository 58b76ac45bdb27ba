"""A small load generator for loopback benchmarks: fixed-rate (open loop) and closed-loop, over
HTTP/1.1 keep-alive or Redis's RESP, with random payloads per request.

wrk measures peak throughput well but cannot hold a fixed rate (wrk2 is not packaged in Debian),
and a closed loop hides queueing ("coordinated omission"). The fixed-rate mode works like wrk2:
each connection follows its own schedule and a request's latency counts from when it was due, so
a stalled server shows up as latency, not as a lower rate. It is Python, so it is kept cheap:
payloads are made before the clock starts, and there is no task or timer per request beyond one
sleep. Times come from perf_counter (uvloop's loop.time() moves in whole milliseconds); the raw
Redis row of the benchmark shows what the generator itself adds.
"""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Callable

import hiredis

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class _Conn(asyncio.Protocol):
    """One connection, one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[bool] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(False)

    def _finish(self, ok: bool) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(ok)

    async def request(self, payload: bytes, replies: int = 1) -> bool:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self._start(replies)
        self.transport.write(payload)
        return await self.waiter

    def _start(self, replies: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class HttpConn(_Conn):
    """Just enough HTTP/1.1 for a server that sends Content-Length; 2xx counts as success."""

    def _start(self, replies: int) -> None:
        self.buffer = bytearray()
        self.needed = -1
        self.status = 0

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.needed < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end + 2])
            self.status = int(head[9:12])
            match = _CONTENT_LENGTH.search(head)
            if match is None:  # not expected from the servers measured here: treat as a failure
                self._finish(False)
                return
            self.needed = end + 4 + int(match.group(1))
        if len(self.buffer) >= self.needed:
            self._finish(200 <= self.status < 300)


class RespConn(_Conn):
    """Redis: `replies` replies to a pipelined payload; an error reply counts as a failure."""

    def _start(self, replies: int) -> None:
        self.reader = hiredis.Reader()
        self.remaining = replies
        self.ok = True

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while self.remaining:
            reply = self.reader.gets()
            if reply is False:
                return
            self.remaining -= 1
            if isinstance(reply, hiredis.ReplyError):
                self.ok = False
        self._finish(self.ok)


def resp_command(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


@dataclass
class Result:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    timed_out: int = 0
    latencies_s: list[float] = field(default_factory=list)
    duration_s: float = 0.0
    connections: int = 0

    @property
    def rate(self) -> float:
        return self.ok / self.duration_s if self.duration_s else 0.0

    def percentile_ms(self, p: float) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def fixed_rate(host: str, port: int, protocol: type[_Conn], payload: Callable[[], bytes], rate: float,
                     duration_s: float, warmup_s: float = 2.0, replies: int = 1, timeout_s: float = 5.0,
                     lanes: int = 32) -> Result:
    """Open loop, wrk2-style: `lanes` connections, each with its own fixed schedule (together `rate`
    requests per second); request k of a lane is due at start + k * lanes / rate whatever happened
    to request k-1, and its latency counts from then. The warm-up is not recorded. Requests still
    unanswered `timeout_s` after the end count as timed out."""
    loop = asyncio.get_running_loop()
    clock = time.perf_counter
    result = Result(duration_s=duration_s, connections=lanes)
    interval = lanes / rate
    per_lane = int((warmup_s + duration_s) * rate / lanes)
    start = clock() + 0.05
    record_from = start + warmup_s
    payloads = [payload() for _ in range(min(per_lane * lanes, 50_000))]  # made before the clock starts
    conns = [(await loop.create_connection(protocol, host, port))[1] for _ in range(lanes)]

    async def lane(index: int, conn: _Conn) -> None:
        offset = start + index / rate  # lanes interleave evenly
        for k in range(per_lane):
            due = offset + k * interval
            wait = due - clock()
            if wait > 0.001:  # loop timers have ~1 ms resolution: wake a little early, never late
                await asyncio.sleep(wait - 0.001)
            sent = clock()
            ok = await conn.request(payloads[(index + k * lanes) % len(payloads)], replies)
            done = clock()
            if due >= record_from:
                result.sent += 1
                if ok:
                    result.ok += 1
                    # From when it was due (late sends count), or from when it left if it left early.
                    result.latencies_s.append(done - min(due, sent))
                else:
                    result.failed += 1
            if conn.closed:
                _, conn = await loop.create_connection(protocol, host, port)

    tasks = [asyncio.create_task(lane(i, c)) for i, c in enumerate(conns)]
    finished, unfinished = await asyncio.wait(tasks, timeout=warmup_s + duration_s + timeout_s + 0.1)
    for task in unfinished:
        task.cancel()
    if unfinished:
        expected = int(duration_s * rate / lanes) * lanes
        result.timed_out = max(0, expected - result.sent)
    for conn in conns:
        conn.close()
    return result


async def closed_loop(host: str, port: int, protocol: type[_Conn], payload: Callable[[], bytes],
                      connections: int, duration_s: float, warmup_s: float = 1.0, replies: int = 1) -> Result:
    """Each connection sends its next request as soon as the last one is answered: peak throughput."""
    loop = asyncio.get_running_loop()
    clock = time.perf_counter
    result = Result(duration_s=duration_s, connections=connections)
    conns = [(await loop.create_connection(protocol, host, port))[1] for _ in range(connections)]
    record_from = clock() + warmup_s
    stop_at = record_from + duration_s

    async def drive(conn: _Conn) -> None:
        while True:
            began = clock()
            if began >= stop_at:
                return
            ok = await conn.request(payload(), replies)
            if began >= record_from:
                result.sent += 1
                if ok:
                    result.ok += 1
                    result.latencies_s.append(clock() - began)
                else:
                    result.failed += 1

    await asyncio.gather(*(drive(c) for c in conns))
    for conn in conns:
        conn.close()
    return result


def run(coro) -> Result:  # type: ignore[no-untyped-def]
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)

