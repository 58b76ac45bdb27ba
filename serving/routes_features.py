"""`GET /features/{entity}/{id}` and `POST /features/{entity}`: feature values with their freshness.

Handlers return pre-serialized JSON (orjson) rather than models: the response models below only
document the shape in OpenAPI, so no validation or re-encoding runs per request.
"""
from __future__ import annotations

import base64
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Security
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field, StrictInt, StrictStr
from starlette.responses import Response

from serving.auth import KeyChecker
from serving.errors import ApiError, ErrorBody, to_api_error
from serving.metrics import ENTITIES_READ
from serving.online_reader import EntityRow, RedisFailure
from serving.plan import MalformedId, Selection, SelectionError
from serving.state import ServingState

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="Required when the server has an API key configured.")


# --- documented shapes (OpenAPI only) ----------------------------------------------------------

class ViewFreshness(BaseModel):
    as_of: datetime | None = Field(description="The time the view's values are the value for (Feast's event "
                                               "timestamp of the row); null when the entity has no row")
    as_of_ms: int | None = Field(description="as_of in epoch milliseconds")
    age_ms: int | None = Field(description="Milliseconds between as_of and the time of the request")
    status: str = Field(description="fresh (age within the view's freshness budget), stale, or missing")


class EntityFeatures(BaseModel):
    id: int | str
    features: dict[str, Any] = Field(description="Values by `view:feature`, exactly as Feast's "
                                                 "get_online_features returns them; null when absent")
    views: dict[str, ViewFreshness]


class FeaturesResponse(EntityFeatures):
    entity: str


class BatchResponse(BaseModel):
    entity: str
    results: list[EntityFeatures] = Field(description="One entry per requested id, in request order")


class BatchRequest(BaseModel):
    ids: list[StrictInt | StrictStr] = Field(description="Entity ids (the join key's values), at most 1,000")
    features: list[str] | None = Field(None, description="`view:feature` or `view` refs; default: all features")
    feature_service: str | None = Field(None, description="A registered feature service instead of `features`")


_EXAMPLE_VIEWS = {
    "user_ad_activity": {"as_of": "2025-06-01T12:00:03.000Z", "as_of_ms": 1748779203000, "age_ms": 812,
                         "status": "fresh"},
    "user_profile_daily": {"as_of": None, "as_of_ms": None, "age_ms": None, "status": "missing"},
}
_EXAMPLE = {"entity": "user", "id": 42,
            "features": {"user_ad_activity:impressions_1h": 17, "user_ad_activity:clicks_1h": 2,
                         "user_ad_activity:ctr_1h": 0.11764705882352941, "user_profile_daily:clicks_30d": None},
            "views": _EXAMPLE_VIEWS}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Unknown feature or feature service (named in the body)"},
    401: {"model": ErrorBody, "description": "Missing or wrong X-API-Key (when the server has a key)"},
    404: {"model": ErrorBody, "description": "Unknown entity"},
    422: {"model": ErrorBody, "description": "Malformed id or request"},
    500: {"model": ErrorBody, "description": "A bug: the body says only that; the server log has the details"},
    502: {"model": ErrorBody, "description": "Redis answered with an error (e.g. a key of another type)"},
    503: {"model": ErrorBody, "description": "Redis unreachable or registry not loaded yet; retry"},
}


# --- building the answer -------------------------------------------------------------------------

def _json_default(value: Any) -> Any:
    """Feast values JSON has no type for: bytes as base64, sets as lists, decimals as strings."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(body: Any) -> bytes:
    # NaN and infinities become null: JSON has no spelling for them.
    return orjson.dumps(body, default=_json_default, option=orjson.OPT_UTC_Z)


def _freshness(selection: Selection, row: EntityRow, now_ms: int) -> dict[str, dict[str, Any]]:
    views: dict[str, dict[str, Any]] = {}
    for view, as_of in zip(selection.views, row.as_of_ms):
        if as_of is None:
            views[view.name] = {"as_of": None, "as_of_ms": None, "age_ms": None, "status": "missing"}
            continue
        age = now_ms - as_of
        budget = view.freshness_budget_ms
        views[view.name] = {
            "as_of": datetime.fromtimestamp(as_of / 1000, tz=timezone.utc),
            "as_of_ms": as_of,
            "age_ms": age,
            "status": "fresh" if budget is None or age <= budget else "stale",
        }
    return views


def entity_features(selection: Selection, entity_id: int | str, row: EntityRow, now_ms: int) -> dict[str, Any]:
    return {
        "id": entity_id,
        "features": {f.ref: v for f, v in zip(selection.features, row.values)},
        "views": _freshness(selection, row, now_ms),
    }


def _json(body: Any) -> Response:
    return Response(dumps(body), media_type="application/json")


# --- routes -------------------------------------------------------------------------------------

EntityPath = Annotated[str, Path(description="Entity name, e.g. `user` or `campaign`", examples=["user"])]
FeaturesQuery = Annotated[str | None, Query(
    description="Comma-separated `view:feature` (or `view` for all its features). Default: every feature "
                "of the entity.",
    openapi_examples={"two features": {"value": "user_ad_activity:clicks_1h,user_ad_activity:ctr_1h"},
                      "a whole view": {"value": "user_profile_daily"}})]
ServiceQuery = Annotated[str | None, Query(description="A registered feature service instead of `features`",
                                           openapi_examples={"ads ranking": {"value": "ads_ranking"}})]


_GET_PARAMETERS = [
    {"name": "entity", "in": "path", "required": True, "schema": {"type": "string"},
     "description": "Entity name, e.g. `user` or `campaign`", "example": "user"},
    {"name": "entity_id", "in": "path", "required": True, "schema": {"type": "string"},
     "description": "The entity's join key value (an integer for `user` and `campaign`)", "example": "42"},
    {"name": "features", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "Comma-separated `view:feature` (or `view` for all its features). Default: every feature "
                    "of the entity.",
     "examples": {"two features": {"value": "user_ad_activity:clicks_1h,user_ad_activity:ctr_1h"},
                  "a whole view": {"value": "user_profile_daily"}}},
    {"name": "feature_service", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "A registered feature service instead of `features`",
     "examples": {"ads ranking": {"value": "ads_ranking"}}},
]

_entity_counters: dict[str, Any] = {}


def _entities_read(entity: str, n: int) -> None:
    counter = _entity_counters.get(entity)
    if counter is None:  # .labels() takes a lock; look the child up once per entity
        counter = _entity_counters[entity] = ENTITIES_READ.labels(entity)
    counter.inc(n)


async def one_entity_json(state: ServingState, entity: str, raw_id: str, features: str | None,
                          feature_service: str | None) -> bytes:
    """The body of `GET /features/{entity}/{id}`, or the ApiError to answer instead.

    The one implementation of the route: FastAPI's endpoint and the hot path (serving/hot_get.py) call it."""
    try:
        selection = state.plan().select(entity, features, feature_service)
        parsed = selection.entity.parse_id(raw_id)
        rows = await state.reader.read(selection, [selection.entity.redis_key(parsed)])
    except (SelectionError, MalformedId, RedisFailure) as err:
        raise to_api_error(err) from None
    _entities_read(selection.entity.name, 1)
    return dumps({"entity": selection.entity.name,
                  **entity_features(selection, parsed, rows[0], int(time.time() * 1000))})


