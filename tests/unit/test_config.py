"""Settings come from tessera.toml, TESSERA_* environment variables win, relative paths are
relative to the config file."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from tessera.config import RedisSettings, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TESSERA_* variable of the calling shell leaks into these tests."""
    for key in [k for k in os.environ if k.startswith("TESSERA_")]:
        monkeypatch.delenv(key)


def write_config(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tessera.toml"
    path.write_text(text)
    return path


CUSTOM = """\
[kafka]
bootstrap_servers = "10.1.2.3:9092"
topic = "custom_events"
partitions = 6

[redis]
host = "10.1.2.4"
port = 6400
db = 3

[paths]
data_dir = "my_data"
state_dir = "/var/lib/tessera-state"

[feast]
repo = "repo_dir"
"""


# --- the project's own tessera.toml -----------------------------------------------------------

def test_project_defaults_are_what_tessera_toml_says() -> None:
    toml: dict[str, Any] = tomllib.loads((ROOT / "tessera.toml").read_text())
    settings = load_settings(ROOT / "tessera.toml")
    for section, values in toml.items():
        model = getattr(settings, section)
        for key, value in values.items():
            actual = getattr(model, key)
            if isinstance(actual, Path):
                assert settings.resolve(actual) == (ROOT / value).resolve(), f"{section}.{key}"
            else:
                assert actual == value, f"{section}.{key}"
    assert settings.root == ROOT


def test_project_defaults_match_the_spec_topic_names() -> None:
    settings = load_settings(ROOT / "tessera.toml")
    assert settings.kafka.topic == "ad_events"
    assert settings.kafka.dlq_topic == "ad_events.dlq"


def test_nearest_tessera_toml_is_found_from_a_subfolder() -> None:
    settings = load_settings(start=ROOT / "feature_repo")
    assert settings.root == ROOT
    assert settings.feature_repo == ROOT / "feature_repo"


def test_values_come_from_the_file_and_the_rest_from_defaults(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, CUSTOM))
    assert settings.kafka.bootstrap_servers == "10.1.2.3:9092"
    assert settings.kafka.topic == "custom_events"
    assert settings.kafka.partitions == 6
    assert settings.kafka.dlq_topic == "ad_events.dlq"  # not in the file: the default
    assert (settings.redis.host, settings.redis.port, settings.redis.db) == ("10.1.2.4", 6400, 3)
    assert not settings.kafka.is_local and not settings.redis.is_local


def test_unknown_section_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kafak"):
        load_settings(write_config(tmp_path, '[kafak]\nbootstrap_servers = "x:1"\n'))


# --- environment overrides --------------------------------------------------------------------

def test_env_overrides_win_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_KAFKA__BOOTSTRAP_SERVERS", "broker-1:9092,broker-2:9092")
    monkeypatch.setenv("TESSERA_REDIS__PORT", "6390")
    settings = load_settings(write_config(tmp_path, CUSTOM))
    assert settings.kafka.bootstrap_servers == "broker-1:9092,broker-2:9092"
    assert settings.redis.port == 6390
    # the rest of each section still comes from the file
    assert settings.kafka.topic == "custom_events"
    assert settings.kafka.partitions == 6
    assert settings.redis.host == "10.1.2.4"
    assert settings.kafka.port == 9092


def test_env_overrides_the_project_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_KAFKA__BOOTSTRAP_SERVERS", "kafka.internal:19092")
    monkeypatch.setenv("TESSERA_REDIS__PORT", "16379")
    settings = load_settings(ROOT / "tessera.toml")
    assert settings.kafka.bootstrap_servers == "kafka.internal:19092"
    assert not settings.kafka.is_local
    assert settings.kafka.port == 19092
    assert settings.redis.port == 16379


def test_bad_env_value_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_REDIS__PORT", "not-a-port")
    with pytest.raises(ValueError, match="port"):
        load_settings(write_config(tmp_path, CUSTOM))


def test_tessera_config_selects_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path / "elsewhere", CUSTOM)
    monkeypatch.setenv("TESSERA_CONFIG", str(path))
    settings = load_settings(start=ROOT)  # TESSERA_CONFIG wins over the nearest tessera.toml
    assert settings.kafka.topic == "custom_events"
    assert settings.root == path.parent.resolve()


def test_tessera_config_pointing_at_a_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope" / "tessera.toml"
    monkeypatch.setenv("TESSERA_CONFIG", str(missing))
    with pytest.raises(FileNotFoundError, match="nope"):
        load_settings()


# --- paths ------------------------------------------------------------------------------------

def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_dir = tmp_path / "deploy" / "conf"
    path = write_config(config_dir, CUSTOM)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(path)
    assert settings.data_dir == config_dir / "my_data"
    assert settings.feature_repo == config_dir / "repo_dir"
    assert settings.jar_dir == config_dir / ".cache" / "jars"  # a default, still relative to the file
    assert settings.state_dir == Path("/var/lib/tessera-state")  # absolute stays as written
    assert settings.raw_history_dir == config_dir / "my_data" / "raw" / "ad_events"
    assert settings.registry_path.parent == config_dir / "my_data"


def test_relative_config_path_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path / "conf", CUSTOM)
    monkeypatch.chdir(tmp_path)
    settings = load_settings(Path("conf/tessera.toml"))
    assert settings.data_dir == tmp_path / "conf" / "my_data"


# --- Feast's connection string ----------------------------------------------------------------

def test_feast_connection_string_without_password() -> None:
    redis = RedisSettings(host="redis.example", port=6380, db=2)
    assert redis.feast_connection_string == "redis.example:6380,db=2"


def test_feast_connection_string_includes_password_and_ssl() -> None:
    redis = RedisSettings(host="redis.example", port=6380, db=2, password=SecretStr("s3cr3t"), ssl=True)
    parts = redis.feast_connection_string.split(",")
    assert parts[0] == "redis.example:6380"
    assert set(parts[1:]) == {"db=2", "password=s3cr3t", "ssl=true"}


def test_password_from_env_reaches_the_connection_string_but_not_repr(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_REDIS__PASSWORD", "hunter2")
    settings = load_settings(write_config(tmp_path, CUSTOM))
    assert "password=hunter2" in settings.redis.feast_connection_string.split(",")
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings)


def test_settings_class_is_usable_without_a_file() -> None:
    settings = Settings()
    assert settings.redis.port == 6379 and settings.kafka.is_local


def test_flink_engine_is_chosen_by_file_or_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, '[flink]\nengine = "python"\n')
    assert load_settings(path).flink.engine == "python"
    monkeypatch.setenv("TESSERA_FLINK__ENGINE", "jvm")
    assert load_settings(path).flink.engine == "jvm"
    monkeypatch.setenv("TESSERA_FLINK__ENGINE", "scala")
    with pytest.raises(ValueError):
        load_settings(path)
