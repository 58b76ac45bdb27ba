"""`tessera serve` as a user runs it: two worker processes behind one port, metrics summed across
them, the registry reloaded under load, a clean exit on SIGTERM."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.serving.stack import (ServingStack, apply_registry, free_port, make_settings, probe_service,
                                 start_serve, stop_serve, subprocess_env)
from serving.server import metrics_base
from tessera.config import Settings
from tessera.services.cpu_priority import realtime_allowed

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
    files = list(metrics_base(settings).glob("metrics-*/*.db"))
    assert len({f.stem.rsplit("_", 1)[-1] for f in files}) >= 2, "one metrics file set per worker"


def _listening_inodes(pid: int, port: int) -> set[str]:
    """The inodes of the sockets `pid` holds that listen on `port` (from /proc/net/tcp*)."""
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                listening.add(fields[9])
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in listening:
            held.add(target[8:-1])
    return held


def test_each_worker_listens_on_its_own_socket(served) -> None:
    """SO_REUSEPORT, one socket per worker: the kernel spreads connections by their addresses. With
    one shared socket the first worker to wake took them (3 to 1 in the soak, under load)."""
    import psutil

    base, _, process = served
    port = int(base.rsplit(":", 1)[1])
    workers = [p for p in psutil.Process(process.pid).children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]
    assert len(workers) == 2
    sockets = [_listening_inodes(w.pid, port) for w in workers]
    assert all(len(s) == 1 for s in sockets) and sockets[0] != sockets[1], sockets
    clients = [httpx.Client(base_url=base, headers=KEY) for _ in range(64)]
    try:
        for client in clients:  # each client keeps its one connection open
            assert client.get("/features/user/1").status_code == 200
        held = [sum(1 for c in w.net_connections("tcp") if c.laddr.port == port and c.status == "ESTABLISHED")
                for w in workers]
    finally:
        for client in clients:
            client.close()
    assert sum(held) == 64
    # Hashing 64 connections over 2 sockets: fewer than 16 on one is 4 standard deviations out.
    assert min(held) >= 16, f"connections per worker: {held}"


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
    assert not list(metrics_base(settings).glob("metrics-*")), "the run's metrics files are removed"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/health", timeout=1)


@pytest.mark.skipif(not realtime_allowed(), reason="this user may not take SCHED_FIFO")
def test_realtime_priority_reaches_every_worker_thread(serving_stack: ServingStack, tmp_path: Path) -> None:
    """`[serving] realtime_priority`: the workers (fresh interpreters, started after the parent took
    it) and every thread they run answer at SCHED_FIFO, and still serve."""
    settings = make_settings(tmp_path, serving_stack.settings.redis.port)
    settings.registry_path.parent.mkdir(parents=True)
    shutil.copy(serving_stack.settings.registry_path, settings.registry_path)
    port = free_port()
    env = {**os.environ, **subprocess_env(settings), "TESSERA_SERVING__REALTIME_PRIORITY": "20"}
    process = start_serve(env, port, 2, tmp_path / "serve.log")
    try:
        # /health answered from one worker; this connection may be queued on the other's socket
        # (SO_REUSEPORT) while it still starts: CI once waited out httpx's 5 s default there.
        assert httpx.get(f"http://127.0.0.1:{port}/features/user/1", timeout=30).status_code == 200
        workers = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        assert len(workers) >= 2  # the two workers (and multiprocessing's resource tracker)
        for pid in [process.pid, *map(int, workers)]:
            for task in Path(f"/proc/{pid}/task").iterdir():
                stat = (task / "stat").read_text().rsplit(") ", 1)[1].split()
                assert (int(stat[38]), int(stat[37])) == (os.SCHED_FIFO, 20), f"thread {task.name} of {pid}"
    finally:
        stop_serve(process)
