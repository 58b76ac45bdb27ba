"""A real Redis and a real Feast registry for the feature API tests, made with the project's code.

The session gets its own Redis (tessera's RedisServer on a free port, state under pytest's tmp) and
its own registry (the repo's declarations compiled and applied by Feast), so neither a developer's
stack nor the integration tests' stack is touched. Rows are written by Feast itself
(`FeatureStore.write_to_online_store`), so the API is checked against Feast's own layout.
"""
from __future__ import annotations

from typing import Iterator

import pytest

from serving.app import create_app
from tessera.definitions import load_definitions
from tessera.services.redis_server import RedisServer
from tests.serving.stack import ServingStack, TestClient, apply_registry, free_port, make_settings, populate


@pytest.fixture(scope="session")
def serving_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServingStack]:
    settings = make_settings(tmp_path_factory.mktemp("serving"), free_port())
    redis = RedisServer(settings)
    assert redis.process.pid() is None, "a fresh state dir has no Redis of ours yet"
    redis.start()
    try:
        definitions = load_definitions(settings.feature_repo)
        store = apply_registry(settings, definitions)
        yield ServingStack(settings, definitions, store, redis, populate(store))
    finally:
        redis.stop()  # ours: started above in a state dir of this session


@pytest.fixture()
def client(serving_stack: ServingStack) -> Iterator[TestClient]:
    """The app in this process (lifespan included: plan loaded, watcher running)."""
    with TestClient(create_app(serving_stack.settings, environ={})) as test_client:
        yield test_client
