"""Runs for scripts and notebooks: find them by step, params, tags, name and metrics, and read one.

>>> from blase_tui import runs
>>> best = runs.find(step="train", where="val_accuracy>0.9", latest=True)
>>> run = runs.get(best[0].id)
>>> run.params["learning_rate"], run.metrics["val_accuracy"], run.artifact_path("model/digits_cnn.pt")

The same search as ``blase runs find`` (docs/tracking.md, "Finding runs from Python").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from blase_tui.store.records import RunDescription
    from blase_tui.store.runstore import RunStore


def _store(project: str | Path | None) -> RunStore:
    from blase_tui.core.project import Project

    store = (Project.discover(Path(project)) if project is not None else Project.discover()).store
    store.recover_dead()
    return store


@dataclass
class Run:
    """One run, read from the store when asked. ``step`` (when found by step) picks whose params and metrics
    ``params`` and ``metrics`` show first: that step's, over the run's own."""

    store: RunStore
    id: str
    step: str | None = None

    @property
    def folder(self) -> Path:
        return self.store.run_dir(self.id)

    def describe(self) -> dict[str, Any]:
        """Everything about the run, as ``blase runs show --json`` prints it."""
        return self._record().to_json()

    def _record(self) -> RunDescription:
        return self.store.describe_run(self.id)

    @property
    def name(self) -> str | None:
        return self._record().run.name

    @property
    def status(self) -> str:
        return self._record().run.status

    @property
    def steps(self) -> list[str]:
        return [s.step for s in self._record().steps]

    def _merged(self, desc: RunDescription, what: str) -> dict[str, Any]:
        out = dict(getattr(desc, what))
        for s in desc.steps:  # later executions win; the chosen step's last
            if self.step is None or s.step != self.step:
                out.update(getattr(s, what))
        for s in desc.steps:
            if s.step == self.step:
                out.update(getattr(s, what))
        return out

    @property
    def params(self) -> dict[str, Any]:
        """The run's params and its steps' (the found step's win)."""
        return self._merged(self._record(), "params")

    @property
    def metrics(self) -> dict[str, float]:
        """The last value of each metric of the run and its steps (the found step's win)."""
        return self._merged(self._record(), "metrics")

    def artifact_path(self, name: str) -> Path:
        """Where artifact ``name`` (``model/digits_cnn.pt``, ``summary.json``) of the run is on disk."""
        from blase_tui.errors import ConfigError
        from blase_tui.store.safepath import relative_name

        name = relative_name(name, what="artifact name")
        desc = self._record()
        for s in reversed(desc.steps):
            if any(a.name == name for a in s.artifacts):
                return self.folder / s.folder / "artifacts" / name
        if any(a.name == name for a in desc.artifacts):
            return self.folder / "artifacts" / name
        names = sorted({a.name for s in desc.steps for a in s.artifacts} | {a.name for a in desc.artifacts})
        raise ConfigError(f"run {self.id} has no artifact `{name}`; it has: {', '.join(names[:20]) or 'none'}.")

    def as_dict(self) -> dict[str, Any]:
        desc = self._record()
        run = desc.run
        return {"id": self.id, "name": run.name, "status": run.status, "started": run.started, "ended": run.ended,
                "folder": str(self.folder), "steps": [s.step for s in desc.steps],
                "params": self._merged(desc, "params"), "metrics": self._merged(desc, "metrics")}


def find(step: str | None = None, *, params: dict[str, Any] | None = None, tags: dict[str, Any] | None = None,
         name: str | None = None, where: str | list[str] | None = None, status: str | None = "succeeded",
         latest: bool = False, project: str | Path | None = None, reproductions: bool = False) -> list[Run]:
    """Runs that executed ``step`` with these params (values compared as ``--param`` compares them), tags, name
    (a glob) and ``where`` conditions on metrics or numeric params (``"accuracy>0.9"``), newest first
    (``latest``: the newest only). Runs ``runs reproduce`` made are left out unless ``reproductions``. An
    unknown step or param raises ``ConfigError``."""
    from blase_tui.store.query import find_runs, parse_where

    if step is None and name is None:
        from blase_tui.errors import ConfigError

        raise ConfigError("give step=... or name=... to find runs.")
    store = _store(project)
    conditions = [parse_where(w) for w in ([where] if isinstance(where, str) else where or [])]
    ids = find_runs(store, step=step, params={k: _param_text(v) for k, v in (params or {}).items()},
                    tags={k: str(v) for k, v in (tags or {}).items()}, status=status, limit=1 if latest else None,
                    name=name, where=conditions, check=True, reproductions=reproductions)
    return [Run(store, rid, step) for rid in ids]


def _param_text(value: Any) -> str:
    """A param value as ``--param`` writes it: text as it is, anything else as JSON (a list is ``["g", "r"]``,
    not Python's ``['g', 'r']``, which is no JSON and would match nothing)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)


def get(run: str, *, project: str | Path | None = None) -> Run:
    """A run by id, unique prefix, unique random tail, or ``latest``."""
    store = _store(project)
    return Run(store, store.resolve_run(run))
