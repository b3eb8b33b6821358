"""Process identity (pid plus start time, so a reused pid is not mistaken for the original owner)."""

from __future__ import annotations

import os
import sys

_OWN_START: list[float | None] = []


def _own_start_from_proc() -> float | None:
    """This process's start time as psutil computes it on Linux (its start in clock ticks after boot, plus the
    boot time), read from /proc without importing psutil (~8 ms of every step's start)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        ticks = int(stat[stat.rindex(b")") + 2:].split()[19])  # field 22, counted after "pid (comm)"
        with open("/proc/stat", "rb") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith(b"btime"))
        return ticks / os.sysconf("SC_CLK_TCK") + boot
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def process_started(pid: int | None = None) -> float | None:
    if pid is None and _OWN_START:
        return _OWN_START[0]
    if pid is None and sys.platform.startswith("linux"):
        started = _own_start_from_proc()
        if started is not None:
            _OWN_START.append(started)
            return started
    import psutil

    try:
        started = psutil.Process(pid or os.getpid()).create_time()
    except (psutil.Error, OSError):
        return None
    if pid is None:
        _OWN_START.append(started)
    return started


def is_alive(pid: int | None, started: float | None, host: str | None) -> bool:
    """Whether the process that owned something is still running. Owners on another host count as alive:
    we cannot tell, and a wrong "dead" would interrupt someone's run."""
    if pid is None:
        return False
    if host and host != hostname():
        return True
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - started) < 1.0
    except (psutil.Error, OSError):
        return False


def hostname() -> str:
    """This machine's name (``os.uname`` where there is one: the same name, without importing socket)."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()
