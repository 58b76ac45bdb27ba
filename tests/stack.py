"""Real services for integration tests, started by tessera's own `tessera services` command.

Each test session runs its own Kafka and Redis on ports of its own and a state directory under
pytest's tmp, so a developer's running stack is neither reused nor disturbed.
"""
from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tessera.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
TESSERA = [sys.executable, "-m", "tessera.cli"]


_GIVEN: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def own_base_port(count: int = 3) -> int:
    """A base port with `count` free ports from it, below the kernel's ephemeral range.

    A stack of a test's own must not pick ports any client connection can take as its local end:
    at 39092 the broker once failed to bind because an outgoing connection held the port."""
    session = int(os.environ.get("TESSERA_TEST_PORT_BASE", "29092"))
    for _ in range(200):
        base = random.randint(20_000, _ephemeral_low() - count)
        ports = set(range(base, base + count))
        # A port handed out a moment ago may not be bound yet: never hand it out twice.
        if ports & _GIVEN or ports & set(range(session, session + 8)):
            continue
        try:
            for port in ports:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        _GIVEN.update(ports)
        return base
    raise RuntimeError("no run of free ports found below the ephemeral range")


def stack_env(state: Path, base_port: int) -> dict[str, str]:
    return {
        "TESSERA_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{base_port}",
        "TESSERA_KAFKA__CONTROLLER_PORT": str(base_port + 1),
        # One partition: arrival order is generation order, so which events are late is exact.
        # (The clock across partitions is unit-tested in tests/streaming/test_stream_clock.py.)
        "TESSERA_KAFKA__PARTITIONS": "1",
        "TESSERA_REDIS__PORT": str(base_port + 2),
        "TESSERA_PATHS__STATE_DIR": str(state / "state"),
        "TESSERA_PATHS__DATA_DIR": str(state / "data"),
        "TESSERA_PATHS__JAR_DIR": str(ROOT / ".cache" / "jars"),
    }


def run_tessera(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TESSERA, *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout)


def settings_for(env: dict[str, str], monkeypatch: pytest.MonkeyPatch | None = None) -> Settings:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        return load_settings(ROOT / "tessera.toml")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment overrides of a running Kafka + Redis for this test session."""
    # TESSERA_TEST_PORT_BASE lets two test sessions on one machine run side by side.
    env = stack_env(tmp_path_factory.mktemp("stack"), base_port=int(os.environ.get("TESSERA_TEST_PORT_BASE", "29092")))
    started = run_tessera(env, "services", "up")
    assert started.returncode == 0, f"tessera services up failed:\n{started.stdout}\n{started.stderr}"
    yield env
    stopped = run_tessera(env, "services", "down")
    assert stopped.returncode == 0, stopped.stderr


@pytest.fixture(scope="session")
def stack_settings(stack: dict[str, str]) -> Settings:
    return settings_for(stack)
