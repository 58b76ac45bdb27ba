"""`GET /health` and `GET /metrics`: what an operator and a load balancer look at."""
from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from serving.metrics import render
from serving.online_reader import RedisFailure
from serving.pipeline_metrics import SnapshotCollector
from serving.state import ServingState

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str
    redis: dict[str, Any]
    registry: dict[str, Any]


_HEALTHY = {"status": "ok",
            "redis": {"reachable": True, "address": "127.0.0.1:6379", "ping_ms": 0.21},
            "registry": {"loaded": True, "path": "/srv/tessera/data/registry.db", "version_id": "9b0c...",
                         "last_updated": "2025-06-01T11:58:00Z", "entities": ["campaign", "user"],
                         "views": 3, "feature_services": ["ads_ranking", "campaign_pacing"]}}


@router.get("/health", response_class=Response, summary="Redis reachable and registry loaded",
            responses={200: {"model": Health, "content": {"application/json": {"example": _HEALTHY}}},
                       503: {"description": "Redis unreachable or no registry loaded; same body, status `down`"}})
async def health(request: Request) -> Response:
    state: ServingState = request.app.state.serving
    redis = state.settings.redis
    redis_report: dict[str, Any] = {"reachable": True, "address": f"{redis.host}:{redis.port}"}
    started = time.perf_counter()
    try:
        await state.reader.ping()
        redis_report["ping_ms"] = round((time.perf_counter() - started) * 1000, 3)
    except RedisFailure as err:
        redis_report.update(reachable=False, error=str(err))
    plan = state.holder.plan
    registry: dict[str, Any] = {"loaded": plan is not None}
    if plan is not None:
        registry.update(path=plan.registry.path, version_id=plan.registry.version_id,
                        last_updated=plan.registry.last_updated, loaded_at_ms=plan.registry.loaded_at_ms,
                        entities=sorted(plan.entities), views=len(plan.views),
                        feature_services=sorted(plan.services), warnings=plan.warnings)
    if state.holder.last_error:
        registry["error"] = state.holder.last_error
    healthy = redis_report["reachable"] and plan is not None
    body = {"status": "ok" if healthy else "down", "redis": redis_report, "registry": registry}
    return Response(orjson.dumps(body), status_code=200 if healthy else 503, media_type="application/json")


@router.get("/metrics", response_class=Response,
            summary="Prometheus metrics: the API's own (all workers) and the streaming path's freshness and lag",
            responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request) -> Response:
    probe = request.app.state.serving.probe
    extra = SnapshotCollector(await probe.snapshot()) if probe is not None else None
    body, content_type = render(extra)
    return Response(body, media_type=content_type)
