"""The step context (``ctx``): params, logger, progress reporter, memory budget, current run, artifacts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

    from blase_tui.core.project import Project
    from blase_tui.core.tracker import RunTracker
    from blase_tui.store.events import EventWriter

_ACTIVE: StepContext | None = None


def active() -> StepContext | None:
    """The context of the step running in this process, if any (modules use it to record their work)."""
    return _ACTIVE


def _set_active(ctx: StepContext | None) -> None:
    global _ACTIVE
    _ACTIVE = ctx


class Params(dict):
    """The step's params; ``ctx.params.epochs`` and ``ctx.params["epochs"]`` both work."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"this step has no param `{name}`; known: {', '.join(sorted(self)) or 'none'}") from None


class Progress:
    """Progress of one stage of a step. Events go out at most ten times a second, plus the first and last.

    >>> with ctx.progress("resize", total=len(files)) as bar:
    ...     for f in files:
    ...         bar.update(1)
    """

    MIN_INTERVAL = 0.1

    def __init__(self, events: EventWriter | None, stage: str, total: int | None = None, unit: str = "items") -> None:
        self._events = events
        self.stage = stage
        self.total = total
        self.unit = unit
        self.done = 0
        self.within = 0.0  # how far into the next unit (an epoch's batches): the rate and ETA move within it
        self.bytes = 0
        self._start = time.monotonic()
        self._last_emit = 0.0
        self._emit(force=True)

    def update(self, n: int = 1, *, nbytes: int = 0) -> None:
        self.done += n
        self.within = 0.0
        self.bytes += nbytes
        self._emit()

    def advance_within(self, fraction: float) -> None:
        """``fraction`` (0 to 1) of the unit under way is done: a bar over 12 epochs moves its rate and ETA with
        the batches of the epoch it is in, instead of standing still for an epoch and then jumping."""
        self.within = min(max(float(fraction), 0.0), 1.0)
        self._emit()

    def set(self, done: int, *, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        self._emit()

    def _emit(self, force: bool = False, finished: bool = False) -> None:
        now = time.monotonic()
        if self._events is None or (not force and now - self._last_emit < self.MIN_INTERVAL):
            return
        self._last_emit = now
        elapsed = max(now - self._start, 1e-9)
        self._events.emit(
            "progress", stage=self.stage, done=self.done, total=self.total, unit=self.unit,
            rate=(self.done + self.within) / elapsed, bytes_rate=self.bytes / elapsed, elapsed=elapsed,
            finished=finished, **({"within": self.within} if self.within else {}),
        )

    def close(self) -> None:
        self._emit(force=True, finished=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wrap(self, items: Any) -> Iterator[Any]:
        """Iterate ``items`` and advance by one for each."""
        for item in items:
            yield item
            self.update(1)


class StepContext:
    """What a step function receives as ``ctx``.

    Attributes: ``step`` (name), ``params``, ``log`` (a :class:`logging.Logger` writing to the step's log),
    ``memory_budget`` (bytes), ``run_id``, ``folder`` (the step's folder in the run), ``artifact_dir`` (files
    written there become artifacts when the step ends), ``project``, ``resume`` (``blase step NAME --resume``:
    training continues from the last checkpoint of an earlier execution).
    """

    def __init__(
        self,
        *,
        step: str,
        params: dict[str, Any],
        project: Project,
        tracker: RunTracker,
        events: EventWriter,
        log: logging.Logger | Callable[[], logging.Logger],
        memory_budget: int,
        resume: bool = False,
        executor: dict[str, Any] | None = None,
    ) -> None:
        self.step = step
        self.resume = resume
        self.params = Params(params)
        self.project = project
        self.tracker = tracker
        self.events = events
        self._log = log  # a Logger, or what makes it on first use (logging is not imported before)
        self.memory_budget = memory_budget
        self.end_run_requested = False
        self.ending: list[Callable[[], Any]] = []
        self.executor_request = dict(executor or {})  # `--executor NAME --workers N` of `blase step`
        self.executor: Any = None  # the executor, once a module asked for it (recording.executor)

    @property
    def log(self) -> logging.Logger:
        """A :class:`logging.Logger` writing to the step's log, its events and the terminal."""
        if callable(self._log):
            self._log = self._log()
        return self._log

    def at_end(self, fn: Callable[[], Any], *, first: bool = False) -> None:
        """Call ``fn`` as the step ends, before its artifacts are collected (Monitor's plots); ``first``: before
        what was asked earlier (work still owed to an executor, before the executor closes)."""
        if first:
            self.ending.insert(0, fn)
        else:
            self.ending.append(fn)

    @property
    def run_id(self) -> str:
        return self.tracker.run_id

    @property
    def step_run_id(self) -> int:
        return self.tracker.step_run_id

    @property
    def folder(self) -> Path:
        return self.tracker.folder

    @property
    def artifact_dir(self) -> Path:
        path = self.tracker.folder / "artifacts"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def progress(self, stage: str, total: int | None = None, unit: str = "items") -> Progress:
        return Progress(self.events, stage, total, unit)

    def log_metric(self, key: str, value: float, iteration: int | None = None) -> None:
        self.tracker.log_metric(key, value, iteration)

    def log_metrics(self, metrics: dict[str, float], iteration: int | None = None) -> None:
        self.tracker.log_metrics(metrics, iteration)

    def log_param(self, key: str, value: Any) -> None:
        self.tracker.log_params({key: value})

    def log_params(self, params: dict[str, Any]) -> None:
        self.tracker.log_params(params)

    def set_tag(self, key: str, value: Any) -> None:
        self.tracker.set_tags({key: value})

    def log_artifact(self, path: str | Path, name: str | None = None) -> None:
        self.tracker.log_artifact(path, name)

    def log_dataset(self, path: str | Path, *, role: str = "output", name: str | None = None) -> str:
        """Record a dataset the step read (``role="input"``) or wrote (``"output"``); returns its hash."""
        return self.tracker.log_dataset(path, role=role, name=name)

    def log_model(self, model: Any, name: str, *, framework: str | None = None, input_example: Any = None,
                  metrics: dict[str, Any] | None = None, task: str = "classification") -> str:
        """Register ``model`` (a scikit-learn estimator or clusterer, a torch module, a Keras model, or a saved
        model file) as the next version of ``name`` in the project's registry, with its card; returns
        ``"name vN"``. The same as ``blase_tui.models.log_model`` (see docs/tracking.md)."""
        # The registry needs the framework adapters, a layer above the engine: the public API is bound by name
        # at call time, as ``blase_tui``'s own exports are, so the engine never imports it.
        import importlib

        public = importlib.import_module(_MODELS_API)
        return str(public.log_model(model, name, framework=framework, input_example=input_example,
                                    metrics=metrics, task=task))

    def end_run(self) -> None:
        """Close the run when this step ends (as ``--end-run`` does)."""
        self.end_run_requested = True


_TRACK_RUNS: list[RunTracker] = []
_MODELS_API = "blase_tui.models"  # where ``StepContext.log_model`` finds the registry's public API


def current_tracker() -> RunTracker | None:
    """Where module code should record its work: the running step's run, else the newest run a ``Track``
    started in this process, else None."""
    if _ACTIVE is not None:
        return _ACTIVE.tracker
    return _TRACK_RUNS[-1] if _TRACK_RUNS else None
