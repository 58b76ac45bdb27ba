"""`tessera serve` as a user runs it: two worker processes behind one port, metrics summed across
them, the registry reloaded under load, a clean exit on SIGTERM."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from typing import Iterator

import httpx
import pytest

from tests.serving.stack import (ServingStack, apply_registry, free_port, make_settings, probe_service,
                                 start_serve, subprocess_env)
from tessera.config import Settings

@pytest.fixture(scope="module")
def served(serving_stack: ServingStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings, subprocess.Popen]]:
    settings = make_settings(tmp_path_factory.mktemp("serve"), serving_stack.settings.redis.port)
    settings.registry_path.parent.mkdir(parents=True)
    shutil.copy(serving_stack.settings.registry_path, settings.registry_path)
    port = free_port()
    log = (settings.state_dir / "serve.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **subprocess_env(settings), "TESSERA_API_KEY": "serve-test-key"}
    process = start_serve(env, port, 2, log)
    base = f"http://127.0.0.1:{port}"
    try:
        yield base, settings, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # only if the shutdown test did not get to stop it
            process.wait()


KEY = {"X-API-Key": "serve-test-key"}


def test_serves_features_from_both_workers(served) -> None:
    base, settings, _ = served
    assert httpx.get(f"{base}/features/user/1").status_code == 401
    statuses = []
    for _ in range(40):  # a new connection each time, so both workers take some
        statuses.append(httpx.get(f"{base}/features/user/1", headers=KEY).status_code)
    assert statuses == [200] * 40
    batch = httpx.post(f"{base}/features/user", json={"ids": [1, 2, 999]}, headers=KEY)
    assert batch.status_code == 200 and len(batch.json()["results"]) == 3
    metrics = httpx.get(f"{base}/metrics").text
    line = next(l for l in metrics.splitlines()
                if l.startswith('tessera_api_requests_total{method="GET",route="/features/{entity}/{entity_id}",status="200"}'))
    assert float(line.split()[-1]) == 40.0  # summed over the workers' files
    files = list((settings.state_dir / "serving").glob("metrics-*/*.db"))
    assert len({f.stem.rsplit("_", 1)[-1] for f in files}) >= 2, "one metrics file set per worker"


def test_reloads_registry_in_every_worker(served, serving_stack: ServingStack) -> None:
    base, settings, _ = served
    url = f"{base}/features/user/1?feature_service=reload_probe"
    assert httpx.get(url, headers=KEY).status_code == 400
    apply_registry(settings, serving_stack.definitions, extra=[probe_service(serving_stack, settings)])
    deadline, streak = time.monotonic() + 15, 0
    while streak < 20 and time.monotonic() < deadline:
        streak = streak + 1 if httpx.get(url, headers=KEY).status_code == 200 else 0
    assert streak >= 20, "both workers should serve the new feature service"


def test_sigterm_shuts_down_cleanly(served) -> None:
    base, settings, process = served
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    log = (settings.state_dir / "serve.log").read_text()
    assert log.count("Application shutdown complete") == 2, log
    assert not list((settings.state_dir / "serving").glob("metrics-*")), "the run's metrics files are removed"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/health", timeout=1)
