"""docker-compose.yml and feature_repo/feature_store.yaml agree with tessera.toml's defaults."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tessera.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def defaults(monkeypatch: pytest.MonkeyPatch) -> Settings:
    import os

    for key in [k for k in os.environ if k.startswith("TESSERA_")]:
        monkeypatch.delenv(key)
    return load_settings(ROOT / "tessera.toml")


@pytest.fixture()
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _host_ports(service: dict) -> dict[int, int]:
    """container port -> host port"""
    out = {}
    for mapping in service.get("ports", []):
        host, container = str(mapping).split(":")[-2:]
        out[int(container)] = int(host)
    return out


def test_kafka_host_listener_is_the_configured_bootstrap(defaults: Settings, compose: dict) -> None:
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    assert _host_ports(kafka) == {defaults.kafka.port: defaults.kafka.port}
    assert f"HOST://{defaults.kafka.bootstrap_servers}" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert f"CONTROLLER://:{defaults.kafka.controller_port}" in env["KAFKA_LISTENERS"]
    assert env["KAFKA_NUM_PARTITIONS"] == str(defaults.kafka.partitions)


def test_redis_port_is_the_configured_one(defaults: Settings, compose: dict) -> None:
    assert _host_ports(compose["services"]["redis"]) == {6379: defaults.redis.port}


def test_platform_containers_use_real_settings_and_the_internal_listener(compose: dict) -> None:
    kafka_env = compose["services"]["kafka"]["environment"]
    internal = [a for a in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",") if a.startswith("INTERNAL://")]
    for name, service in compose["services"].items():
        env = service.get("environment", {})
        tessera_keys = [k for k in env if k.startswith("TESSERA_")]
        for key in tessera_keys:
            section, _, field = key.removeprefix("TESSERA_").lower().partition("__")
            model = Settings.model_fields[section].annotation
            assert field in model.model_fields, f"{name}: {key} is not a tessera setting"
        if "TESSERA_KAFKA__BOOTSTRAP_SERVERS" in env:
            assert f"INTERNAL://{env['TESSERA_KAFKA__BOOTSTRAP_SERVERS']}" == internal[0]
        if "TESSERA_REDIS__HOST" in env:
            assert env["TESSERA_REDIS__HOST"] in compose["services"]


def test_feature_store_yaml_matches_the_defaults(defaults: Settings) -> None:
    fs = yaml.safe_load((ROOT / "feature_repo" / "feature_store.yaml").read_text())
    assert fs["project"] == defaults.feast.project
    assert fs["online_store"]["type"] == "redis"
    assert fs["online_store"]["connection_string"] == defaults.redis.feast_connection_string
    assert (ROOT / "feature_repo" / fs["registry"]["path"]).resolve() == defaults.registry_path
    assert defaults.feature_repo == ROOT / "feature_repo"
