"""Real Redis (Debian's redis-server) on loopback: the online store.

It snapshots to its data directory when stopped (and hourly), so `tessera services down` and `up`
keep the online values; a crash loses what changed since the last snapshot, which a replay of the
stream or `tessera materialize` restores."""
from __future__ import annotations

import os
import shutil
import time

import redis

from tessera.config import Settings
from tessera.services.cpu_priority import PriorityError
from tessera.services.process import ManagedProcess, ServiceError, port_in_use, tail


# An RDB snapshot on shutdown and hourly; no AOF, which would tax every write of the hot path.
SNAPSHOTS = ("--save", "3600 1", "--appendonly", "no")


def redis_client(settings: Settings, timeout_s: float = 1.0) -> redis.Redis:
    return redis.Redis(**settings.redis.client_kwargs(), socket_timeout=timeout_s,
                       socket_connect_timeout=timeout_s)


def config_quote(value: str) -> str:
    """A value for redis.conf: double-quoted, with every byte outside printable ASCII (and the
    quote and backslash) as \\xHH, which Redis's config parser reads back exactly."""
    out = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        out.append(char if 0x20 <= byte < 0x7f and char not in '"\\' else f"\\x{byte:02x}")
    return '"' + "".join(out) + '"'


class RedisServer:
    name = "redis"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.state_dir / "redis"
        self.process = ManagedProcess("redis", settings.state_dir / "run",
                                      settings.state_dir / "logs" / "redis.log")

    @property
    def address(self) -> str:
        return f"{self.settings.redis.host}:{self.settings.redis.port}"

    def ping(self) -> bool:
        try:
            return bool(redis_client(self.settings, timeout_s=0.5).ping())
        except redis.RedisError:
            return False

    def start(self) -> str:
        cfg = self.settings.redis
        if not cfg.is_local:
            if not self.ping():
                raise ServiceError(f"remote Redis at {self.address} does not answer PING")
            return f"remote, reachable at {self.address}"
        if self.process.pid() is not None and self.ping():
            return f"already running at {self.address} (pid {self.process.pid()})"
        if port_in_use(cfg.host, cfg.port):
            raise ServiceError(f"port {cfg.port} is taken by something tessera did not start; stop it or set "
                               f"TESSERA_REDIS__PORT to a free port")
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError("redis-server is not installed: run scripts/setup.sh (apt-get install redis-server)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [binary, "--bind", cfg.host, "--port", str(cfg.port), "--dir", str(self.data_dir),
                   *SNAPSHOTS, "--daemonize", "no", "--logfile", ""]
        env = {}
        if cfg.password is not None:
            # Given through the environment-fed config file so it never shows in `ps`.
            conf = self.data_dir / "auth.conf"
            conf.unlink(missing_ok=True)
            # Created owner-only, never readable by others even for a moment.
            with os.fdopen(os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
                out.write(f"requirepass {config_quote(cfg.password.get_secret_value())}\n")
            command.insert(1, str(conf))
        try:
            pid = self.process.start(command, env=env, realtime=cfg.realtime_priority,
                                     realtime_setting="[redis] realtime_priority")
        except PriorityError as err:
            raise ServiceError(str(err)) from err
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.ping():
                return f"started at {self.address} (pid {pid})"
            if self.process.pid() is None:
                break
            time.sleep(0.05)
        self.process.stop(timeout_s=2)
        raise ServiceError(f"redis did not answer PING within 15 s; log {self.process.log_file}:\n"
                           f"{tail(self.process.log_file)}")

    def stop(self) -> str:
        return "stopped" if self.process.stop(timeout_s=10) else "not running (nothing of ours to stop)"

    def status(self) -> tuple[str, str]:
        pid = self.process.pid()
        up = self.ping()
        where = "remote" if not self.settings.redis.is_local else (f"pid {pid}" if pid else "-")
        return ("up" if up else "down"), where
