"""Process identity (pid plus start time, so a reused pid is not mistaken for the original owner)."""

from __future__ import annotations

import os
import socket

_OWN_START: list[float | None] = []


def process_started(pid: int | None = None) -> float | None:
    if pid is None and _OWN_START:
        return _OWN_START[0]
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
    if host and host != socket.gethostname():
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
    return socket.gethostname()
