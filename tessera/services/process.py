"""A background process we started: pid file, log file, and a check that the pid is still ours."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tessera.services.cpu_priority import check_nice, check_realtime, set_priority


class ServiceError(RuntimeError):
    """A service could not be started or reached; the message says what to do."""


def port_open(host: str, port: int, timeout_s: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def port_in_use(host: str, port: int) -> bool:
    """A listener answers on it, or it cannot be bound: an outgoing connection's local end holds it.

    The second case is easy to miss: a port in the kernel's ephemeral range can be held by any
    client's connection, which no connect test sees, and a server then fails to bind it."""
    if port_open(host, port):
        return True
    with socket.socket() as probe:
        # Servers bind with SO_REUSEADDR too, so a connection in TIME_WAIT does not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def first_error(path: Path) -> str | None:
    """The log's first ERROR line: a JVM's log buries the cause under its shutdown noise."""
    if not path.exists():
        return None
    with path.open(errors="replace") as log:
        return next((line.strip() for line in log if " ERROR " in line), None)


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state letter, start time in clock ticks since boot) of a live pid, else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return fields[0], fields[19]


@dataclass
class ManagedProcess:
    """The pid file holds the pid and its start time, so a recycled pid is never taken for ours."""

    name: str
    run_dir: Path
    log_file: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    def pid(self) -> int | None:
        """The pid if the process is alive and ours; a stale pid file is removed."""
        try:
            pid_text, started = self.pid_file.read_text().split()
            pid = int(pid_text)
        except (FileNotFoundError, ValueError):
            return None
        stat = _proc_stat(pid)
        if stat is not None and stat[1] == started and stat[0] not in ("Z", "X"):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def start(self, command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
              nice: int = 0, realtime: int = 0, realtime_setting: str = "realtime_priority",
              nice_setting: str = "nice") -> int:
        """`nice` > 0 lowers the process's CPU priority, < 0 raises it (set before exec, so every
        thread it starts has it; a PriorityError naming `nice_setting` if the system refuses).
        `realtime` > 0 makes its first thread SCHED_FIFO at that priority, and the threads and
        processes it starts ordinary (a PriorityError naming `realtime_setting` if the system refuses)."""
        if realtime:
            check_realtime(realtime, realtime_setting)
        check_nice(nice, nice_setting)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env={**os.environ, **(env or {})}, cwd=cwd,
                preexec_fn=(lambda: set_priority(nice, realtime)) if nice or realtime else None,
            )
        stat = _proc_stat(proc.pid)
        self.pid_file.write_text(f"{proc.pid} {stat[1] if stat else 0}")
        return proc.pid

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM the process group, then SIGKILL after the timeout. True if something was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._alive(pid):
            time.sleep(0.1)
        if self._alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            while self._alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        except ChildProcessError:
            pass
        stat = _proc_stat(pid)
        return stat is not None and stat[0] not in ("Z", "X")
