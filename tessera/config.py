"""The platform's one settings object: `tessera.toml` plus `TESSERA_*` environment overrides.

Passed explicitly to whatever needs it; nothing deep in the code reads the environment itself.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_NAME = "tessera.toml"
# Client options whose values are secrets (SASL passwords, JAAS lines, inline keys): never printed.
SECRET_OPTION = re.compile(r"password|secret|jaas|token|credential|(^|\.)key($|\.)|keystore\.key", re.IGNORECASE)
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
    # The local broker's CPU priority (Unix nice, -20 to 19), as [flink] nice: its JIT compiler and
    # collector come in bursts that, at equal priority, a feature API on the same machine waits behind.
    nice: int = Field(default=0, ge=-20, le=19)
    # librdkafka options passed through to every client, e.g. {"security.protocol": "SASL_SSL",
    # "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": ..., "sasl.password": ..., "ssl.ca.location": ...}.
    # The Flink job's Java clients get the same, translated (tessera/kafka_clients.py).
    client_options: dict[str, str] = {}
    # Extra properties for the Java clients only (the Flink job), applied after the translation.
    java_client_options: dict[str, str] = {}
    # The DLQ topic's max.message.bytes: a message at the broker's default 1 MiB limit, base64-encoded
    # in its dead letter, is a third larger.
    dlq_max_message_bytes: int = 2 * 1024 * 1024

    @property
    def is_local(self) -> bool:
        return all(split_host_port(a)[0] in LOOPBACK_HOSTS for a in self.bootstrap_servers.split(","))

    @property
    def port(self) -> int:
        return split_host_port(self.bootstrap_servers.split(",")[0])[1]


def _connection_string_value(value: Any) -> str:
    """One value of Feast's Redis connection string.

    Feast splits the string at every ',' and json-decodes each value, so a password holding ','
    (or spelled like JSON: 123, true, null) would be cut or changed. Such strings go as JSON
    strings with ',' escaped as \\u002c, which Feast's json decoding turns back into ','.
    """
    if not isinstance(value, str):
        return json.dumps(value)
    try:
        json.loads(value)
        spelled_like_json = True
    except json.JSONDecodeError:  # the one error Feast falls back on: the value stays a plain string
        spelled_like_json = False
    except (ValueError, RecursionError):  # e.g. 5,000 digits: would escape Feast's fallback and crash it
        spelled_like_json = True
    if "," not in value and not spelled_like_json:
        return value
    return json.dumps(value).replace(",", "\\u002c")


class RedisSettings(BaseModel):
    """The online store. Every client (the API, the sink through Feast, the service checks) is
    built from `client_kwargs()`, so auth and TLS reach all of them."""

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    username: str | None = None  # an ACL user (Redis 6+); None: the default user
    password: SecretStr | None = None
    ssl: bool = False
    ssl_ca_certs: Path | None = None   # CA file that signed the server's certificate
    ssl_certfile: Path | None = None   # client certificate, when the server asks for one
    ssl_keyfile: Path | None = None
    ssl_cert_reqs: Literal["required", "optional", "none"] = "required"
    ssl_check_hostname: bool = True
    # The local server's SCHED_FIFO priority (1-99; 0: ordinary), as [serving] realtime_priority:
    # on a machine shared with the stream, every request waits on Redis. Its snapshot child and
    # background threads stay at ordinary priority. Needs root or CAP_SYS_NICE.
    realtime_priority: int = Field(default=0, ge=0, le=99)

    @property
    def is_local(self) -> bool:
        return self.host in LOOPBACK_HOSTS

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of redis-py's Redis (sync and asyncio) for this server."""
        kwargs: dict[str, Any] = {"host": self.host, "port": self.port, "db": self.db}
        if self.username is not None:
            kwargs["username"] = self.username
        if self.password is not None:
            kwargs["password"] = self.password.get_secret_value()
        if self.ssl:
            kwargs["ssl"] = True
            kwargs["ssl_cert_reqs"] = self.ssl_cert_reqs
            kwargs["ssl_check_hostname"] = self.ssl_check_hostname
            for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
                path = getattr(self, name)
                if path is not None:
                    kwargs[name] = str(path)
        return kwargs

    def with_paths_under(self, root: Path) -> "RedisSettings":
        """TLS file paths relative to the config file's folder made absolute."""
        update = {name: root / path for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
                  if (path := getattr(self, name)) is not None and not path.expanduser().is_absolute()}
        update |= {name: path.expanduser() for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
                   if name not in update and (path := getattr(self, name)) is not None}
        return self.model_copy(update=update) if update else self

    @property
    def feast_connection_string(self) -> str:
        """The connection string in the form Feast's redis online store expects (same options as
        `client_kwargs`, escaped so that any password survives Feast's parsing)."""
        if ":" in self.host:
            raise ValueError(f"redis host {self.host!r}: Feast's Redis connection string cannot hold an IPv6 "
                             f"address; use a host name")
        kwargs = self.client_kwargs()
        host, port = kwargs.pop("host"), kwargs.pop("port")
        # redis-py's own defaults are left out: the string stays short and readable.
        if kwargs.get("ssl_cert_reqs") == "required":
            del kwargs["ssl_cert_reqs"]
        if kwargs.get("ssl_check_hostname") is True:
            del kwargs["ssl_check_hostname"]
        return ",".join([f"{host}:{port}", *(f"{k}={_connection_string_value(v)}" for k, v in kwargs.items())])


