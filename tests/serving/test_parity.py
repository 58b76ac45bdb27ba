"""The API returns exactly what Feast's own get_online_features returns for the same keys."""
from __future__ import annotations

import base64
import math
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pandas as pd
import pytest
from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.types import Array, Bool, Bytes, Float32, Float64, Int32, Int64, String, UnixTimestamp

from serving.app import create_app
from tests.serving.stack import MISSING_USER, ServingStack, TestClient, make_settings
from tessera.feast_objects import repo_config


def feast_values(store: FeatureStore, features: Any, join_key: str, entity_id: Any) -> dict[str, Any]:
    """Feast's answer for one entity, keyed `view:feature` like the API's."""
    response = store.get_online_features(features=features, entity_rows=[{join_key: entity_id}],
                                         full_feature_names=True).to_dict()
    return {name.replace("__", ":", 1): values[0] for name, values in response.items() if name != join_key}


def assert_same(api: dict[str, Any], feast: dict[str, Any]) -> None:
    """Same keys, same values, same JSON-level types (an int stays an int, a float a float)."""
    assert set(api) == set(feast)
    for ref, expected in feast.items():
        got = api[ref]
        if isinstance(expected, float) and math.isnan(expected):
            assert got is None, ref  # JSON has no NaN
        elif isinstance(expected, datetime):
            assert datetime.fromisoformat(got.replace("Z", "+00:00")) == expected, ref
        elif isinstance(expected, bytes):
            assert base64.b64decode(got) == expected, ref
        else:
            assert got == expected and type(got) is type(expected), (ref, got, expected)


def all_refs(stack: ServingStack, entity: str) -> list[str]:
    return [f.ref for v in stack.definitions.views_of(entity) for f in v.features]


@pytest.mark.parametrize("user_id", [1, 2, 3, 4, 5, MISSING_USER])
def test_every_user_feature_matches_feast(client: TestClient, serving_stack: ServingStack, user_id: int) -> None:
    response = client.get(f"/features/user/{user_id}")
    assert response.status_code == 200, response.text
    expected = feast_values(serving_stack.store, all_refs(serving_stack, "user"), "user_id", user_id)
    assert_same(response.json()["features"], expected)


def test_null_and_missing_are_null_like_feast(client: TestClient, serving_stack: ServingStack) -> None:
    features = {u: client.get(f"/features/user/{u}").json()["features"] for u in (2, 3, MISSING_USER)}
    assert features[2]["user_ad_activity:ctr_1h"] is None  # written as None
    assert features[3]["user_ad_activity:ctr_1h"] is None  # written as NaN: Feast stores it as null
    assert features[2]["user_ad_activity:clicks_1h"] == 2
    assert all(v is None for v in features[MISSING_USER].values())


def test_feature_service_matches_feast(client: TestClient, serving_stack: ServingStack) -> None:
    service = serving_stack.store.get_feature_service("ads_ranking")
    for user_id in (1, 4, MISSING_USER):
        response = client.get(f"/features/user/{user_id}", params={"feature_service": "ads_ranking"})
        assert response.status_code == 200, response.text
        assert_same(response.json()["features"], feast_values(serving_stack.store, service, "user_id", user_id))


@pytest.mark.parametrize("campaign_id", [10, 11, 12])
def test_campaign_features_match_feast(client: TestClient, serving_stack: ServingStack, campaign_id: int) -> None:
    response = client.get(f"/features/campaign/{campaign_id}")
    assert response.status_code == 200, response.text
    expected = feast_values(serving_stack.store, all_refs(serving_stack, "campaign"), "campaign_id", campaign_id)
    assert_same(response.json()["features"], expected)


def test_selected_features_match_feast(client: TestClient, serving_stack: ServingStack) -> None:
    refs = ["user_profile_daily:spend_30d", "user_ad_activity:ctr_24h"]
    response = client.get("/features/user/5", params={"features": ",".join(refs)})
    body = response.json()
    assert list(body["features"]) == refs  # request order
    assert_same(body["features"], feast_values(serving_stack.store, refs, "user_id", 5))
    assert set(body["views"]) == {"user_profile_daily", "user_ad_activity"}


