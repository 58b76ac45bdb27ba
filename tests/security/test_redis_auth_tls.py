"""Redis password and TLS reach every client: Feast (its connection string, for `tessera apply`,
the sink and materialization), the feature API's own pool, the stream's online writer and the
service checks, against a real redis-server with `requirepass`, and one on TLS only that also
asks for a client certificate. The password holds ',' '=' quotes and more, which Feast's
connection string used to cut. It never shows in logs or answers.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
import redis
from feast import FeatureStore
from pydantic import SecretStr

from serving.app import create_app
from streaming.aggregator import FeatureRow
from streaming.online_writer import OnlineOfflineWriter
from tessera.config import RedisSettings, Settings
from tessera.definitions import load_definitions
from tessera.feast_objects import repo_config
from tessera.services.redis_server import RedisServer, redis_client
from tests.security.redis_tls import TlsRedis, make_certificates
from tests.serving.stack import TestClient, apply_registry, free_port, make_settings, populate

PASSWORD = 'p,a=ss "w0rd",\\ é=1,true'
WRITTEN_USER = 424_242


@dataclass
class Secured:
    mode: str
    settings: Settings


def _with_redis(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update={"redis": settings.redis.model_copy(update=changes)})


@pytest.fixture(scope="module", params=["password", "password+tls"])
def secured(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    base = tmp_path_factory.mktemp(request.param.replace("+", "-"))
    port = free_port()
    settings = _with_redis(make_settings(base, port), password=SecretStr(PASSWORD))
    if request.param == "password":
        server = RedisServer(settings)  # tessera's own: writes requirepass to a private config file
        server.start()
        stop = server.stop
    else:
        certs = make_certificates(base / "certs")
        settings = _with_redis(settings, ssl=True, ssl_ca_certs=certs.ca, ssl_certfile=certs.client_cert,
                               ssl_keyfile=certs.client_key)
        tls = TlsRedis(base, port, PASSWORD, certs)
        stop = tls.stop
    # A TLS handshake on a busy 2-core machine can outlast the API's 50 ms Redis budget; what is
    # tested here is that every client gets through, not how fast.
    settings = settings.model_copy(update={"serving": settings.serving.model_copy(update={"redis_timeout_ms": 2_000})})
    try:
        store = apply_registry(settings, load_definitions(settings.feature_repo))  # Feast: registry + infra
        populate(store)  # Feast's writer, through the connection string
        yield Secured(request.param, settings)
    finally:
        stop()


def test_the_connection_string_survives_feasts_parsing() -> None:
    from feast.infra.online_stores.redis import RedisOnlineStore

    for password in (PASSWORD, "a,b", "x=y", "123", "true", "null", '"quoted"', "", " lead", "1" * 5000,
                     "[[[[", "{\"a\": 1}", "\\u002c"):
        settings = RedisSettings(host="redis.example", port=6380, db=3, username="svc,1", password=SecretStr(password),
                                 ssl=True, ssl_ca_certs=Path("/certs/ca,1.pem"), ssl_cert_reqs="none")
        nodes, params = RedisOnlineStore._parse_connection_string(settings.feast_connection_string)
        assert nodes == [{"host": "redis.example", "port": "6380"}]
        expected = {k: v for k, v in settings.client_kwargs().items() if k not in ("host", "port")}
        del expected["ssl_check_hostname"]  # redis-py's default, left out of the string
        assert params == expected, password


def test_ordinary_passwords_stay_readable() -> None:
    assert RedisSettings(password=SecretStr("hunter2")).feast_connection_string == \
        "127.0.0.1:6379,db=0,password=hunter2"


def test_service_check_connects(secured: Secured) -> None:
    assert redis_client(secured.settings).ping()


def test_feast_reads_what_feast_wrote(secured: Secured) -> None:
    store = FeatureStore(config=repo_config(secured.settings))
    values = store.get_online_features(["user_ad_activity:clicks_1h"], [{"user_id": 1}]).to_dict()
    assert values["clicks_1h"] == [1]


def test_the_stream_writer_and_the_api_connect(secured: Secured, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = secured.settings
    definitions = load_definitions(settings.feature_repo)
    view = definitions.view("user_ad_activity")
    as_of = int(datetime.now(timezone.utc).timestamp() * 1000)
    values = {name: (7 if name.startswith("clicks") else 0) for name in view.feature_names}
    OnlineOfflineWriter(settings, definitions).write([FeatureRow(view.name, WRITTEN_USER, as_of, values)], "auth-test")
    with TestClient(create_app(settings, environ={})) as client:
        health = client.get("/health")
        assert health.status_code == 200, health.text
        body = client.get(f"/features/user/{WRITTEN_USER}?features=user_ad_activity:clicks_1h").json()
        assert body["features"] == {"user_ad_activity:clicks_1h": 7}
        assert body["views"]["user_ad_activity"]["as_of_ms"] == as_of
        assert client.get("/features/user/1").json()["features"]["user_ad_activity:clicks_1h"] == 1
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize("wrong", ["password", "no-password", "no-tls-files"])
def test_wrong_credentials_fail_without_showing_the_password(secured: Secured, wrong: str,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    if wrong == "no-tls-files" and secured.mode != "password+tls":
        pytest.skip("only the TLS server asks for certificates")
    changes: dict[str, object] = {
        "password": {"password": SecretStr("not-" + PASSWORD)},
        "no-password": {"password": None},
        "no-tls-files": {"ssl_ca_certs": None, "ssl_certfile": None, "ssl_keyfile": None},
    }[wrong]
    settings = _with_redis(secured.settings, **changes)
    with pytest.raises(redis.RedisError):
        redis_client(settings).ping()
    with TestClient(create_app(settings, environ={})) as client:
        health = client.get("/health")
        features = client.get("/features/user/1")
    assert health.status_code == 503 and health.json()["redis"]["reachable"] is False
    assert features.status_code == 503 and features.json()["error"] == "redis_unavailable"
    for text in (health.text, features.text, caplog.text):
        assert PASSWORD not in text


def test_a_plain_client_cannot_talk_to_the_tls_server(secured: Secured) -> None:
    if secured.mode != "password+tls":
        pytest.skip("TLS only")
    plain = _with_redis(secured.settings, ssl=False)
    with pytest.raises(redis.RedisError):
        redis_client(plain).ping()
