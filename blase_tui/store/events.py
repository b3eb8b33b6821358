"""The step's event stream (``events.jsonl``): progress, resource samples, log lines and metrics.

Emitting an event appends a dict to a list; a background thread writes the list out a few times a second, so
a step that reports progress for every batch pays a list append, not a write.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

FLUSH_INTERVAL = 0.25


class EventWriter:
    """Append-only, buffered JSON-lines writer. ``listeners`` see every event in the emitting thread."""

    def __init__(self, path: Path, *, flush_interval: float = FLUSH_INTERVAL) -> None:
        self.path = path
        self._fh = open(path, "a", encoding="utf-8")
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._interval = flush_interval
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.dropped = 0  # events that could not be written (a full disk)
        self._thread = threading.Thread(target=self._loop, name="blase-events", daemon=True)
        self._thread.start()

    def emit(self, type_: str, **fields: Any) -> None:
        event = {"t": time.time(), "type": type_, **fields}
        self._buffer.append(event)  # list.append is atomic under the GIL
        for listener in self.listeners:
            listener(event)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            if self._fh.closed:
                return
            buffer, self._buffer = self._buffer, []
            if buffer:
                try:
                    self._fh.write("".join(json.dumps(e, default=str) + "\n" for e in buffer))
                    self._fh.flush()
                except OSError:  # a full disk: these events are lost, the step and the store go on
                    self.dropped += len(buffer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()
        with self._lock:
            self._fh.close()


def read_events(path: Path) -> list[dict[str, Any]]:
    """All complete events of a file (a torn last line from a killed writer is ignored)."""
    events = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.endswith("\n"):
                    try:
                        events.append(json.loads(line))
                    except ValueError:
                        continue
    except FileNotFoundError:
        pass
    return events


class EventTail:
    """Follows an events file: each ``poll()`` returns the complete events written since the last one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = ""

    def poll(self) -> list[dict[str, Any]]:
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return []
        if size <= self._offset:
            return []
        with open(self.path, encoding="utf-8") as fh:
            fh.seek(self._offset)
            chunk = fh.read()
            self._offset = fh.tell()
        text = self._partial + chunk
        lines = text.split("\n")
        self._partial = lines.pop()
        out = []
        for line in lines:
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.poll())