class PathSettings(BaseModel):
    state_dir: Path = Path(".tessera")
    data_dir: Path = Path("data")
    jar_dir: Path = Path(".cache/jars")


class FlinkSettings(BaseModel):
    """The streaming job: a local mini-cluster by default; a remote cluster by `execution.target`
    ("remote") with `rest.address`/`rest.port` in `conf`."""

    python: Path = Path(".venv-flink/bin/python")   # the Flink job's own environment
    # Where the windowed aggregation runs: "jvm" (the Java operators of jars/aggregator, driven by the
    # plan compiled from the same definitions; about a ninth of the CPU per event) or "python"
    # (PyFlink Python operators, with the validation too). Checkpoints are kept per engine: switching
    # engines starts with empty window state, replaying the topic.
    engine: Literal["python", "jvm"] = "jvm"
    parallelism: int = 1
    # A checkpoint of the heap state backend is a full copy of every key's windows: its cost is the
    # state's size per interval, not the events'. At 5 s it was a third of the job's CPU in the soak
    # (100,000 keys). A longer interval costs only recovery time (the job replays from its last
    # checkpoint; rows are written only if newer); freshness does not wait for checkpoints.
    checkpoint_interval_ms: int = Field(default=30_000, ge=1_000)
    # The JVM engine writes each key's newest row once per this interval instead of a row per event
    # (0: a row per event, as the Python engine). At most this much is added to freshness.
    coalesce_ms: int = Field(default=100, ge=0)
    # The local mini-cluster's JVM heap, fixed (-Xms = -Xmx, pre-touched) so that its memory is what
    # it is from the start instead of growing toward a quarter of the machine's RAM. Empty: the JVM's
    # default. A remote cluster's memory is the cluster's own configuration.
    local_heap: str = Field(default="1g", pattern=r"^(\d+[kmgKMG])?$")
    # The local mini-cluster JVM's garbage collector: "parallel" (the default: the job's state is
    # long-lived and updated on every event, and G1's write barriers and concurrent refinement cost
    # about a quarter of the job's CPU per event; its young pauses, with survivors promoted at once
    # (streaming/local_jvm.py), are a tenth to a fifth of a second against a freshness budget of seconds),
    # "g1", "shenandoah" or "z" (concurrent: no pause of the job's length, for more CPU; see README's
    # soak figures), or "" for the JVM's default. Flags in $JVM_ARGS come after these, so they win.
    local_gc: Literal["parallel", "g1", "shenandoah", "z", ""] = "parallel"
    # The local job's CPU priority (Unix nice, -20 to 19). On a machine it shares with the feature API,
    # a few points let the API's requests run first while the job takes the CPU left over (it must
    # still keep up: watch its lag). A negative nice (root or CAP_SYS_NICE) puts it ahead of the other
    # ordinary processes instead: its collector's pauses, which stop the whole job, then get the CPU
    # first. A remote cluster's priorities are the cluster's own.
    nice: int = Field(default=0, ge=-20, le=19)
    # Extra Flink configuration passed through, e.g. {"execution.target": "remote", "rest.address": "jm"}.
    conf: dict[str, str] = {}


