"""`tessera serve`: the feature API under uvicorn with one worker process per core.

The workers share the listening socket; each builds its own app (`create_app()` from tessera.toml
+ TESSERA_*), its own Redis pool and its own registry watcher. SIGTERM or Ctrl-C stops accepting,
lets requests in flight finish (up to `graceful_shutdown_s`), then closes Redis; SIGHUP replaces
the workers one by one without dropping the socket.
"""
from __future__ import annotations

import copy
import logging
import os
import shutil
from pathlib import Path

from tessera.config import Settings

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


def _fresh_metrics_dir(settings: Settings, port: int) -> Path:
    """Per-run: files left by an earlier run's workers would otherwise be summed into this one's."""
    path = settings.state_dir / "serving" / f"metrics-{port}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def serve(settings: Settings, config_file: Path | None = None, host: str | None = None, port: int | None = None,
          workers: int | None = None, log_level: str = "info", access_log: bool = False) -> int:
    import sys

    import uvicorn

    from serving.auth import ApiKeyError, api_keys_of

    try:
        api_keys_of(settings)  # a missing or empty key file: one clear line now, not a traceback per worker
    except ApiKeyError as err:
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
    try:
        uvicorn.run(
            "serving.app:create_app", factory=True, host=host, port=port, workers=workers,
            loop="uvloop", http="httptools", lifespan="on", access_log=access_log,
            # Nothing here reads the client address or scheme; spare every request the rewrite layer.
            proxy_headers=False,
            log_config=_log_config(log_level), log_level=log_level,
            timeout_graceful_shutdown=settings.serving.graceful_shutdown_s,
            # A model server keeps connections open; keep them a little longer than most clients do.
            timeout_keep_alive=30,
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
