"""The platform's one settings object: `tessera.toml` plus `TESSERA_*` environment overrides.

Passed explicitly to whatever needs it; nothing deep in the code reads the environment itself.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_NAME = "tessera.toml"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def split_host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"address {address!r} is not host:port")
    return host, int(port)


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"
    controller_port: int = 9093
    topic: str = "ad_events"
    dlq_topic: str = "ad_events.dlq"
    late_topic: str = "ad_events.late"            # events later than the allowed lateness, for the record
    features_topic: str = "tessera.features"      # rows from the Flink job to the online-store writer
    partitions: int = 2
    heap: str = "512m"
    # Passed through to every client, e.g. {"security.protocol": "SASL_SSL", "sasl.mechanism": ...}.
    client_options: dict[str, str] = {}

    @property
    def is_local(self) -> bool:
        return all(split_host_port(a)[0] in LOOPBACK_HOSTS for a in self.bootstrap_servers.split(","))

    @property
    def port(self) -> int:
        return split_host_port(self.bootstrap_servers.split(",")[0])[1]


class RedisSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    password: SecretStr | None = None
    ssl: bool = False

    @property
    def is_local(self) -> bool:
        return self.host in LOOPBACK_HOSTS

    @property
    def feast_connection_string(self) -> str:
        """The connection string in the form Feast's redis online store expects."""
        parts = [f"{self.host}:{self.port}", f"db={self.db}"]
        if self.password is not None:
            parts.append(f"password={self.password.get_secret_value()}")
        if self.ssl:
            parts.append("ssl=true")
        return ",".join(parts)


class PathSettings(BaseModel):
    state_dir: Path = Path(".tessera")
    data_dir: Path = Path("data")
    jar_dir: Path = Path(".cache/jars")


class FlinkSettings(BaseModel):
    """The streaming job: a local mini-cluster by default; a remote cluster by `execution.target`
    ("remote") with `rest.address`/`rest.port` in `conf`."""

    python: Path = Path(".venv-flink/bin/python")   # the Flink job's own environment
    parallelism: int = 1
    checkpoint_interval_ms: int = 5_000
    # Extra Flink configuration passed through, e.g. {"execution.target": "remote", "rest.address": "jm"}.
    conf: dict[str, str] = {}


class SinkSettings(BaseModel):
    """The writer after the Flink job: batches rows into Feast's Redis online store and the offline store."""

    batch_rows: int = 5_000
    batch_ms: int = 100
    archive_batch_events: int = 200_000
    archive_batch_ms: int = 10_000


class SparkSettings(BaseModel):
    """Local mode by default; any Spark master (spark://, yarn, k8s://) by configuration."""

    master: str = "local[2]"
    driver_memory: str = "2g"
    shuffle_partitions: int = 4
    # Extra Spark properties passed through as they are, e.g. {"spark.executor.memory": "4g"}.
    conf: dict[str, str] = {}


class ServingSettings(BaseModel):
    """The feature API (`tessera serve`). The API key may also come from TESSERA_API_KEY."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 0  # 0: one worker process per core
    api_key: SecretStr | None = None
    # Connect and read timeout towards Redis: a dead or hung Redis answers 503 in about this long.
    redis_timeout_ms: int = 50
    redis_max_connections: int = 256  # per worker
    max_batch_ids: int = 1000
    registry_poll_ms: int = 500
    graceful_shutdown_s: float = 10.0


class FeastSettings(BaseModel):
    repo: Path = Path("feature_repo")
    project: str = "tessera"


def find_config_file(start: Path | None = None) -> Path | None:
    """TESSERA_CONFIG if set, else the nearest tessera.toml above `start` (default: cwd)."""
    explicit = os.environ.get("TESSERA_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"TESSERA_CONFIG points at {path}, which is not a file")
        return path.resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE_NAME).is_file():
            return folder / CONFIG_FILE_NAME
    package_root = Path(__file__).resolve().parent.parent
    candidate = package_root / CONFIG_FILE_NAME
    return candidate if candidate.is_file() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TESSERA_", env_nested_delimiter="__", extra="forbid")

    kafka: KafkaSettings = KafkaSettings()
    redis: RedisSettings = RedisSettings()
    paths: PathSettings = PathSettings()
    feast: FeastSettings = FeastSettings()
    spark: SparkSettings = SparkSettings()
    serving: ServingSettings = ServingSettings()
    flink: FlinkSettings = FlinkSettings()
    sink: SinkSettings = SinkSettings()
    # The folder relative paths are resolved against (the config file's folder).
    root: Path = Path(".")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _CURRENT_FILE.get("path")
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    def resolve(self, path: Path) -> Path:
        # normpath, not resolve(): a venv's python is a symlink that must stay one.
        return path if path.is_absolute() else Path(os.path.normpath(self.root / path))

    @property
    def state_dir(self) -> Path:
        return self.resolve(self.paths.state_dir)

    @property
    def data_dir(self) -> Path:
        return self.resolve(self.paths.data_dir)

    @property
    def jar_dir(self) -> Path:
        return self.resolve(self.paths.jar_dir)

    @property
    def feature_repo(self) -> Path:
        return self.resolve(self.feast.repo)

    @property
    def raw_history_dir(self) -> Path:
        return self.data_dir / "raw" / "ad_events"

    @property
    def offline_store_dir(self) -> Path:
        return self.data_dir / "offline"

    @property
    def registry_path(self) -> Path:
        return self.data_dir / "registry.db"


# pydantic-settings takes the TOML path at class level; this carries the chosen file into it.
_CURRENT_FILE: dict[str, Any] = {}


def load_settings(config_file: Path | None = None, start: Path | None = None, **overrides: Any) -> Settings:
    """Read the config file (explicit, TESSERA_CONFIG, or the nearest tessera.toml above `start`)
    and the environment."""
    path = config_file.resolve() if config_file else find_config_file(start)
    _CURRENT_FILE["path"] = path
    try:
        settings = Settings(**overrides)
    finally:
        _CURRENT_FILE.clear()
    if "root" not in overrides and path is not None:
        settings.root = path.parent
    return settings