class SinkSettings(BaseModel):
    """The writer after the Flink job: batches rows into Feast's Redis online store and the offline store."""

    # "bulk": Feast's Redis layout written column-wise, with the newer-row check inside Redis
    # (batch/online_bulk_writer.py, byte-identical to Feast's rows); "feast": RedisOnlineStore.online_write_batch.
    online_writer: Literal["bulk", "feast"] = "bulk"
    batch_rows: int = 5_000
    batch_ms: int = 100
    # Keys per Redis script call of the bulk writer. Redis serves no one else while a call runs: under
    # load a 200-key call held it 2.7 ms at the median and up to 18 ms (its SLOWLOG), each a stall for
    # every feature API request; `tessera materialize`, which has no readers to spare, sends 200.
    keys_per_call: int = Field(default=50, ge=1, le=10_000)
    # The archiver writes a file when it holds this many events or archive_batch_ms has passed. The
    # events are held until then: a catch-up after the archiver was starved (archive_nice) filled a
    # batch of 200,000 and its memory stayed grown (RSS 240 to 420 MB run to run in bench/soak.py);
    # 50,000 is ten seconds at 5,000 events/s, the size of a batch that is not catching up.
    archive_batch_events: int = Field(default=50_000, ge=1)
    archive_batch_ms: int = 10_000
    # The writer's CPU priority (Unix nice, -20 to 19), as [flink] nice for the job.
    nice: int = Field(default=0, ge=-20, le=19)
    # The archiver's (streaming/archive.py, raw history and stream clock): a few points above `nice`
    # give the freshness path the CPU first; the archive catches up in the writer's idle time.
    archive_nice: int = Field(default=0, ge=-20, le=19)
    # The writer's and the archiver's Kafka consumer is replaced when its commits stay unacknowledged,
    # it holds no partition, or it reads nothing while its partitions hold more, this long while the
    # broker answers (streaming/committing_consumer.py:
    # librdkafka's group coordinator once stayed wedged after a broker restart). Above the group
    # session timeout (45 s), which a replacement may wait out before the wedged member is dropped.
    consumer_stuck_s: float = Field(default=60.0, gt=0)


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
    # A file of keys, one per line ('#' comments and blank lines skipped): any of them is accepted,
    # so keys can be rotated by adding the new one, moving clients, then removing the old one.
    api_key_file: Path | None = None
    # Largest request body accepted (413 beyond it): 1,000 ids and a feature list fit in a few KiB.
    max_body_bytes: int = 256 * 1024
    # Connect and read timeout towards Redis: a dead or hung Redis answers 503 in about this long.
    redis_timeout_ms: int = 50
    redis_max_connections: int = 256  # per worker
    # The workers' SCHED_FIFO priority (1-99; 0: ordinary). On a machine that also runs the stream,
    # a request at ordinary priority waits for the CPU at each wake-up (the worker, Redis, the
    # worker again): at 2,000 requests/s next to the Flink job that made p99 10 to 20 ms, against
    # 2 ms at real-time priority (bench/soak.py). Needs root or CAP_SYS_NICE.
    realtime_priority: int = Field(default=0, ge=0, le=99)
    max_batch_ids: int = 1000
    registry_poll_ms: int = 500
    graceful_shutdown_s: float = 10.0
    # Where the workers keep their Prometheus samples: memory-mapped files written on every request.
    # None: a tmpfs (/dev/shm) when there is one, else <state_dir>/serving. On a journaled disk a
    # write into a page that writeback has just cleaned waits for the journal, stalling a worker.
    metrics_dir: Path | None = None


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

    def redacted_json(self) -> str:
        """The settings as JSON for people (`tessera config`): SecretStr fields and secret-looking
        Kafka client options shown as stars."""
        data = json.loads(self.model_dump_json())
        for name in ("client_options", "java_client_options"):
            options = data["kafka"][name]
            data["kafka"][name] = {k: ("**********" if SECRET_OPTION.search(k) else v) for k, v in options.items()}
        return json.dumps(data, indent=2)

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
    settings.redis = settings.redis.with_paths_under(settings.root)
    return settings
