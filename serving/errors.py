"""Every error the API returns is JSON of one shape: {"status", "error", "message"} (+ "name"),
so a client can branch on the short `error` code and show `message` to a person."""
from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from serving.online_reader import RedisFailure
from serving.plan import MalformedId, SelectionError

log = logging.getLogger("tessera.serving")

SELECTION_STATUS = {
    "unknown_entity": 404,
    "unknown_feature": 400,
    "unknown_feature_service": 400,
    "wrong_entity": 400,
    "conflicting_selectors": 400,
}


class ErrorBody(BaseModel):
    """Every error's body (documented in OpenAPI, so clients and the schema fuzzer can check it)."""

    status: int = Field(description="The HTTP status, repeated")
    error: str = Field(description="A short stable code, e.g. unknown_feature, redis_unavailable")
    message: str = Field(description="What went wrong, for a person")
    name: str | None = Field(None, description="The entity, feature or service the error is about")


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, name: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.name, self.headers = status, error, message, name, headers


def error_response(status: int, error: str, message: str, name: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"status": status, "error": error, "message": message}
    if name is not None:
        body["name"] = name
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def api_error_response(err: ApiError) -> Response:
    return error_response(err.status, err.error, err.message, err.name, err.headers)


def internal_error_response(method: str, path: str, err: Exception, traceback: bool = False) -> Response:
    """A bug: logged (with its traceback when no server layer above will log it); the client gets
    none of it, since it may hold paths, settings or data."""
    log.error("unexpected %s answering %s %s", type(err).__name__, method, path, exc_info=err if traceback else None)
    return error_response(500, "internal_error", "internal error; the server log has the details")


def to_api_error(err: Exception) -> ApiError:
    """Domain errors of the plan and the reader -> the HTTP error a client sees."""
    if isinstance(err, SelectionError):
        return ApiError(SELECTION_STATUS.get(err.kind, 400), err.kind, str(err), err.name)
    if isinstance(err, MalformedId):
        return ApiError(422, "malformed_id", str(err))
    if isinstance(err, RedisFailure):
        if err.unavailable:
            return ApiError(503, "redis_unavailable", f"{err}; retry shortly", headers={"Retry-After": "1"})
        return ApiError(502, "redis_error", str(err))
    raise TypeError(f"not an API error: {err!r}")


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, err: ApiError) -> Response:
        return api_error_response(err)

    async def on_validation_error(request: Request, err: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                             for e in err.errors())
        return error_response(422, "invalid_request", problems or "invalid request")

    async def on_http_error(request: Request, err: StarletteHTTPException) -> Response:
        error = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        return error_response(err.status_code, error, str(err.detail), headers=getattr(err, "headers", None))

    async def on_unexpected(request: Request, err: Exception) -> Response:
        # Starlette re-raises it after this answer, so the server (uvicorn) logs the traceback.
        return internal_error_response(request.method, request.url.path, err)

    app.add_exception_handler(ApiError, on_api_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, on_unexpected)
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http_error)  # type: ignore[arg-type]
