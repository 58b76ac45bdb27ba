"""`tessera services up` twice is harmless; `down` leaves no process of ours behind."""
from __future__ import annotations

import os
from pathlib import Path

from tests.stack import own_base_port, run_tessera, settings_for, stack_env
from tessera.services.kafka_broker import KafkaBroker
from tessera.services.process import port_open


def _our_pids(state_dir: Path) -> list[int]:
    """Live processes whose command line mentions this stack's state directory or ports."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(state_dir) in cmdline:
            pids.append(int(proc.name))
    return pids


def test_up_twice_then_down(tmp_path: Path) -> None:
    base = own_base_port()
    env = stack_env(tmp_path, base_port=base) | {"TESSERA_KAFKA__NICE": "3"}
    try:
        _up_twice_then_down(env, ports=(base, base + 1, base + 2))
    finally:  # a failure part-way must not leave a service on these ports for the next run
        run_tessera(env, "services", "down")


def _up_twice_then_down(env: dict[str, str], ports: tuple[int, ...]) -> None:
    settings = settings_for(env)
    first = run_tessera(env, "services", "up")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "started" in first.stdout
    pids = sorted(int(f.read_text().split()[0]) for f in (settings.state_dir / "run").glob("*.pid"))
    assert len(pids) == 2
    broker = KafkaBroker(settings).process.pid()
    assert broker is not None and os.getpriority(os.PRIO_PROCESS, broker) == 3, "[kafka] nice reaches the broker"
    autogroup = Path(f"/proc/{broker}/autogroup")
    if autogroup.exists():  # under autogroup scheduling its session's group is what ranks it
        assert autogroup.read_text().split()[-1] == "3"

    second = run_tessera(env, "services", "up")
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("already running") == 2
    assert sorted(int(f.read_text().split()[0]) for f in (settings.state_dir / "run").glob("*.pid")) == pids

    status = run_tessera(env, "services", "status")
    assert status.returncode == 0 and status.stdout.count(" up ") == 2

    down = run_tessera(env, "services", "down")
    assert down.returncode == 0, down.stderr
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] == "Z", f"pid {pid} still alive"
    assert _our_pids(settings.state_dir) == []
    for port in ports:
        assert not port_open("127.0.0.1", port)
    assert run_tessera(env, "services", "status").returncode == 3
    # Down again stops nothing and still succeeds.
    assert "nothing of ours" in run_tessera(env, "services", "down").stdout


def test_up_refuses_a_port_taken_by_someone_else(tmp_path: Path) -> None:
    import socket

    base = own_base_port()
    env = stack_env(tmp_path, base_port=base)
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", base + 2))  # the Redis port of this stack
    squatter.listen()
    try:
        done = run_tessera(env, "services", "up")
        assert done.returncode == 1
        assert f"port {base + 2} is taken" in done.stderr
    finally:
        squatter.close()
        run_tessera(env, "services", "down")


def test_up_refuses_a_port_held_by_a_connections_local_end(tmp_path: Path) -> None:
    """No connect test sees this holder; the broker would fail to bind only after its JVM started."""
    import socket

    base = own_base_port()
    env = stack_env(tmp_path, base_port=base)
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.socket()
    client.bind(("127.0.0.1", base))  # the broker's port, as a kernel-chosen ephemeral port would be
    client.connect(listener.getsockname())
    try:
        assert not port_open("127.0.0.1", base)
        done = run_tessera(env, "services", "up")
        assert done.returncode == 1
        assert f"port {base} is taken" in done.stderr
    finally:
        client.close()
        listener.close()
        run_tessera(env, "services", "down")
