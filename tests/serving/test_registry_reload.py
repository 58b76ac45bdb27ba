"""`feast apply` changes the registry: the running API picks it up without a restart, and a broken
registry file never takes it down."""
from __future__ import annotations

import shutil
import time

import pytest
from serving.app import create_app
from tests.serving.stack import ServingStack, TestClient, apply_registry, make_settings, probe_service
from tessera.config import Settings


@pytest.fixture()
def own_registry(serving_stack: ServingStack, tmp_path) -> Settings:
    """A copy of the session's registry, so changing it here leaves the other tests' alone."""
    settings = make_settings(tmp_path, serving_stack.settings.redis.port)
    settings.registry_path.parent.mkdir(parents=True)
    shutil.copy(serving_stack.settings.registry_path, settings.registry_path)
    return settings


def poll(check, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_feast_apply_is_picked_up_without_restart(serving_stack: ServingStack, own_registry: Settings) -> None:
    with TestClient(create_app(own_registry, environ={})) as client:
        before = client.get("/features/user/1?feature_service=reload_probe")
        assert before.status_code == 400
        version = client.get("/health").json()["registry"]["version_id"]

        apply_registry(own_registry, serving_stack.definitions, extra=[probe_service(serving_stack, own_registry)])

        failures = []

        def probe_served() -> bool:
            # Requests keep succeeding throughout the swap: the old plan serves until the new one is in.
            plain = client.get("/features/user/1")
            if plain.status_code != 200:
                failures.append(plain.status_code)
            return client.get("/features/user/1?feature_service=reload_probe").status_code == 200

        assert poll(probe_served), "the new feature service was not served within 10 s"
        assert not failures
        after = client.get("/features/user/1?feature_service=reload_probe").json()
        assert after["features"] == {"user_ad_activity:clicks_1h": 1, "user_ad_activity:ctr_1h": 0.1}
        assert client.get("/health").json()["registry"]["version_id"] != version
        assert 'tessera_api_registry_reloads_total{result="loaded"}' in client.get("/metrics").text


def test_broken_registry_keeps_the_last_good_plan(own_registry: Settings) -> None:
    good = own_registry.registry_path.read_bytes()
    with TestClient(create_app(own_registry, environ={})) as client:
        own_registry.registry_path.write_bytes(b"\xff\xff not a registry")

        def reports_error() -> bool:
            return "did not load" in client.get("/health").json()["registry"].get("error", "")

        assert poll(reports_error)
        assert client.get("/features/user/1").status_code == 200  # still serving the last good plan
        assert client.get("/health").status_code == 200

        own_registry.registry_path.write_bytes(good)
        assert poll(lambda: "error" not in client.get("/health").json()["registry"])


def test_registry_appearing_after_start_is_loaded(serving_stack: ServingStack, tmp_path) -> None:
    settings = make_settings(tmp_path, serving_stack.settings.redis.port)
    with TestClient(create_app(settings, environ={})) as client:
        assert client.get("/features/user/1").status_code == 503
        apply_registry(settings, serving_stack.definitions)
        assert poll(lambda: client.get("/features/user/1").status_code == 200)
