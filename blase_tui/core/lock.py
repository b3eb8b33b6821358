"""One copy of a step per project at a time: an OS file lock (released by the kernel if the holder dies) and
a small note of who holds it, for the message the second copy prints."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from blase_tui.errors import StepLocked


class _FlockLock:
    """``flock`` on the lock file, as filelock's UnixFileLock takes it (so the two exclude each other), without
    filelock's ~10 ms import on every step's start. POSIX only."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def is_locked(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        import fcntl

        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class StepLock:
    def __init__(self, locks_dir: Path, step: str) -> None:
        locks_dir.mkdir(parents=True, exist_ok=True)
        self.step = step
        self.path = locks_dir / f"{step}.lock"
        self.holder_path = locks_dir / f"{step}.holder.json"
        if os.name == "posix":
            self._lock: Any = _FlockLock(str(self.path))
        else:
            from filelock import FileLock

            self._lock = FileLock(str(self.path), timeout=0)

    def acquire(self) -> StepLock:
        if isinstance(self._lock, _FlockLock):
            taken = self._lock.acquire()
        else:
            from filelock import Timeout

            try:
                self._lock.acquire(timeout=0)
                taken = True
            except Timeout:
                taken = False
        if not taken:
            raise StepLocked(self._held_message())
        tmp = self.holder_path.with_name(f".{self.holder_path.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"pid": os.getpid(), "started": time.time()}))
        os.replace(tmp, self.holder_path)
        return self

    def _held_message(self) -> str:
        try:
            holder = json.loads(self.holder_path.read_text())
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["started"]))
            who = f"pid {holder['pid']}, started {when}"
        except (OSError, ValueError, KeyError):
            who = "another process"
        return f"step `{self.step}` is already running ({who}); wait for it to finish or stop that process."

    def release(self) -> None:
        if self._lock.is_locked:
            try:
                self.holder_path.unlink()
            except OSError:
                pass
            self._lock.release()

    def __enter__(self) -> StepLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