# --- every Feast value type, in a registry of its own ----------------------------------------------

ZOO_TYPES = {
    "f_int32": Int32, "f_int64": Int64, "f_float32": Float32, "f_float64": Float64, "f_string": String,
    "f_bool": Bool, "f_bytes": Bytes, "f_ts": UnixTimestamp, "f_int64_list": Array(Int64),
    "f_float64_list": Array(Float64), "f_string_list": Array(String), "f_bool_list": Array(Bool),
}


def zoo_rows(now: datetime) -> list[dict[str, Any]]:
    full = {"f_int32": 7, "f_int64": 2**40, "f_float32": 0.1, "f_float64": 1 / 3, "f_string": "héllo ✓",
            "f_bool": True, "f_bytes": b"\x00\xffraw", "f_ts": now.replace(microsecond=0) - timedelta(days=2),
            "f_int64_list": [1, -2, 2**50], "f_float64_list": [0.5, -1.25], "f_string_list": ["a", "", "ü"],
            "f_bool_list": [True, False]}
    nulls = {name: None for name in ZOO_TYPES}
    nulls["f_int64"] = -5  # one non-null so the row exists with nulls beside it
    return [{"thing_id": 1, "name": "one", **full}, {"thing_id": 2, "name": "two", **nulls}]


@pytest.fixture(scope="module")
def zoo(serving_stack: ServingStack,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FeatureStore, TestClient]]:
    settings = make_settings(tmp_path_factory.mktemp("zoo"), serving_stack.settings.redis.port, project="typezoo")
    source_path = settings.data_dir / "zoo.parquet"
    source_path.parent.mkdir(parents=True, exist_ok=True)
    thing = Entity(name="thing", join_keys=["thing_id"], value_type=ValueType.INT64)
    named = Entity(name="named", join_keys=["name"], value_type=ValueType.STRING)
    schema = [Field(name=n, dtype=t) for n, t in ZOO_TYPES.items()]
    source = FileSource(name="zoo_source", path=str(source_path), timestamp_field="event_timestamp")
    by_id = FeatureView(name="zoo", entities=[thing], schema=schema, source=source, ttl=timedelta(0), online=True)
    by_name = FeatureView(name="zoo_by_name", entities=[named], schema=schema, source=source, ttl=timedelta(0),
                          online=True)
    store = FeatureStore(config=repo_config(settings))
    store.apply([thing, named, by_id, by_name, FeatureService(name="zoo_all", features=[by_id])])
    now = datetime.now(timezone.utc)
    frame = pd.DataFrame([{**row, "event_timestamp": now} for row in zoo_rows(now)])
    store.write_to_online_store("zoo", frame.drop(columns=["name"]))
    store.write_to_online_store("zoo_by_name", frame.drop(columns=["thing_id"]))
    with TestClient(create_app(settings, environ={})) as client:
        yield store, client


@pytest.mark.parametrize("thing_id", [1, 2, 3])
def test_every_value_type_matches_feast(zoo: tuple[FeatureStore, TestClient], thing_id: int) -> None:
    store, client = zoo
    response = client.get(f"/features/thing/{thing_id}")
    assert response.status_code == 200, response.text
    expected = feast_values(store, [f"zoo:{n}" for n in ZOO_TYPES], "thing_id", thing_id)
    assert_same(response.json()["features"], expected)


@pytest.mark.parametrize("name", ["one", "two", "nobody"])
def test_string_entity_keys_match_feast(zoo: tuple[FeatureStore, TestClient], name: str) -> None:
    store, client = zoo
    response = client.post("/features/named", json={"ids": [name]})
    assert response.status_code == 200, response.text
    expected = feast_values(store, [f"zoo_by_name:{n}" for n in ZOO_TYPES], "name", name)
    assert_same(response.json()["results"][0]["features"], expected)


def test_registered_view_without_definition_reports_no_budget(zoo: tuple[FeatureStore, TestClient]) -> None:
    _, client = zoo
    health = client.get("/health").json()
    assert any("zoo" in w and "freshness budget" in w for w in health["registry"]["warnings"])
    assert client.get("/features/thing/1").json()["views"]["zoo"]["status"] == "fresh"
