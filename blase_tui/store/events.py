"""The step's event stream (``events.jsonl``): progress, resource samples, log lines and metrics.

Emitting an event appends a dict to a list; a background thread writes the list out a few times a second, so
a step that reports progress for every batch pays a list append, not a write.

Readers take an events file as untrusted (a run folder copied in, a damaged disk): they read bytes and decode
each line on its own, so one invalid byte costs that line only; a line that is not a JSON object is skipped and,
for ``runs reindex``, named with its line number.
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


def _event(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """The JSON object a line holds, or None and why not."""
    try:
        event = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except ValueError:
        return None, "not JSON (cut short or damaged)"
    if not isinstance(event, dict):
        return None, "not a JSON object"
    return event, ""


def json_objects(path: Path, bad: list[str] | None = None, name: str | None = None,
                 marks: list[bytes] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each complete line of a JSON-lines file (an events file, the journal) read as
    untrusted: a torn last line from a killed writer is ignored; lines that are not JSON objects go to ``bad`` as
    ``"NAME line N: why"`` (``name``: how to show the file, default its path). ``marks``: only lines holding one
    of these bytes are parsed (the others are neither read nor reported)."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the with below, across the yields
    except FileNotFoundError:
        return
    with fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n") or not raw.strip():
                continue
            if marks is not None and not any(m in raw for m in marks):
                continue
            event, why = _event(raw)
            if event is not None:
                yield number, event
            elif bad is not None:
                bad.append(f"{name or path} line {number}: {why}")


def read_events(path: Path) -> list[dict[str, Any]]:
    """All complete events of a file; lines that are not events are left out."""
    return [event for _, event in json_objects(path)]


class EventTail:
    """Follows an events file: each ``poll()`` returns the complete events written since the last one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def poll(self) -> list[dict[str, Any]]:
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return []
        if size <= self._offset:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read()
            self._offset = fh.tell()
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        out = []
        for line in lines:
            if line.strip():
                event, _ = _event(line)
                if event is not None:
                    out.append(event)
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.poll())
