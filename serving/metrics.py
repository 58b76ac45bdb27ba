"""Prometheus metrics of the feature API.

With several worker processes a scrape reaches one of them, so `tessera serve` sets
PROMETHEUS_MULTIPROC_DIR before the workers start: each worker writes its samples to files there
and `/metrics` sums them across workers. Without it (one process, tests) the default registry is
served directly.
"""
from __future__ import annotations

import os
import time
from typing import Any, Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# prometheus_client picks file-backed values at import when this is set; decide once, the same way.
MULTIPROCESS = bool(os.environ.get(MULTIPROC_ENV))
# Fine below 10 ms, where the API is meant to live; coarse above, where only outages go.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

LATENCY_METRIC = "tessera_api_request_duration_seconds"
REQUEST_LATENCY = Histogram(LATENCY_METRIC, "Time to answer a request, by route",
                            ["route", "method"], buckets=LATENCY_BUCKETS)
REQUESTS = Counter("tessera_api_requests_total", "Requests answered, by route and status",
                   ["route", "method", "status"])
REDIS_ERRORS = Counter("tessera_api_redis_errors_total", "Redis reads that failed, by kind",
                       ["kind"])
REGISTRY_RELOADS = Counter("tessera_api_registry_reloads_total", "Registry (re)loads, by result",
                           ["result"])
# Known label values start at 0, so a dashboard shows "no errors" rather than "no data".
for _kind in ("timeout", "connection", "error"):
    REDIS_ERRORS.labels(_kind)
for _result in ("loaded", "failed"):
    REGISTRY_RELOADS.labels(_result)
ENTITIES_READ = Counter("tessera_api_entities_read_total", "Entity ids read from Redis, by entity",
                        ["entity"])

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


def render(extra: Collector | None = None) -> tuple[bytes, str]:
    """The exposition text for a scrape, summed over all workers when there are several.

    `extra` is evaluated now, in this worker (the pipeline gauges: values read from Redis and
    Kafka, the same whichever worker answers, so never summed across workers)."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    if extra is not None:
        own = CollectorRegistry()
        own.register(extra)
        body += generate_latest(own)
    return body, CONTENT_TYPE_LATEST


def _latency_samples() -> list[Any]:
    if MULTIPROCESS:
        families = multiprocess.MultiProcessCollector(None).collect()  # None: read, do not register
    else:
        families = REQUEST_LATENCY.collect()
    return [s for family in families if family.name == LATENCY_METRIC for s in family.samples]


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus's histogram_quantile: `buckets` are (upper bound, cumulative count), +Inf last;
    linear within the bucket; a quantile in the +Inf bucket is the highest finite bound."""
    total = buckets[-1][1] if buckets else 0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * ((rank - below) / (count - below) if count > below else 1.0)
        lower, below = upper, count
    return lower


def latency_summary(quantiles: tuple[float, ...] = (0.5, 0.9, 0.99)) -> list[dict[str, Any]]:
    """Per route and method, since the API started (all workers): count, mean and quantiles in ms."""
    buckets: dict[tuple[str, str], dict[float, float]] = {}
    sums: dict[tuple[str, str], float] = {}
    for sample in _latency_samples():
        route = (sample.labels.get("route", ""), sample.labels.get("method", ""))
        if sample.name.endswith("_bucket"):
            bound = float(sample.labels["le"])
            per_route = buckets.setdefault(route, {})
            per_route[bound] = per_route.get(bound, 0.0) + sample.value
        elif sample.name.endswith("_sum"):
            sums[route] = sums.get(route, 0.0) + sample.value
    out = []
    for (route, method), by_bound in sorted(buckets.items()):
        ordered = sorted(by_bound.items())
        count = ordered[-1][1] if ordered else 0
        if count <= 0:
            continue
        entry: dict[str, Any] = {"route": route, "method": method, "count": int(count),
                                 "mean_ms": round(1000 * sums.get((route, method), 0.0) / count, 3)}
        for q in quantiles:
            value = bucket_quantile(q, ordered)
            entry[f"p{round(q * 100):d}_ms"] = None if value is None else round(1000 * value, 3)
        out.append(entry)
    return out


def mark_worker_dead(pid: int) -> None:
    """Drop a stopped worker's live-gauge files (its counters and histograms stay in the sums)."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(pid)


class RequestMetrics:
    """Counts and times answered requests by route template, method and status.

    The label children are cached: `.labels()` takes a lock per call."""

    def __init__(self) -> None:
        self._latency: dict[tuple[str, str], Any] = {}
        self._count: dict[tuple[str, str, int], Any] = {}

    def observe(self, path: str, method: str, status: int, seconds: float) -> None:
        latency = self._latency.get((path, method))
        if latency is None:
            latency = self._latency[(path, method)] = REQUEST_LATENCY.labels(path, method)
        latency.observe(seconds)
        count = self._count.get((path, method, status))
        if count is None:
            count = self._count[(path, method, status)] = REQUESTS.labels(path, method, str(status))
        count.inc()


class MetricsMiddleware:
    """Times every HTTP request and counts it by route template and status.

    A plain ASGI middleware rather than Starlette's BaseHTTPMiddleware, which costs a task and
    a stream per request.
    """

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            route = scope.get("route")
            # The template (/features/{entity}/{entity_id}), never the raw path: ids would explode the labels.
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(path, scope["method"], status, time.perf_counter() - started)
