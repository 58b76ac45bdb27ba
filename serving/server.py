"""`tessera serve`: the feature API under uvicorn with one worker process per core.

Each worker slot has a listening socket of its own, all bound to the same port with SO_REUSEPORT,
so the kernel spreads connections evenly over the workers (with one shared socket, whichever worker
wakes first takes the connection, and a client's keep-alive connections could land 3 to 1). Each
worker builds its own app (`create_app()` from tessera.toml + TESSERA_*), its own Redis pool and its
own registry watcher. SIGTERM or Ctrl-C stops accepting,
lets requests in flight finish (up to `graceful_shutdown_s`), then closes Redis; SIGHUP replaces
the workers one by one without dropping the socket.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import os
import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.config import Settings

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("tessera.serving")
# Not imported from serving.metrics: prometheus_client must not be imported before this is set.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _log_config(level: str) -> dict:
    """uvicorn's own logging, with tessera's loggers (registry reloads, warnings) printed alongside."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["tessera"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def _on_tmpfs(path: Path) -> bool:
    """Whether `path` is a tmpfs mount point (from /proc/mounts; False where there is none)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return False
    return any(len(f) > 2 and f[1] == str(path) and f[2] == "tmpfs" for f in (line.split() for line in mounts))


def metrics_base(settings: Settings) -> Path:
    """The folder for the workers' metrics files: [serving] metrics_dir, else a tmpfs folder of
    this state directory's own (two tessera checkouts on one machine never share one), else
    <state_dir>/serving."""
    if settings.serving.metrics_dir is not None:
        return settings.serving.metrics_dir
    shm = Path("/dev/shm")
    if _on_tmpfs(shm) and os.access(shm, os.W_OK):
        digest = hashlib.sha1(str(settings.state_dir.resolve()).encode()).hexdigest()[:10]
        return shm / f"tessera-{os.getuid()}-{digest}"
    return settings.state_dir / "serving"


def _fresh_metrics_dir(settings: Settings, port: int) -> Path:
    """Per-run: files left by an earlier run's workers would otherwise be summed into this one's."""
    path = metrics_base(settings) / f"metrics-{port}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def reuse_port_sockets(config: "uvicorn.Config", count: int) -> list[socket.socket]:
    """`count` listening sockets on the config's host and port, each with SO_REUSEPORT."""
    family = socket.AF_INET6 if config.host and ":" in config.host else socket.AF_INET
    sockets = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((config.host, config.port))
        sock.listen(config.backlog)
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


def balanced_supervisor(config: "uvicorn.Config") -> Any:
    """uvicorn's Multiprocess supervisor (health checks, SIGHUP replacing workers one by one,
    SIGTERM), with the worker of slot i always listening on socket i. uvicorn hands every worker
    the same socket list; these three methods are its own, with the slot's socket instead."""
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors.multiprocess import Multiprocess, Process, logger

    class Balanced(Multiprocess):
        def _start(self, slot: int) -> Process:
            process = Process(self.config, [self.sockets[slot]])
            process.start()
            return process

        def init_processes(self) -> None:
            self.processes.extend(self._start(slot) for slot in range(self.processes_num))

        def restart_all(self) -> None:
            for idx, old_process in enumerate(self.processes):
                if self.should_exit.is_set():
                    return
                new_process = self._start(idx)
                if not new_process.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                    new_process.kill()
                    new_process.join()
                    if not self.should_exit.is_set():
                        logger.error(f"New child process [{new_process.pid}] was not ready in time; "
                                     f"keeping worker [{old_process.pid}] and aborting the restart.")
                    return
                old_process.terminate()
                old_process.join()
                self.processes[idx] = new_process

        def keep_subprocess_alive(self) -> None:
            if self.should_exit.is_set():
                return
            for idx, process in enumerate(self.processes):
                if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                    continue
                process.kill()
                process.join()
                if process.exitcode == STARTUP_FAILURE:
                    logger.error(f"Child process [{process.pid}] failed to start, stopping the parent process.")
                    self.should_exit.set()
                    return
                if self.should_exit.is_set():
                    return
                logger.info(f"Child process [{process.pid}] died")
                self.processes[idx] = self._start(idx)

    return Balanced(config, sockets=reuse_port_sockets(config, config.workers))


def serve(settings: Settings, config_file: Path | None = None, host: str | None = None, port: int | None = None,
          workers: int | None = None, log_level: str = "info", access_log: bool = False) -> int:
    import sys

    import uvicorn

    from serving.auth import ApiKeyError, api_keys_of
    from tessera.services.cpu_priority import PriorityError, take_realtime

    try:
        api_keys_of(settings)  # a missing or empty key file: one clear line now, not a traceback per worker
        if settings.serving.realtime_priority:
            # Taken here, before any worker or thread starts, so that all of them inherit it.
            take_realtime(settings.serving.realtime_priority, "[serving] realtime_priority")
    except (ApiKeyError, PriorityError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    host = host or settings.serving.host
    port = port or settings.serving.port
    workers = workers or settings.serving.workers or default_workers()
    if not settings.registry_path.is_file():
        log.warning("no Feast registry at %s yet: run `tessera apply`; the API answers 503 until it appears",
                    settings.registry_path)
    # The workers are fresh interpreters: they find the same config file and metrics directory
    # through the environment they inherit.
    if config_file is not None:
        os.environ["TESSERA_CONFIG"] = str(config_file.resolve())
    metrics_dir = _fresh_metrics_dir(settings, port)
    os.environ[MULTIPROC_ENV] = str(metrics_dir)
    config = uvicorn.Config(
        "serving.app:create_app", factory=True, host=host, port=port, workers=workers,
        loop="uvloop", http="httptools", lifespan="on", access_log=access_log,
        # Nothing here reads the client address or scheme; spare every request the rewrite layer.
        proxy_headers=False,
        log_config=_log_config(log_level), log_level=log_level,
        timeout_graceful_shutdown=settings.serving.graceful_shutdown_s,
        # A model server keeps connections open; keep them a little longer than most clients do.
        timeout_keep_alive=30,
    )
    try:
        if workers > 1:
            balanced_supervisor(config).run()
        else:
            server = uvicorn.Server(config)
            server.run()
            if not server.started:
                return 3  # uvicorn's startup failure: the log above says why
    except KeyboardInterrupt:
        pass
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
