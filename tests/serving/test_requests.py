"""Request handling: batching, freshness, every error case, the API key, health, metrics, docs."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest
from pydantic import SecretStr

from serving.app import create_app
from tests.serving.stack import MISSING_USER, ServingStack, TestClient, make_settings


def comparable(entry: dict) -> dict:
    """An answer without the parts that move with the clock (ages, and so maybe statuses)."""
    return {"id": entry["id"], "features": entry["features"],
            "as_of": {name: view["as_of"] for name, view in entry["views"].items()}}


# --- batching -----------------------------------------------------------------------------------

def test_batch_equals_single_id_by_id(client: TestClient) -> None:
    ids = [5, 1, MISSING_USER, 2, 1, "3", 4]  # a duplicate, a missing id, an id as a string
    batch = client.post("/features/user", json={"ids": ids})
    assert batch.status_code == 200, batch.text
    body = batch.json()
    assert body["entity"] == "user" and len(body["results"]) == len(ids)
    for requested, entry in zip(ids, body["results"]):
        single = client.get(f"/features/user/{requested}").json()
        assert entry["id"] == int(requested)
        assert comparable(entry) == comparable(single)


def test_batch_takes_the_same_selectors(client: TestClient) -> None:
    in_body = client.post("/features/user", json={"ids": [1, 5], "features": ["user_ad_activity:clicks_1h"]})
    in_query = client.post("/features/user?features=user_ad_activity:clicks_1h", json={"ids": [1, 5]})
    assert in_body.status_code == in_query.status_code == 200
    assert [r["features"] for r in in_body.json()["results"]] == [{"user_ad_activity:clicks_1h": 1},
                                                                 {"user_ad_activity:clicks_1h": 5}]
    assert comparable(in_body.json()["results"][0]) == comparable(in_query.json()["results"][0])
    service = client.post("/features/user", json={"ids": [1], "feature_service": "ads_ranking"}).json()
    assert len(service["results"][0]["features"]) == 16


def test_batch_of_the_maximum_size(client: TestClient) -> None:
    ids = list(range(1, 1001))
    response = client.post("/features/user", json={"ids": ids})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["id"] for r in results] == ids
    assert results[0]["features"]["user_ad_activity:impressions_1h"] == 10
    assert results[999]["views"]["user_ad_activity"]["status"] == "missing"


def test_a_whole_view_by_name(client: TestClient) -> None:
    body = client.get("/features/user/5?features=user_profile_daily").json()
    assert list(body["features"]) == ["user_profile_daily:impressions_30d", "user_profile_daily:clicks_30d",
                                      "user_profile_daily:spend_30d", "user_profile_daily:active_days_30d"]
    assert list(body["views"]) == ["user_profile_daily"]
    assert body["entity"] == "user" and body["id"] == 5


def test_empty_batch(client: TestClient) -> None:
    assert client.post("/features/user", json={"ids": []}).json() == {"entity": "user", "results": []}


# --- freshness ----------------------------------------------------------------------------------

def test_fresh_stale_and_missing(client: TestClient, serving_stack: ServingStack) -> None:
    now = datetime.now(timezone.utc)
    row = {"user_id": 77, "event_timestamp": now, "created": now, "impressions_5m": 1, "impressions_1h": 1,
           "impressions_24h": 1, "clicks_5m": 0, "clicks_1h": 0, "clicks_24h": 0, "conversions_1h": 0,
           "conversions_24h": 0, "spend_1h": 0.0, "spend_24h": 0.0, "ctr_1h": None, "ctr_24h": 0.0}
    serving_stack.store.write_to_online_store("user_ad_activity", pd.DataFrame([row]))
    views = client.get("/features/user/77").json()["views"]
    activity = views["user_ad_activity"]
    assert activity["status"] == "fresh" and 0 <= activity["age_ms"] <= 5_000
    assert activity["as_of_ms"] == int(now.timestamp() * 1000)
    assert datetime.fromisoformat(activity["as_of"].replace("Z", "+00:00")) == now.replace(
        microsecond=now.microsecond // 1000 * 1000)
    assert views["user_profile_daily"] == {"as_of": None, "as_of_ms": None, "age_ms": None, "status": "missing"}

    stale = client.get("/features/user/4").json()["views"]["user_ad_activity"]  # written an hour back
    assert stale["status"] == "stale" and stale["age_ms"] >= 3_600_000 - 1_000
    daily = client.get("/features/user/5").json()["views"]["user_profile_daily"]  # yesterday, budget 2d
    assert daily["status"] == "fresh" and daily["age_ms"] > 0


# --- errors -------------------------------------------------------------------------------------

def assert_error(response, status: int, error: str, mentions: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status and body["error"] == error and body["message"]
    if mentions is not None:
        assert mentions in body["message"]
    return body


@pytest.mark.parametrize("method", ["get", "post"])
def test_unknown_entity_is_404(client: TestClient, method: str) -> None:
    response = client.get("/features/driver/1") if method == "get" else \
        client.post("/features/driver", json={"ids": [1]})
    assert assert_error(response, 404, "unknown_entity", "'driver'")["name"] == "driver"


@pytest.mark.parametrize("features, named", [
    ("user_ad_activity:nope", "user_ad_activity:nope"),
    ("user_ad_activity:clicks_1h,ghost_view:x", "ghost_view:x"),
    ("campaign_delivery:clicks_1h", "campaign_delivery:clicks_1h"),  # another entity's view
])
def test_unknown_feature_is_400_naming_it(client: TestClient, features: str, named: str) -> None:
    body = assert_error(client.get("/features/user/1", params={"features": features}), 400, "unknown_feature", named)
    assert body["name"] == named
    batch = client.post("/features/user", json={"ids": [1], "features": features.split(",")})
    assert_error(batch, 400, "unknown_feature", named)


def test_unknown_or_foreign_feature_service_is_400(client: TestClient) -> None:
    assert_error(client.get("/features/user/1?feature_service=nope"), 400, "unknown_feature_service", "'nope'")
    assert_error(client.get("/features/user/1?feature_service=campaign_pacing"), 400, "wrong_entity",
                 "campaign_pacing")
    assert_error(client.get("/features/user/1?feature_service=ads_ranking&features=user_ad_activity"), 400,
                 "conflicting_selectors")


@pytest.mark.parametrize("bad_id", ["abc", "1.5", "-", "12a", "99999999999999999999", "٣"])
def test_malformed_id_is_422(client: TestClient, bad_id: str) -> None:
    assert_error(client.get(f"/features/user/{bad_id}"), 422, "malformed_id", "user_id")


@pytest.mark.parametrize("body, error", [
    ({"ids": ["x"]}, "malformed_id"),
    ({"ids": [1, 2**63]}, "malformed_id"),
    ({"ids": [1.5]}, "invalid_request"),
    ({"ids": [True]}, "invalid_request"),
    ({"ids": "1"}, "invalid_request"),
    ({}, "invalid_request"),
])
def test_malformed_batch_is_422(client: TestClient, body: dict, error: str) -> None:
    assert_error(client.post("/features/user", json=body), 422, error)


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post("/features/user", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(response, 422, "invalid_request")


def test_too_many_ids_is_413(client: TestClient) -> None:
    assert_error(client.post("/features/user", json={"ids": list(range(1001))}), 413, "too_many_ids", "1,000")


def test_unknown_route_is_json_404(client: TestClient) -> None:
    assert_error(client.get("/nothing/here"), 404, "not_found")
    assert_error(client.delete("/features/user/1"), 405, "method_not_allowed")


# --- API key ------------------------------------------------------------------------------------

@pytest.fixture()
def keyed_client(serving_stack: ServingStack):
    with TestClient(create_app(serving_stack.settings, environ={"TESSERA_API_KEY": "s3cret-key"})) as c:
        yield c


def test_api_key_guards_every_features_route(keyed_client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}, {"X-API-Key": "s3cret-key "}):
        assert_error(keyed_client.get("/features/user/1", headers=headers), 401, "unauthorized")
        assert_error(keyed_client.post("/features/user", json={"ids": [1]}, headers=headers), 401, "unauthorized")
    # Checked before anything else: an unknown entity does not leak through without a key.
    assert_error(keyed_client.get("/features/driver/1"), 401, "unauthorized")
    good = {"X-API-Key": "s3cret-key"}
    assert keyed_client.get("/features/user/1", headers=good).status_code == 200
    assert keyed_client.post("/features/user", json={"ids": [1]}, headers=good).status_code == 200
    assert keyed_client.get("/health").status_code == 200  # operations stay open
    assert keyed_client.get("/metrics").status_code == 200
    assert "s3cret-key" not in caplog.text


def test_api_key_from_settings(serving_stack: ServingStack) -> None:
    base = serving_stack.settings
    settings = base.model_copy(update={"serving": base.serving.model_copy(update={"api_key": SecretStr("from-settings")})})
    with TestClient(create_app(settings, environ={"TESSERA_API_KEY": "ignored"})) as c:
        assert c.get("/features/user/1", headers={"X-API-Key": "ignored"}).status_code == 401
        assert c.get("/features/user/1", headers={"X-API-Key": "from-settings"}).status_code == 200
    assert "from-settings" not in repr(settings)


# --- operations ---------------------------------------------------------------------------------

def test_health_reports_redis_and_registry(client: TestClient, serving_stack: ServingStack) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["redis"]["reachable"] is True
    assert body["registry"]["loaded"] is True
    assert body["registry"]["entities"] == ["campaign", "user"]
    assert body["registry"]["feature_services"] == ["ads_ranking", "campaign_pacing"]
    assert body["registry"]["path"] == str(serving_stack.settings.registry_path)


def test_health_without_a_registry_is_503(serving_stack: ServingStack, tmp_path) -> None:
    settings = make_settings(tmp_path, serving_stack.settings.redis.port)
    with TestClient(create_app(settings, environ={})) as c:
        health = c.get("/health")
        assert health.status_code == 503 and health.json()["registry"]["loaded"] is False
        assert "tessera apply" in health.json()["registry"]["error"]
        assert_error(c.get("/features/user/1"), 503, "registry_not_loaded", "tessera apply")


def test_metrics_count_requests_by_route_and_status(client: TestClient) -> None:
    client.get("/features/user/1")
    client.get("/features/user/abc")
    text = client.get("/metrics").text
    assert 'tessera_api_request_duration_seconds_bucket{le="0.005",method="GET",route="/features/{entity}/{entity_id}"}' in text
    assert 'tessera_api_requests_total{method="GET",route="/features/{entity}/{entity_id}",status="422"}' in text
    assert "tessera_api_redis_errors_total" in text
    assert 'tessera_api_registry_reloads_total{result="loaded"}' in text


def test_openapi_documents_routes_with_examples(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/features/{entity}/{entity_id}", "/features/{entity}", "/health", "/metrics"} <= set(spec["paths"])
    get = spec["paths"]["/features/{entity}/{entity_id}"]["get"]
    assert [p["name"] for p in get["parameters"]] == ["entity", "entity_id", "features", "feature_service"]
    assert "example" in get["responses"]["200"]["content"]["application/json"]
    assert {"400", "404", "422", "503"} <= set(get["responses"])
    post = spec["paths"]["/features/{entity}"]["post"]
    assert post["requestBody"]["content"]["application/json"]["examples"]
    assert "413" in post["responses"]