def unauthorized() -> ApiError:
    return ApiError(401, "unauthorized", "missing or wrong X-API-Key header", headers={"WWW-Authenticate": "ApiKey"})


def features_router(checker: KeyChecker | None) -> APIRouter:
    """The /features routes; with a key checker, every one of them requires an accepted key."""
    dependencies = []
    if checker is not None:
        async def require_api_key(given: Annotated[str | None, Security(API_KEY_HEADER)]) -> None:
            # Constant-time (serving/auth.py); neither the given key nor ours is ever logged.
            if not checker.accepts(given):
                raise unauthorized()

        dependencies.append(Depends(require_api_key))

    router = APIRouter(tags=["features"], dependencies=dependencies)

    # Requests to this route are answered by serving/hot_get.py before FastAPI's stack; this
    # endpoint documents the route (parameters from _GET_PARAMETERS) and answers what the hot path
    # leaves to it (a HEAD, a body, a root_path), with the same function.
    @router.get(
        "/features/{entity}/{entity_id}", response_class=Response,
        summary="Features of one entity, with freshness per view",
        openapi_extra={"parameters": _GET_PARAMETERS},
        responses={200: {"model": FeaturesResponse, "content": {"application/json": {"example": _EXAMPLE}}},
                   **_ERRORS})
    async def get_features(request: Request) -> Response:
        query = request.query_params
        body = await one_entity_json(request.app.state.serving, request.path_params["entity"],
                                     request.path_params["entity_id"], query.get("features"),
                                     query.get("feature_service"))
        return Response(body, media_type="application/json")

    @router.post(
        "/features/{entity}", response_class=Response,
        summary="Features of up to 1,000 entities in one Redis round trip",
        responses={200: {"model": BatchResponse, "content": {"application/json": {"example": {
                       "entity": "user", "results": [{k: v for k, v in _EXAMPLE.items() if k != "entity"}]}}}},
                   413: {"model": ErrorBody, "description": "More ids than the server's limit (1,000 by "
                                                             "default), or a body over max_body_bytes"},
                   **_ERRORS})
    async def get_features_batch(
        request: Request,
        entity: EntityPath,
        body: Annotated[BatchRequest, Body(openapi_examples={
            "ids": {"value": {"ids": [42, 7, 1001]}},
            "ids and features": {"value": {"ids": [42, 7], "features": ["user_ad_activity:ctr_1h"]}},
            "ids and service": {"value": {"ids": [42, 7], "feature_service": "ads_ranking"}}})],
        features: FeaturesQuery = None,
        feature_service: ServiceQuery = None,
    ) -> Response:
        state: ServingState = request.app.state.serving
        limit = state.settings.serving.max_batch_ids
        wanted = ",".join(body.features) if body.features is not None else features
        service = body.feature_service if body.feature_service is not None else feature_service
        try:
            selection = state.plan().select(entity, wanted, service)
            if len(body.ids) > limit:
                raise ApiError(413, "too_many_ids", f"{len(body.ids):,} ids in one request; the limit is {limit:,}")
            parsed: list[int | str] = []
            for index, raw in enumerate(body.ids):
                try:
                    parsed.append(selection.entity.parse_id(raw))
                except MalformedId as err:
                    raise MalformedId(f"ids[{index}]: {err}") from None
            unique = list(dict.fromkeys(parsed))  # a repeated id is read once
            rows = await state.reader.read(selection, [selection.entity.redis_key(i) for i in unique])
        except (SelectionError, MalformedId, RedisFailure) as err:
            raise to_api_error(err) from None
        _entities_read(selection.entity.name, len(unique))
        now_ms = int(time.time() * 1000)
        by_id = {i: entity_features(selection, i, row, now_ms) for i, row in zip(unique, rows)}
        return _json({"entity": selection.entity.name, "results": [by_id[i] for i in parsed]})

    return router
