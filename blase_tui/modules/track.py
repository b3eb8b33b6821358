"""``Track``: the tracking API for user code, inside a step or in any script.

Inside a step, ``Track()`` writes to the step's run. In a project script (seed 000's ``main.py`` run as
``python main.py --step etl``), the script is a step execution (``core/script_step.py``) and ``Track`` writes
to it. Two meanings of ``start_run()``, as in docs/tracking.md:

- ``track.start_run()`` alone opens the project's run, exactly like ``blase step --start-run``: steps in this
  process and in later ones join it until ``end_run()`` (the seed's ``--start_run`` / ``--end_run``); a
  process that exits without ``end_run()`` leaves it open for the next step;
- ``with track.start_run():`` is a run of this block alone; it closes at the block's end (failed if an
  exception leaves the block).

>>> track = Track(project=".")
>>> with track.start_run(name="baseline"):
...     track.log_params({"lr": 0.01, "epochs": 3})
...     track.log_metric("loss", 0.25, iteration=1)
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from pathlib import Path
from typing import Any

from blase_tui.core import context as context_mod
from blase_tui.core import script_step
from blase_tui.core.project import Project
from blase_tui.core.tracker import RunTracker
from blase_tui.errors import BlaseError, ConfigError
from blase_tui.store import procs
from blase_tui.store.runstore import FAILED, INTERRUPTED, SUCCEEDED

_exit_status: list[str] = []  # set by the excepthook: how an uncaught exception ends the process's runs


def _install_excepthook() -> None:
    previous = sys.excepthook
    if getattr(previous, "_blase", False):
        return

    def hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        _exit_status.append(INTERRUPTED if issubclass(exc_type, KeyboardInterrupt) else FAILED)
        previous(exc_type, exc, tb)

    hook._blase = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def _resolve_project(project: str | Path | None) -> Project:
    if project is None:
        return Project.discover()
    if isinstance(project, Path) or os.sep in str(project) or str(project) in (".", ".."):
        return Project.discover(Path(project).expanduser())
    try:
        here = Project.discover()
    except ConfigError:
        here = None
    if here is not None and here.name == project:
        return here
    from blase_tui.core import registry

    known = registry.find_by_name(str(project))
    if known is not None:
        return Project.at(known)
    if Path(project).is_dir():
        return Project.discover(Path(project))
    if here is not None:
        # The seed writes Track(project="example") inside a project of another name: the project the script
        # runs in is the one meant.
        return here
    raise ConfigError(
        f"no project named `{project}`: not the current folder's project, not in `blase projects list`;"
        " pass its path instead, e.g. Track(project=\"path/to/project\")."
    )


class Track:
    """Record params, metrics, tags and artifacts of a run (MLflow-like, local, fast)."""

    def __init__(self, project: str | Path | None = None) -> None:
        ctx = context_mod.active()
        if ctx is not None and (project is None or self._same(project, ctx.project) or not self._elsewhere(project)):
            self._ctx: Any = ctx
            self._project: Project | None = ctx.project
            self._tracker: RunTracker | None = None
        else:
            self._ctx = None
            self._project = _resolve_project(project)
            self._tracker = None
        self._env_thread: threading.Thread | None = None
        self._closed = False
        current = script_step.current()
        # attached to this process's script step (core/script_step.py), not to a `blase step` context
        self._script = current is not None and self._ctx is current.ctx
        self._explicit = False
        self._ended_run_id: str | None = None

    @staticmethod
    def _elsewhere(project: str | Path) -> bool:
        """Whether ``project`` names another project that exists (a folder, or a name in the registry). The
        seed writes Track(project="example") inside steps of a project named otherwise: that means this one."""
        if isinstance(project, Path) or os.sep in str(project):
            return (Path(project).expanduser() / "blase.toml").is_file()
        from blase_tui.core import registry

        return registry.find_by_name(str(project)) is not None

    @staticmethod
    def _same(project: str | Path, current: Project) -> bool:
        if str(project) == current.name:
            return True
        try:
            return Path(project).expanduser().resolve() == current.root
        except OSError:
            return False

    # ------------------------------------------------------------------ runs
    @property
    def project(self) -> Project:
        assert self._project is not None
        return self._project

    @property
    def run_id(self) -> str | None:
        """The id of this Track's run (the last one, after ``end_run()``)."""
        tracker = self._ctx.tracker if self._ctx is not None else self._tracker
        return tracker.run_id if tracker else self._ended_run_id

    @property
    def run_dir(self) -> Path | None:
        run_id = self.run_id
        return self.project.store.run_dir(run_id) if run_id else None

    def start_run(self, name: str | None = None, tags: dict[str, Any] | None = None) -> Track:
        """Open the project's run, as ``blase step --start-run`` does: later steps, in this process or in
        later ones (``python main.py --step train``), join it until ``end_run()``. In a project script this
        process is a step execution of that run. Used as ``with track.start_run():`` the run is this block's
        only and closes at its end. Inside a step, the step's run is already open and is used."""
        if self._ctx is None:
            execution = script_step.ensure(start_run=True, run_name=name)
            if execution is not None:
                self._ctx, self._script = execution.ctx, True
        if self._ctx is not None:
            if name and self._script:
                self._ctx.tracker.store.set_run_name(self._ctx.run_id, name)
            if tags:
                self.set_tags(tags)
            return self
        if self._tracker is not None and not self._closed:
            raise BlaseError(f"run {self._tracker.run_id} is already open in this Track; call end_run() first.")
        self._open(name, tags, explicit=True)
        return self

    def _open(self, name: str | None, tags: dict[str, Any] | None, *, explicit: bool) -> None:
        """A run owned by this process (outside any project script: a notebook, ``python -c``, a test)."""
        from blase_tui.core.signature import environment

        store = self.project.store
        store.recover_dead()
        project = self.project
        env = environment(project.cache_dir)  # listed once per interpreter, then cached
        # explicit: it becomes the project's open run when this process leaves it open (see _at_exit)
        run_id = store.create_run(name=name, explicit=False, owner_pid=os.getpid(),
                                  owner_started=procs.process_started(), tags=tags, env=env, exclusive=explicit)
        if run_id is None:
            open_run = store.open_explicit_run()
            open_id = open_run.id if open_run is not None else "?"
            raise ConfigError(f"run {open_id} is still open (started with --start-run); end it first with"
                              f" Track().end_run(), `blase step STEP --end-run` or `blase runs close {open_id}`.")
        self._tracker = RunTracker(store, run_id)
        self._explicit = explicit
        self._closed = False
        context_mod._TRACK_RUNS.append(self._tracker)
        if any((folder / ".git").exists() for folder in (project.root, *project.root.parents)):
            # `git status` takes milliseconds: record it beside the caller's work, not before it
            self._env_thread = threading.Thread(
                target=self._record_environment, args=(store, run_id, project, env), name="blase-env", daemon=True
            )
            self._env_thread.start()
        _install_excepthook()
        atexit.register(self._at_exit)

    @staticmethod
    def _record_environment(store: Any, run_id: str, project: Project, env: dict[str, Any]) -> None:
        from blase_tui.core.signature import git_state

        try:
            store.record_environment(run_id, env, git_state(project.root))
        except Exception:  # the run stands without its snapshot rather than failing the caller
            pass

    def end_run(self, status: str | None = None) -> None:
        """Close the run (the seed's ``--end_run``): this process's step execution ends (failed while an
        exception is on its way out, else succeeded) and the run closes. Inside ``blase step``, the run
        closes when the step ends, as with ``--end-run``."""
        if status not in (None, SUCCEEDED, FAILED, INTERRUPTED):
            raise ValueError(f"status must be one of succeeded, failed, interrupted, not {status!r}")
        if script_step.current() is not None:
            script_step.end(status, close_run=True)
            if self._script:
                self._ended_run_id = self._ctx.run_id
                self._ctx, self._script = None, False
            return
        if self._ctx is not None and not self._script:
            self._ctx.end_run()
            return
        if self._tracker is None or self._closed:
            if self._ctx is None and self._tracker is None:
                self._close_open_run(status)
            return
        if status is None:
            status = FAILED if sys.exc_info()[1] is not None else SUCCEEDED
        self._closed = True
        self._tracker.close()
        if self._env_thread is not None:
            self._env_thread.join()
            self._env_thread = None
        from blase_tui.core.execution import snapshot_code

        script = script_step.script_path()
        snapshot_code(self.project, self._tracker.run_id, (script,) if script else ())
        self._tracker.store.close_run(self._tracker.run_id, status)
        if self._tracker in context_mod._TRACK_RUNS:
            context_mod._TRACK_RUNS.remove(self._tracker)
        atexit.unregister(self._at_exit)

    def _close_open_run(self, status: str | None) -> None:
        """``end_run()`` in a process that did not start the run: close the project's open run, as
        ``blase step STEP --end-run`` does."""
        store = self.project.store
        open_run = store.open_explicit_run()
        if open_run is None:
            return
        running = store.running_steps(open_run.id)
        if running:
            raise ConfigError(f"step `{running[0]}` of run {open_run.id} is still running; wait for it before"
                              " ending the run.")
        from blase_tui.core.execution import snapshot_code

        snapshot_code(self.project, open_run.id)
        store.close_run(open_run.id, status)

    def _at_exit(self) -> None:
        assert self._tracker is not None
        store = self._tracker.store
        if self._explicit and not _exit_status and not self._closed and store.promote_explicit(self._tracker.run_id):
            # a run opened with start_run() outside `with` stays open for the next process, as --start-run
            self._tracker.close()
            store.set_run_owner(self._tracker.run_id, None, None)
            store.write_run_json(self._tracker.run_id)
            return
        self.end_run(_exit_status[-1] if _exit_status else SUCCEEDED)

    def __enter__(self) -> Track:
        if self._tracker is None and self._ctx is None:
            self.start_run()
        # `with track.start_run():` is this block's run alone: it never becomes the project's open run
        self._explicit = False
        if self._script and script_step.current() is not None:
            script_step.current().defer_explicit = False
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if self._ctx is not None and not self._script:
            return
        if exc_type is None:
            self.end_run(SUCCEEDED)
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end_run(INTERRUPTED)
        else:
            self.end_run(FAILED)

    def _run(self) -> RunTracker:
        if self._ctx is not None:
            return self._ctx.tracker
        if self._tracker is not None and not self._closed:
            return self._tracker
        execution = script_step.ensure()
        if execution is not None:
            self._ctx, self._script = execution.ctx, True
            return execution.tracker
        self._open(None, None, explicit=False)
        assert self._tracker is not None
        return self._tracker

    # ------------------------------------------------------------- recording
    def log_param(self, key: str, value: Any) -> None:
        self._run().log_params({key: value})

    def log_params(self, params: dict[str, Any]) -> None:
        self._run().log_params(params)

    def log_metric(self, key: str, value: float, iteration: int | None = None) -> None:
        self._run().log_metric(key, value, iteration)

    def log_metrics(self, metrics: dict[str, float], iteration: int | None = None) -> None:
        self._run().log_metrics(metrics, iteration)

    def set_tag(self, key: str, value: Any) -> None:
        self._run().set_tags({key: value})

    def set_tags(self, tags: dict[str, Any]) -> None:
        self._run().set_tags(tags)

    def log_artifact(self, path: str | Path, name: str | None = None) -> None:
        """Keep a file or folder with the run (stored once by content, whatever the number of runs)."""
        self._run().log_artifact(path, name)

    def log_model(self, model: Any, name: str, *, framework: str | None = None, input_example: Any = None,
                  metrics: dict[str, Any] | None = None, task: str = "classification") -> str:
        """Register ``model`` (an estimator, module, Keras model or saved file) as the next version of ``name``
        in this run; see :func:`blase_tui.models.log_model`."""
        self._run()
        from blase_tui.models import log_model

        return log_model(model, name, framework=framework, input_example=input_example, metrics=metrics, task=task)

    def log_dataset(self, path: str | Path, *, role: str = "output", name: str | None = None) -> str:
        """Record a dataset the run read (``role="input"``) or wrote; returns its content hash."""
        return self._run().log_dataset(path, role=role, name=name)
