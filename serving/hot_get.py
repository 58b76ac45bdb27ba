"""`GET /features/{entity}/{id}` answered in plain ASGI, in front of FastAPI's stack.

Profiles of the API at 1,000 requests/s put more of each request's CPU in the layers around the
route (Starlette's error and exception middlewares, FastAPI's telemetry and body-limit
middlewares, routing, the Request object, dependency solving, the per-layer `send` wrappers)
than in the route's own work. This path takes the route's requests before all of that and keeps
what those layers give it: the API key check, the route's one implementation
(`routes_features.one_entity_json`), JSON errors of the API's shape, the request metrics, and a
500 without details for a bug. Anything it does not recognise (another route or method, a request
with a body, a mounted root path) goes to FastAPI unchanged.
"""
from __future__ import annotations

import time
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

from serving.auth import KeyChecker
from serving.errors import ApiError, api_error_response, internal_error_response
from serving.metrics import RequestMetrics
from serving.routes_features import one_entity_json, unauthorized

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

ROUTE = "/features/{entity}/{entity_id}"  # the metrics label FastAPI's route gets
PREFIX = "/features/"
QUERY_CACHE_SIZE = 1024
_JSON = b"application/json"


def route_params(scope: Scope) -> tuple[str, str] | None:
    """(entity, id) when the request is this path's to answer; None: leave it to FastAPI.

    The same match as Starlette's `{entity}/{entity_id}` (each segment non-empty, no slash)."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if not path.startswith(PREFIX):
        return None
    entity, slash, entity_id = path[len(PREFIX):].partition("/")
    if not entity or not slash or not entity_id or "/" in entity_id:
        return None
    return entity, entity_id


class HotFeatureGet:
    def __init__(self, checker: KeyChecker | None, metrics: RequestMetrics,
                 state_of: Callable[[], Any]) -> None:
        self.checker = checker
        self.metrics = metrics
        self.state_of = state_of  # the worker's ServingState, made in the app's lifespan
        self._queries: dict[bytes, tuple[str | None, str | None]] = {}

    def selectors(self, query_string: bytes) -> tuple[str | None, str | None]:
        """(?features=, ?feature_service=) read as Starlette reads them: latin-1, blanks kept, the
        last of repeated names. Clients repeat a handful of query strings, so each is parsed once."""
        found = self._queries.get(query_string)
        if found is None:
            params = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
            found = (params.get("features"), params.get("feature_service"))
            if len(self._queries) >= QUERY_CACHE_SIZE:
                self._queries.clear()  # bounded: arbitrary query strings cannot grow memory
            self._queries[query_string] = found
        return found

    def takes(self, scope: Scope) -> tuple[str, str, str | None] | None:
        """(entity, id, the X-API-Key given) when this path answers the request, else None."""
        params = route_params(scope)
        if params is None:
            return None
        given: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                if given is None:  # the first, as Starlette's Headers.get reads it
                    given = value.decode("latin-1")
            elif name == b"content-length" or name == b"transfer-encoding":
                return None  # a body: FastAPI's stack applies the size limit
        return params[0], params[1], given

    async def answer(self, scope: Scope, receive: Receive, send: Send, entity: str, entity_id: str,
                     given_key: str | None) -> None:
        started = time.perf_counter()
        status = 500
        responded = False
        try:
            if self.checker is not None and not self.checker.accepts(given_key):
                raise unauthorized()
            features, service = self.selectors(scope["query_string"])
            body = await one_entity_json(self.state_of(), entity, entity_id, features, service)
            responded = True
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", _JSON), (b"content-length", b"%d" % len(body))]})
            status = 200
            await send({"type": "http.response.body", "body": body})
        except ApiError as err:
            status = err.status
            await api_error_response(err)(scope, receive, send)
        except Exception as err:
            if responded:
                raise  # the answer has begun (the client went away mid-send): nothing left to say
            # No server layer above this one logs it: the traceback goes with the error.
            await internal_error_response("GET", scope["path"], err, traceback=True)(scope, receive, send)
        finally:
            self.metrics.observe(ROUTE, "GET", status, time.perf_counter() - started)
