"""Tell a callback when a project's store changes: watchdog on the ``runs/`` folder (every SQLite commit writes
the ``-wal`` file, so inotify reports it within milliseconds), coalesced so a burst of commits is one call."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


class StoreWatcher:
    """Calls ``on_change()`` from a background thread at most once per ``debounce`` seconds after a change."""

    def __init__(self, runs_dir: Path, on_change: Callable[[], None], *, debounce: float = 0.1) -> None:
        self.runs_dir = runs_dir
        self.on_change = on_change
        self.debounce = debounce
        self._observer: Any = None
        self._pending = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="blase-storewatch", daemon=True)

    def start(self) -> StoreWatcher:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                name = Path(str(event.src_path)).name
                if name.startswith("blase.db"):
                    watcher._pending.set()

        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self._observer = Observer()
        self._observer.schedule(Handler(), str(self.runs_dir), recursive=False)
        self._observer.daemon = True
        self._observer.start()
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._pending.wait(0.5):
                continue
            if self._stop.wait(self.debounce):
                return
            self._pending.clear()
            try:
                self.on_change()
            except Exception:  # the watcher outlives a failing callback (e.g. an app shutting down)
                pass

    def stop(self, *, wait: bool = True) -> None:
        """Stop watching; ``wait=False`` returns at once (the threads are daemons and end on their own)."""
        self._stop.set()
        self._pending.set()
        if self._observer is not None:
            self._observer.stop()
            if wait:
                self._observer.join(timeout=2)
