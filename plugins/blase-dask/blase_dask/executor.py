"""The Dask executor: ``blase step S --executor dask [--workers N]`` or ``[executor] name = "dask"``.

Without ``address``, a ``LocalCluster`` of ``workers`` processes (default: one per core), one thread each, each
with its share of the step's memory budget as Dask's memory limit; with ``address = "tcp://host:8786"``, the
workers of that scheduler (a cluster started by hand, or by dask-jobqueue on SLURM/PBS: docs/scaling.md).

``map(fn, items)`` runs ``fn(item)`` on the workers and yields the results in the items' order (so what is built
from them is the same as in one process). A worker that dies is replaced and its task run again (Dask's
``allowed-failures``); a task that fails stops the step with one line naming the item.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from blase_tui.plugin import per_worker

IMPORT_FLOOR = 512 * 2**20  # Python, numpy, pandas, pyarrow and blase in a worker before any data


class DaskExecutor:
    def __init__(self, settings: dict[str, Any], *, memory_budget: int) -> None:
        import logging

        import dask
        from dask.distributed import Client, LocalCluster

        # Dask's own log (startup, memory warnings, a task's traceback) is not the step's: what fails reaches the
        # step as one line from map(); the workers (other processes) read the level from the environment
        os.environ["DASK_LOGGING__DISTRIBUTED"] = "critical"
        dask.config.set({"logging.distributed": "critical"})
        for name in ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.worker"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        self.address = settings.get("address")
        # a task that raises fails at once (a bad file stays bad); a worker that dies is another matter: Dask runs
        # its task again elsewhere, up to distributed.scheduler.allowed-failures (3) times
        self.retries = int(settings.get("retries", 0))
        self.cluster = None
        if self.address:
            self.client = Client(self.address, timeout=settings.get("timeout", "30s"))
            self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        else:
            self.workers = int(settings.get("workers") or os.cpu_count() or 1)
            # Dask limits a worker's whole process: its share of the budget for data, plus the import floor
            limit = settings.get("memory_limit", per_worker(memory_budget, self.workers) + IMPORT_FLOOR)
            self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                        memory_limit=limit, dashboard_address=None)
            self.client = Client(self.cluster)
        self.memory_budget = memory_budget
        self.project_root = Path(settings.get("project_root") or _project_root()).resolve()
        self._modules_seen = 0
        self._by_value: set[str] = set()

    def describe(self) -> str:
        where = f"scheduler {self.address}" if self.address else "a LocalCluster"
        share = per_worker(self.memory_budget, self.workers)
        return f"{self.workers} worker(s) on {where}, {share / 2**20:,.0f} MiB of the budget each"

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any], *, what: str = "") -> Iterator[Any]:
        items = list(items)
        self._project_code_by_value()
        futures = [Task(f, item, what) for f, item in
                   zip(self.client.map(fn, items, pure=False, retries=self.retries), items, strict=True)]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()

    def submit(self, fn: Callable[[Any], Any], item: Any, *, what: str = "") -> Task:
        """``fn(item)`` on a worker; ``.result()`` waits for it (raising as ``map`` does)."""
        self._project_code_by_value()
        return Task(self.client.submit(fn, item, pure=False, retries=self.retries), item, what)

    def _project_code_by_value(self) -> None:
        """The project's own modules (``main.py``, ``scripts/``) travel with the functions that use them: a worker
        cannot import them by name (the step imported ``main.py`` from its file; a remote worker has no copy)."""
        import sys

        import cloudpickle

        if len(sys.modules) == self._modules_seen:
            return
        self._modules_seen = len(sys.modules)
        root = str(self.project_root) + os.sep
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None) or ""
            if (name not in self._by_value and path.startswith(root) and os.sep + ".venv" + os.sep not in path
                    and "site-packages" not in path):
                try:
                    cloudpickle.register_pickle_by_value(module)
                except ValueError:
                    continue
                self._by_value.add(name)

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


def _project_root() -> Path:
    from blase_tui.plugin import recording

    try:
        return recording.project_root()
    except Exception:  # outside a project: the folder it runs in
        return Path.cwd()


class Task:
    """A task on a worker: ``result()`` is its value, or one line naming ``item`` when it failed."""

    def __init__(self, future: Any, item: Any, what: str) -> None:
        self.future, self.item, self.what = future, item, what

    def result(self) -> Any:
        from blase_tui.plugin import BlaseError, reason

        try:
            return self.future.result()
        except BlaseError as exc:  # the worker's own one line (Dask adds the remote traceback to it)
            message = exc.args[0] if exc.args else str(exc)
            raise type(exc)(message) from None
        except Exception as exc:
            raise BlaseError(f"{self.what or 'the task of'} {self.item} failed on a Dask worker:"
                             f" {type(exc).__name__}: {reason(exc)}") from exc

    def cancel(self) -> None:
        self.future.cancel()
