"""One copy of a step per project at a time: an OS file lock (released by the kernel if the holder dies) and
a small note of who holds it, for the message the second copy prints."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from blase_tui.errors import StepLocked


class StepLock:
    def __init__(self, locks_dir: Path, step: str) -> None:
        locks_dir.mkdir(parents=True, exist_ok=True)
        self.step = step
        self.path = locks_dir / f"{step}.lock"
        self.holder_path = locks_dir / f"{step}.holder.json"
        from filelock import FileLock

        self._lock = FileLock(str(self.path), timeout=0)

    def acquire(self) -> StepLock:
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise StepLocked(self._held_message()) from None
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
