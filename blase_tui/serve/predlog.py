"""The prediction log: every record ``blase serve`` predicts, with its inputs, prediction (and probabilities),
model version, latency and request id, as Parquet files that ``Monitor`` reads.

The response path only appends the request's arrays to an in-memory list (microseconds); a background thread
writes what has gathered every ``flush_seconds`` (or sooner past ``max_rows``) as one new file, under a
temporary name that is renamed into place once complete. So a reader (``read_log``) only ever sees complete
files, and a ``kill -9`` of the server loses at most the records of the last flush interval, never a file.

Files: ``LOG_DIR/YYYY-MM-DD/HHMMSS-<pid>-<seq>.parquet`` (one folder per day: rotate or delete whole days).
Columns: ``request_id``, ``record`` (its place in the request), ``time`` (seconds since the epoch), ``model``,
``version``, ``latency_ms``, ``prediction``, ``probabilities`` (a list, for classifiers), and the inputs:
``input.<column>`` for named columns, ``input`` (the record's values, flattened) for a tensor.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TMP_PREFIX = ".part-"


@dataclass
class Entry:
    request_id: str
    time: float
    latency_ms: float
    inputs: Any  # ndarray (named numeric columns, or a tensor) or DataFrame (named columns of other types)
    predictions: np.ndarray
    probabilities: np.ndarray | None
    columns: list[str] | None = None  # the names of an ndarray's columns


class PredictionLog:
    def __init__(self, folder: Path, *, model: str, version: int | None, flush_seconds: float = 1.0,
                 max_rows: int = 100_000) -> None:
        self.folder = Path(folder)
        self.model, self.version = model, version
        self.flush_seconds = flush_seconds
        self.max_rows = max_rows
        self._pending: list[Entry] = []
        self._pending_rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._seq = 0
        self.rows_written = 0
        self.files_written = 0
        self.errors = 0
        self.last_error: str | None = None
        self._thread: threading.Thread | None = None

    # --------------------------------------------------------------------------------- the response path
    def add(self, entry: Entry) -> None:
        with self._lock:
            self._pending.append(entry)
            self._pending_rows += len(entry.predictions)
            full = self._pending_rows >= self.max_rows
        if full:
            self._wake.set()

    @property
    def pending(self) -> int:
        return self._pending_rows

    # ------------------------------------------------------------------------------------------ the writer
    def start(self) -> PredictionLog:
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq

        self.folder.mkdir(parents=True, exist_ok=True)
        # import and initialise the writer now: done on the first flush, it held the interpreter for ~100 ms
        # while requests waited (the p99 of the first seconds)
        pq.write_table(pa.table({"x": [0]}), io.BytesIO(), compression="zstd")
        self._thread = threading.Thread(target=self._loop, name="blase-prediction-log", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()

    def flush(self) -> Path | None:
        with self._lock:
            entries, self._pending, self._pending_rows = self._pending, [], 0
        if not entries:
            return None
        try:
            return self._write(entries)
        except Exception as exc:  # noqa: BLE001 - the log must never take the server down
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return None

    def _write(self, entries: list[Entry]) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = _table(entries, self.model, self.version, pa)
        now = time.time()
        day = self.folder / time.strftime("%Y-%m-%d", time.localtime(now))
        day.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        name = f"{time.strftime('%H%M%S', time.localtime(now))}-{os.getpid()}-{self._seq:06d}.parquet"
        tmp = day / f"{TMP_PREFIX}{name}"
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, day / name)
        self.rows_written += table.num_rows
        self.files_written += 1
        return day / name


def _table(entries: list[Entry], model: str, version: int | None, pa: Any) -> Any:
    counts = [len(e.predictions) for e in entries]
    n = sum(counts)
    columns: dict[str, Any] = {
        "request_id": pa.array(np.repeat([e.request_id for e in entries], counts).tolist(), pa.string()),
        "record": pa.array(np.concatenate([np.arange(c, dtype=np.int32) for c in counts]), pa.int32()),
        "time": pa.array(np.repeat([e.time for e in entries], counts), pa.float64()),
        "model": pa.array([model] * n, pa.string()),
        "version": pa.array([version] * n, pa.int32()),
        "latency_ms": pa.array(np.repeat([e.latency_ms for e in entries], counts), pa.float32()),
    }
    predictions = np.concatenate([np.asarray(e.predictions) for e in entries])
    columns["prediction"] = pa.array(predictions.tolist() if predictions.dtype.kind in "OUS" else predictions)
    probas = [e.probabilities for e in entries]
    if all(p is not None for p in probas):
        stacked = np.concatenate(probas).astype(np.float32)
        columns["probabilities"] = pa.FixedSizeListArray.from_arrays(pa.array(stacked.ravel()), stacked.shape[1])
    first = entries[0]
    if first.columns is not None and not hasattr(first.inputs, "columns"):  # named numeric columns, an array
        stacked = np.concatenate([np.asarray(e.inputs) for e in entries])
        for i, name in enumerate(first.columns):
            columns[f"input.{name}"] = pa.array(stacked[:, i])
    elif hasattr(first.inputs, "columns"):  # named columns of any type, a DataFrame
        import pandas as pd

        frame = pd.concat([e.inputs for e in entries], ignore_index=True)
        for name in frame.columns:
            columns[f"input.{name}"] = pa.array(frame[name].to_numpy())
    else:
        flat = np.concatenate([np.asarray(e.inputs).reshape(len(e.predictions), -1) for e in entries])
        columns["input"] = pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1])
    return pa.table(columns)


def read_log(folder: Path) -> Any:
    """Every complete file of a prediction log as one Arrow table (files being written are never read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(p for p in Path(folder).rglob("*.parquet") if not p.name.startswith(TMP_PREFIX))
    if not files:
        return pa.table({})
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
