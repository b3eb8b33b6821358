"""``Transform``: apply a function to batches, optionally in worker processes, keeping record order.

>>> transformer = Transform()
>>> out = transformer.apply_function(batch, normalise)               # normalise(batch) -> Batch / dict / Table
>>> out = transformer.apply_function(batch, flip, column="image")     # flip(one_image) -> image
"""

from __future__ import annotations

import atexit
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from blase_tui.modules import recording
from blase_tui.modules.batch import Batch
from blase_tui.modules.partitions import DeferredBatch


def _apply_column(fn: Callable[[Any], Any], values: Any) -> list[Any]:
    return [fn(v) for v in values]


def _apply_batch(fn: Callable[[Batch], Any], batch: Batch) -> Any:
    return _as_data(fn(batch), batch)


def _as_data(result: Any, batch: Batch) -> Any:
    if isinstance(result, Batch):
        return result
    if result is None:
        raise ValueError("the function returned None; return the new batch (or its data)")
    if isinstance(result, dict) or hasattr(result, "column_names"):
        return batch.with_data(result, step="transform")
    if isinstance(result, np.ndarray):
        return batch.with_data({"array": result}, step="transform")
    raise TypeError(f"the function returned a {type(result).__name__}; return a Batch, a dict of arrays or a Table")


def _stack(values: list[Any]) -> Any:
    if values and isinstance(values[0], np.ndarray) and all(
        isinstance(v, np.ndarray) and v.shape == values[0].shape and v.dtype == values[0].dtype for v in values
    ):
        return np.stack(values)
    try:
        return np.asarray(values) if values and np.isscalar(values[0]) else _objects(values)
    except ValueError:
        return _objects(values)


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def _concat(parts: list[Batch]) -> Batch:
    import pyarrow as pa

    first = parts[0]
    keys = [k for p in parts for k in p.keys]
    if first.is_table:
        data: Any = pa.concat_tables([p.data for p in parts])
    else:
        data = {}
        for name in first.data:
            values = [p.data[name] for p in parts]
            if all(isinstance(v, np.ndarray) and v.dtype != object for v in values) and len(
                {v.shape[1:] for v in values}
            ) == 1:
                data[name] = np.concatenate(values)
            else:
                data[name] = _objects([x for v in values for x in v])
    return Batch(keys, data, first.meta, [b for p in parts for b in p.bad_records])


def apply(fn: Callable[..., Any], column: str | None, output_column: str | None, batch: Batch) -> Batch:
    """``fn`` applied to ``batch`` in this process, as ``Transform.apply_function`` without workers does (also
    what an executor's worker runs on the batches it reads)."""
    if len(batch) == 0:
        return batch
    if column is None:
        return _apply_batch(fn, batch)
    return _with_column(batch, fn, column, output_column, _apply_column(fn, batch.column(column)))


def _with_column(batch: Batch, fn: Callable[..., Any], column: str, output_column: str | None,
                 results: list[Any]) -> Batch:
    name = output_column or column
    if batch.is_table:
        import pyarrow as pa

        table = batch.data
        array = pa.array(results)
        table = (table.set_column(table.column_names.index(name), name, array) if name in table.column_names
                 else table.append_column(name, array))
        return batch.with_data(table, step=getattr(fn, "__name__", "transform"))
    data = dict(batch.data)
    data[name] = _stack(results)
    return batch.with_data(data, step=getattr(fn, "__name__", "transform"))


class Transform:
    """Apply functions to batches. With ``workers=N`` the batch is cut into N contiguous parts handled by N
    processes (so each holds a share of the batch, and the memory budget is split between them); results come
    back in record order, whatever finishes first."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = int(workers or 0)
        self._pool: Any = None

    def _executor(self) -> Any:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(method))
            atexit.register(self.close)
        return self._pool

    def __getattr__(self, name: str) -> Any:
        """``apply_NAME`` of a transform plugin (entry point group ``blase.transforms``, ``blase_tui.plugin``):
        ``apply_NAME(batch, **options)`` is ``apply_function(batch, fn(·, **options))``, with its workers."""
        if name.startswith("apply_") and len(name) > 6:
            import functools

            from blase_tui.core import plugins

            fn = plugins.load("transforms", name[6:], what=f"Transform.{name}")

            def apply(batch: Batch, *, workers: int | None = None, **options: Any) -> Batch:
                if options:  # the step's records say which plugin function ran, with what
                    recording.params(name, **{f"{name}.{k}": v for k, v in options.items()})
                return self.apply_function(batch, functools.partial(fn, **options) if options else fn,
                                           workers=workers)

            return apply
        raise AttributeError(f"'Transform' object has no attribute {name!r}")

    def apply_function(self, batch: Batch, fn: Callable[..., Any], *, column: str | None = None,
                       output_column: str | None = None, workers: int | None = None) -> Batch:
        """``fn(batch)`` returning a Batch, a dict of columns or a Table; or, with ``column``, ``fn(value)`` for
        each record's value of that column, written back to ``output_column`` (default: the same column)."""
        recording.params("apply_function", **{"apply_function.fn": fn})
        if isinstance(batch, DeferredBatch) and batch.pending:
            # under an executor: the function joins the batch's recipe and runs where the batch is read (partitions)
            return batch.then(functools.partial(apply, fn, column, output_column))
        n = self.workers if workers is None else int(workers)
        if n and n != self.workers:
            self.close()
            self.workers = n
        if len(batch) == 0:
            return batch
        if column is not None and n > 1 and len(batch) > 1:
            values = batch.column(column)
            chunks = np.array_split(np.arange(len(batch)), min(n, len(batch)))
            futures = [self._executor().submit(_apply_column, fn, [values[i] for i in c]) for c in chunks]
            return _with_column(batch, fn, column, output_column, [x for f in futures for x in f.result()])
        if column is None and n > 1 and len(batch) > 1:
            chunks = np.array_split(np.arange(len(batch)), min(n, len(batch)))
            futures = [self._executor().submit(_apply_batch, fn, batch.select(c)) for c in chunks]
            return _concat([f.result() for f in futures])
        return apply(fn, column, output_column, batch)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Transform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
