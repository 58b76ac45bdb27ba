"""The hot path (serving/hot_get.py) answers exactly what FastAPI's route would.

Each request is sent twice to the same app: once with the hot path on, once with it off (every
request through FastAPI's middlewares, routing and endpoint). Status, body and the headers a client
reads must be the same. The clock is frozen so that `age_ms` is too.
"""
from __future__ import annotations

import logging
from typing import Iterator

import pytest

from serving import routes_features
from serving.app import FeatureAPI, create_app
from serving.hot_get import route_params
from tests.serving.stack import ServingStack, TestClient

FROZEN_S = 1_900_000_000.0
COMPARED_HEADERS = ("content-type", "content-length", "www-authenticate", "retry-after")

REQUESTS = [
    "/features/user/1",
    "/features/user/2?feature_service=ads_ranking",
    "/features/user/3?features=user_ad_activity:clicks_1h,user_profile_daily",
    "/features/user/3?features=user_ad_activity:clicks_1h&features=user_ad_activity:ctr_1h",  # the last wins
    "/features/user/4?features=",
    "/features/user/4?features=%20,%20",
    "/features/user/5?feature_service=ads_ranking&features=user_ad_activity",
    "/features/user/6?feature_service=nope",
    "/features/user/7?features=user_ad_activity:nope",
    "/features/user/7?features=campaign_delivery:clicks_1h",
    "/features/user/7?feature_service=campaign_pacing",
    "/features/user/99999999",  # no row: missing
    "/features/user/-1",
    "/features/user/abc",
    "/features/user/1.5",
    "/features/user/%D9%A3",  # an Arabic-Indic digit: not an integer here
    "/features/user/99999999999999999999",
    "/features/driver/1",
    "/features/campaign/3",
    "/features/campaign/3?features=campaign_delivery:spend_24h&unknown=1",
    "/features/user/1?feature_service=ads_ranking%00",
    "/features/user/1?features=%E9",
]


@pytest.fixture()
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes_features.time, "time", lambda: FROZEN_S)


def both(client: TestClient, path: str, **kwargs) -> tuple:  # type: ignore[no-untyped-def]
    app: FeatureAPI = client.app  # type: ignore[assignment]
    hot = app.hot
    assert hot is not None
    answers = []
    for on in (True, False):
        app.hot = hot if on else None
        response = client.get(path, **kwargs)
        answers.append((response.status_code, response.content,
                        {h: response.headers.get(h) for h in COMPARED_HEADERS}))
    app.hot = hot
    return answers[0], answers[1]


@pytest.mark.parametrize("path", REQUESTS)
def test_hot_path_answers_as_fastapi_does(client: TestClient, frozen_clock: None, path: str) -> None:
    hot, fastapi = both(client, path)
    assert hot == fastapi


@pytest.fixture()
def keyed(serving_stack: ServingStack) -> Iterator[TestClient]:
    with TestClient(create_app(serving_stack.settings, environ={"TESSERA_API_KEY": "k1"})) as c:
        yield c


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "k1"}, {"X-API-Key": "k2"}, {"x-api-key": "k1"},
                                     [("X-API-Key", "k1"), ("X-API-Key", "k2")],
                                     [("X-API-Key", "k2"), ("X-API-Key", "k1")]])
def test_hot_path_checks_the_key_as_fastapi_does(keyed: TestClient, frozen_clock: None, headers) -> None:  # type: ignore[no-untyped-def]
    hot, fastapi = both(keyed, "/features/user/1", headers=headers)
    assert hot == fastapi
    assert hot[0] in (200, 401)


def test_hot_path_counts_requests_under_the_route(client: TestClient) -> None:
    client.get("/features/user/1")
    client.get("/features/user/abc")
    text = client.get("/metrics").text
    for status in ("200", "422"):
        assert (f'tessera_api_requests_total{{method="GET",route="/features/{{entity}}/{{entity_id}}",'
                f'status="{status}"}}') in text


def test_a_bug_on_the_hot_path_is_a_bare_500(client: TestClient, monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret detail")

    monkeypatch.setattr(routes_features, "entity_features", broken)
    with caplog.at_level(logging.ERROR, logger="tessera.serving"):
        response = client.get("/features/user/1")
    assert response.status_code == 500
    assert response.json() == {"status": 500, "error": "internal_error",
                               "message": "internal error; the server log has the details"}
    assert "secret detail" not in response.text
    assert "RuntimeError" in caplog.text  # the log has it


@pytest.mark.parametrize("scope, taken", [
    ({"method": "GET", "path": "/features/user/1"}, ("user", "1")),
    ({"method": "GET", "path": "/features/user/a:b"}, ("user", "a:b")),
    ({"method": "HEAD", "path": "/features/user/1"}, None),
    ({"method": "POST", "path": "/features/user/1"}, None),
    ({"method": "GET", "path": "/features/user/"}, None),
    ({"method": "GET", "path": "/features/user"}, None),
    ({"method": "GET", "path": "/features//1"}, None),
    ({"method": "GET", "path": "/features/user/1/"}, None),
    ({"method": "GET", "path": "/features/user/1/2"}, None),
    ({"method": "GET", "path": "/featuresx/user/1"}, None),
    ({"method": "GET", "path": "/features/user/1", "root_path": "/api"}, None),
])
def test_route_params_match_only_the_route(scope: dict, taken: tuple | None) -> None:
    assert route_params({"type": "http", "headers": [], **scope}) == taken


def test_requests_with_a_body_go_to_fastapi(client: TestClient) -> None:
    app: FeatureAPI = client.app  # type: ignore[assignment]
    assert app.hot is not None
    scope = {"type": "http", "method": "GET", "path": "/features/user/1", "headers": [(b"content-length", b"3")]}
    assert app.hot.takes(scope) is None
    scope["headers"] = [(b"x-api-key", b"a"), (b"x-api-key", b"b")]
    assert app.hot.takes(scope) == ("user", "1", "a")
