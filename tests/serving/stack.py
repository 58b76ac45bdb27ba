"""Building blocks of the feature API tests: settings for a private stack, the registry applied
by Feast, and rows written by Feast's own `write_to_online_store`."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from feast import FeatureService, FeatureStore

with warnings.catch_warnings():  # Starlette nudges towards httpx2; httpx is what the project ships
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: F401  (the tests take it from here, warning-free)

from tessera.config import Settings, load_settings
from tessera.definitions import Definitions
from tessera.feast_objects import compile_feast_objects, repo_config
from tessera.services.redis_server import RedisServer
from tests.stack import own_base_port

ROOT = Path(__file__).resolve().parents[2]
MISSING_USER = 999_999  # never written: every view "missing"


def free_port() -> int:
    return own_base_port(1)


def make_settings(base: Path, redis_port: int, project: str = "tessera", **serving: Any) -> Settings:
    return load_settings(
        ROOT / "tessera.toml",
        paths={"state_dir": str(base / "state"), "data_dir": str(base / "data"),
               "jar_dir": str(ROOT / ".cache" / "jars")},
        redis={"host": "127.0.0.1", "port": redis_port, "db": 0},
        feast={"repo": str(ROOT / "feature_repo"), "project": project},
        serving={"api_key": None, "registry_poll_ms": 100, **serving},
    )


def subprocess_env(settings: Settings) -> dict[str, str]:
    """The same settings for a `tessera serve` child, as TESSERA_* overrides."""
    return {
        "TESSERA_CONFIG": str(ROOT / "tessera.toml"),
        "TESSERA_PATHS__STATE_DIR": str(settings.state_dir),
        "TESSERA_PATHS__DATA_DIR": str(settings.data_dir),
        "TESSERA_REDIS__PORT": str(settings.redis.port),
        "TESSERA_SERVING__REGISTRY_POLL_MS": str(settings.serving.registry_poll_ms),
    }


def apply_registry(settings: Settings, definitions: Definitions, extra: list[Any] = ()) -> FeatureStore:
    """What `tessera apply` does, into this settings' registry."""
    objects = compile_feast_objects(definitions, settings)
    for view in definitions.views:
        (settings.offline_store_dir / view).mkdir(parents=True, exist_ok=True)
    settings.registry_path.parent.mkdir(parents=True, exist_ok=True)
    store = FeatureStore(config=repo_config(settings))
    store.apply([*objects.entities.values(), *objects.feature_views.values(), *objects.feature_services.values(),
                 *objects.push_sources.values(), *extra])
    return store


def _activity_row(user_id: int, as_of: datetime, ctr: float | None) -> dict[str, Any]:
    return {"user_id": user_id, "event_timestamp": as_of, "created": as_of,
            "impressions_5m": 3 * user_id, "impressions_1h": 10 * user_id, "impressions_24h": 100 * user_id,
            "clicks_5m": 0, "clicks_1h": user_id, "clicks_24h": 2 * user_id,
            "conversions_1h": 0, "conversions_24h": 1,
            "spend_1h": 0.25 * user_id, "spend_24h": 1.1 * user_id,
            "ctr_1h": ctr, "ctr_24h": 0.02 * user_id}


@dataclass
class Population:
    """Which rows were written, and when, for the assertions."""

    written_at: datetime
    users: list[int]
    profile_users: list[int]
    stale_users: list[int]
    campaigns: list[int]


def populate(store: FeatureStore, now: datetime | None = None) -> Population:
    """Rows through Feast's own writer: ints, floats, a null and a NaN ctr, an hour-old (stale) row,
    a daily view for some users only, and campaigns."""
    now = now or datetime.now(timezone.utc)
    rows = [_activity_row(1, now, 0.1), _activity_row(2, now, None), _activity_row(3, now, float("nan")),
            _activity_row(4, now - timedelta(hours=1), 0.4), _activity_row(5, now, 0.5)]
    store.write_to_online_store("user_ad_activity", pd.DataFrame(rows))
    yesterday_end = (now - timedelta(days=1)).replace(hour=23, minute=59, second=59, microsecond=0)
    profile = [{"user_id": u, "event_timestamp": yesterday_end, "created": yesterday_end, "impressions_30d": 300 * u,
                "clicks_30d": 7 * u, "spend_30d": 12.5 * u, "active_days_30d": min(30, u)} for u in (1, 5)]
    store.write_to_online_store("user_profile_daily", pd.DataFrame(profile))
    campaigns = [{"campaign_id": c, "event_timestamp": now, "created": now, "impressions_1h": 1000 + c,
                  "clicks_1h": c, "conversions_24h": 0, "spend_1h": 3.75, "spend_24h": 90.0 + c} for c in (10, 11)]
    store.write_to_online_store("campaign_delivery", pd.DataFrame(campaigns))
    return Population(now, [1, 2, 3, 4, 5], [1, 5], [4], [10, 11])


@dataclass
class ServingStack:
    settings: Settings
    definitions: Definitions
    store: FeatureStore
    redis: RedisServer
    population: Population

    def repopulate(self) -> None:
        self.population = populate(self.store)


def probe_service(stack: ServingStack, settings: Settings) -> FeatureService:
    """A feature service the registry does not have yet: applying it is a change to pick up."""
    view = compile_feast_objects(stack.definitions, settings).feature_views["user_ad_activity"]
    return FeatureService(name="reload_probe", features=[view[["clicks_1h", "ctr_1h"]]])


SERVE_STARTUP_S = 120  # fresh interpreters importing Feast on a busy 2-core machine


def start_serve(env: dict[str, str], port: int, workers: int, log: Path,
                startup_s: float = SERVE_STARTUP_S) -> subprocess.Popen[bytes]:
    """`tessera serve` as a user runs it, in a process group of its own, once /health answers 200."""
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "tessera.cli", "serve", "--port", str(port),
                                    "--workers", str(workers)], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + startup_s
    while True:
        if process.poll() is not None:
            raise AssertionError(f"tessera serve exited:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if time.monotonic() >= deadline:
            stop_serve(process)
            raise AssertionError(f"not healthy after {startup_s} s:\n{log.read_text()}")
        time.sleep(0.25)


def stop_serve(process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL to the whole group if it is not done in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
