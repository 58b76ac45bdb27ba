"""CPU priority of the processes we start: a nice for the stream, real-time for the request path.

On one machine that both serves features and computes them, the request path (the feature API,
Redis) must get a CPU the moment a request arrives. An ordinary priority does not give that under
Linux's fair scheduler: a waking task waits out the running task's slice, a few milliseconds per
wake-up, and a request wakes the API and Redis several times. SCHED_FIFO preempts ordinary tasks at
once; the stream takes the CPU time left, which is most of it, since the request path sleeps most of
the time. Since Linux 6.12 a deadline server still gives ordinary tasks a share of each second should
a real-time one spin.
"""
from __future__ import annotations

import os
import threading
from typing import Callable

MAX_REALTIME = 99


class PriorityError(RuntimeError):
    """A real-time priority was asked for and the system refused it; the message says what to do."""


def session_nice(nice: int) -> None:
    """This process's nice, and its session's: run in a child after setsid, before exec. A positive
    nice lowers it; a negative one raises it (root or CAP_SYS_NICE: check_nice asks first).

    With Linux's autogroup scheduling (the default on desktops and many servers), each session is
    one group and CPU is shared between groups first, so a process's own nice only ranks it within
    its session. Every service here starts its own session: its group's nice is what ranks it
    against the others."""
    os.nice(nice)
    try:
        with open("/proc/self/autogroup", "w") as group:
            group.write(str(nice))
    except OSError:
        pass  # no autogroups (another OS, or turned off): the process's nice is the one that counts


def _failure_on_a_thread(attempt: Callable[[], None], name: str) -> Exception | None:
    """What `attempt` raised, run on a thread of its own that then ends: Linux keeps a scheduling
    policy and a nice per thread, so trying one there leaves the caller as it was."""
    failure: list[Exception] = []

    def run() -> None:
        try:
            attempt()
        except Exception as err:  # handed to the caller, who knows what it means
            failure.append(err)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    thread.join()
    return failure[0] if failure else None


def check_nice(nice: int, setting: str) -> None:
    """A PriorityError naming `setting` if this process may not take a negative `nice`, without
    taking it. A child's pre-exec hook cannot say why it failed, so the parent asks first."""
    if nice >= 0:
        return
    failure = _failure_on_a_thread(lambda: os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice),
                                   "nice-check")
    if isinstance(failure, OSError):
        raise PriorityError(
            f"{setting} = {nice}: the system refused a negative nice ({failure.strerror}); it needs root, "
            "CAP_SYS_NICE, or an RLIMIT_NICE that allows it (`ulimit -e`, or LimitNICE= in a systemd "
            "unit); set it to 0 or more") from failure
    if failure is not None:
        raise failure


def take_realtime(priority: int, setting: str, inherited: bool = True) -> None:
    """SCHED_FIFO at `priority` (1-99) for the calling thread; `setting` names the config key that
    asked for it, for the error. With `inherited`, every process and thread it starts from now on
    has it too; without, they start at ordinary priority (SCHED_RESET_ON_FORK): Redis's snapshot
    child must not hold a CPU against Redis itself, which at equal FIFO priority it would until it
    blocked."""
    if not 1 <= priority <= MAX_REALTIME:
        raise PriorityError(f"{setting} = {priority}: a real-time priority is 1 to {MAX_REALTIME} (0 turns it off)")
    if not hasattr(os, "sched_setscheduler"):
        raise PriorityError(f"{setting} = {priority}: this system has no SCHED_FIFO (Linux only); set it to 0")
    try:
        policy = os.SCHED_FIFO if inherited else os.SCHED_FIFO | os.SCHED_RESET_ON_FORK
        os.sched_setscheduler(0, policy, os.sched_param(priority))
    except PermissionError as err:
        raise PriorityError(
            f"{setting} = {priority}: the system refused SCHED_FIFO ({err.strerror}); it needs root, "
            "CAP_SYS_NICE, or an RLIMIT_RTPRIO of at least that much (`ulimit -r`, or LimitRTPRIO= in "
            "a systemd unit); set it to 0 to run at ordinary priority") from err


def check_realtime(priority: int, setting: str) -> None:
    """Raises take_realtime's PriorityError if this process may not take `priority`, without taking
    it: the check runs on a thread of its own, which ends (Linux schedules each thread apart). A
    child's pre-exec hook cannot say why it failed, so the parent asks first."""
    failure = _failure_on_a_thread(lambda: take_realtime(priority, setting), "realtime-check")
    if failure is not None:
        raise failure


def realtime_allowed(priority: int = 1) -> bool:
    """Whether this process may take SCHED_FIFO at `priority` (without taking it)."""
    try:
        check_realtime(priority, "realtime_priority")
        return True
    except PriorityError:
        return False


def set_priority(nice: int = 0, realtime: int = 0) -> None:
    """A managed service's priority, in its child before exec: real-time when asked for (for its
    first thread only: what it starts runs at ordinary priority), else the nice (if any)."""
    if realtime:
        take_realtime(realtime, "realtime_priority", inherited=False)
    elif nice:
        session_nice(nice)
