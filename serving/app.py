"""Assembles the feature API: settings, Redis reader, registry watcher, routers, error handlers.

`create_app()` with no argument reads tessera.toml + TESSERA_* (that is how `tessera serve`'s
worker processes call it); tests pass their own Settings.
"""
from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import AsyncIterator, Mapping

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from serving.auth import API_KEY_ENV, KeyChecker, api_keys_of
from serving.errors import install_error_handlers
from serving.hot_get import HotFeatureGet
from serving.limits import BodySizeLimit
from serving.metrics import MetricsMiddleware, RequestMetrics, mark_worker_dead
from serving.online_reader import OnlineReader
from serving.pipeline_probe import PipelineProbe
from serving.plan import plan_loader
from serving.registry_watch import PlanHolder, RegistryWatcher
from serving.routes_features import features_router
from serving.routes_ops import router as ops_router
from serving.routes_status import router as status_router
from serving.state import ServingState
from tessera.config import Settings, load_settings
from tessera.long_lived import freeze_long_lived

__all__ = ["API_KEY_ENV", "create_app", "api_key_of"]

DESCRIPTION = """
Feature values from Feast's Redis online store, with how fresh each feature view is.

* Values are keyed `view:feature` and are exactly what Feast's `get_online_features` returns.
* Each view reports `as_of` (the time its values are for), `age_ms` and `status`:
  `fresh` (within the view's freshness budget), `stale`, or `missing` (no row for this id).
* One Redis round trip per request, whatever the number of views and ids.
* Errors are JSON: `{"status", "error", "message"}`.
"""


def api_key_of(settings: Settings, environ: Mapping[str, str]) -> str | None:
    """The first accepted key (see serving/auth.py for all of them), or None: the API is open."""
    keys = api_keys_of(settings, environ)
    return keys[0] if keys else None


class FeatureAPI(FastAPI):
    """FastAPI, with `GET /features/{entity}/{id}` answered by the hot path before the stack
    (serving/hot_get.py); `hot = None` sends every request through FastAPI."""

    hot: HotFeatureGet | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.hot
        if hot is not None:
            taken = hot.takes(scope)
            if taken is not None:
                await hot.answer(scope, receive, send, *taken)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, environ: Mapping[str, str] | None = None) -> FeatureAPI:
    settings = settings or load_settings()
    environ = os.environ if environ is None else environ
    serving = settings.serving
    holder = PlanHolder()
    watcher = RegistryWatcher(holder, settings.registry_path, plan_loader(settings),
                              poll_s=serving.registry_poll_ms / 1000)
    api_keys = api_keys_of(settings, environ)  # a bad key file fails here, at start, naming the file

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The Redis client binds to this worker's event loop, so it is made here, not at import.
        reader = OnlineReader(settings.redis, serving.redis_timeout_ms, serving.redis_max_connections)
        probe = PipelineProbe(settings)
        app.state.serving = ServingState(settings, reader, holder, watcher, probe)
        await watcher.load_now()
        # A full collection that walked Feast's objects would stall the event loop for tens of ms.
        freeze_long_lived()
        watcher.start()
        try:
            yield
        finally:
            await watcher.stop()
            await reader.close()
            await probe.close()
            mark_worker_dead(os.getpid())

    app = FeatureAPI(title="Tessera feature API", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    install_error_handlers(app)
    checker = KeyChecker(api_keys) if api_keys else None
    app.include_router(features_router(checker))
    app.include_router(ops_router)
    app.include_router(status_router)
    metrics = RequestMetrics()
    app.add_middleware(BodySizeLimit, max_bytes=serving.max_body_bytes)  # inside the metrics: 413s are counted
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.hot = HotFeatureGet(checker, metrics, lambda: app.state.serving)
    return app
