"""The step engine: runs one step of a project inside a tracked run. `blase step`, `python main.py --step` and
the TUI (through a `blase step` subprocess) all end up here."""

from __future__ import annotations

import atexit
import errno
import os
import signal
import sys
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from blase_tui.core import context as context_mod
from blase_tui.core import resume as resume_mod
from blase_tui.core.config import parse_bytes
from blase_tui.core.execution import StepExecution, say
from blase_tui.core.lock import StepLock
from blase_tui.core.project import Project
from blase_tui.core.script_step import hard_exit
from blase_tui.core.signature import function_hash
from blase_tui.core.steps import StepInfo, as_sets, call_args, misspelt_configured, resolve_params
from blase_tui.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    BlaseError,
    ConfigError,
    StepInterrupted,
)
from blase_tui.store.db import DiskFull
from blase_tui.store.records import Run
from blase_tui.store.runstore import FAILED, INTERRUPTED, RUNNING, SUCCEEDED, RunStore
from blase_tui.store.values import SETS_TAG


@dataclass
class StepRequest:
    """What to run: ``blase step NAME [--start-run] [--end-run] [--set k=v] [--force]``."""

    step: str
    start_run: bool = False
    end_run: bool = False
    overrides: list[str] = field(default_factory=list)
    force: bool = False
    run_name: str | None = None
    resume: bool = False  # continue from the checkpoint an earlier execution of the step left
    resume_any: bool = False  # resume even when the checkpoint's params differ, with the checkpoint's params
    executor: str | None = None  # `--executor dask`: where the step's data work runs (a plugin; default [executor])
    workers: int | None = None  # `--workers N` for that executor
    quiet: bool = False  # the step's log lines go to its log and events only, not to the terminal
    params: dict[str, Any] | None = None  # exactly these params (``runs reproduce``), instead of resolving them
    script: Path | None = None  # the project file that holds the step when it is not the entry (python mon.py)


@dataclass
class StepOutcome:
    step: str
    status: str
    exit_code: int
    run_id: str
    step_run_id: int
    folder: Path
    message: str
    run_status: str
    reused_from: int | None = None
    ran: bool = True  # False: up to date, nothing ran and no run was made (always said, even with --quiet)


def reuse_allowed(project: Project, info: StepInfo) -> bool:
    """``@step(reuse=False)`` and ``[project] reuse = false`` turn reuse off."""
    return info.reuse is not False and project.config.reuse


def resolve_run_params(store: Any, step: str, params: dict[str, Any]) -> dict[str, Any]:
    """Params with every reference to a run (a prefix or tail of its id, in a string, a list or a dict) written
    as the whole id (``store/runrefs.py``)."""
    from blase_tui.store import runrefs

    return {key: runrefs.resolve(store, key, value, where=f"param `{key}` of step `{step}`")
            for key, value in params.items()}


def run_step(
    project: Project,
    request: StepRequest,
    *,
    steps: dict[str, StepInfo] | None = None,
    out: TextIO | None = None,
) -> StepOutcome:
    """Run ``request.step`` and record everything; returns the outcome (never raises for a failing step, only
    for configuration problems and lock contention, as :class:`BlaseError`)."""
    out = out or sys.stderr
    if request.resume_any and not request.resume:
        request = replace(request, resume=True)
    if steps is None and _plain_request(request):
        from blase_tui.core import static_steps

        known = static_steps.step_info(project, request.step)
        if known is not None:
            try:
                outcome = _up_to_date(project, request, known, out)
            except (DiskFull, OSError) as exc:
                raise _disk_full(exc, known.name, project) from None
            if outcome is not None:  # up to date: the project's module was never imported
                return outcome
    info = project.get_step(request.step, steps)
    if request.params is None:
        for line in misspelt_configured(info, project.config.step_params(info.name)):
            say(out, line)
    params, budget = _params_and_budget(project, request, info)
    try:
        params = resolve_run_params(project.store, info.name, params)
        lock = StepLock(project.locks_dir, info.name).acquire()
        # Steps use paths relative to the project root (the seed's convention), wherever blase was started.
        cwd = os.getcwd()
        os.chdir(project.root)
        try:
            if request.resume:  # the checkpoint's params against these, before anything is recorded
                params = resume_mod.check_params(project.store, info.name, params, any_params=request.resume_any,
                                                 out=out)
            return _run_locked(project, request, info, params, budget, out)
        finally:
            os.chdir(cwd)
            lock.release()
    except (DiskFull, OSError) as exc:
        raise _disk_full(exc, info.name, project) from None


def _disk_full(exc: OSError, step: str, project: Project) -> Exception:
    """blase's own writes failing (the step's own are caught as its failure): a full disk is one line naming the
    step and the disk; any other error goes on as it is."""
    if not isinstance(exc, DiskFull) and exc.errno != errno.ENOSPC:
        return exc
    where = getattr(exc, "filename", None) or project.root
    return DiskFull(f"step `{step}` could not be recorded: no space left on the disk holding {where}"
                    f" ({str(exc).split(' (')[0] if isinstance(exc, DiskFull) else exc.strerror}); free some"
                    " space and run it again.")


def _params_and_budget(project: Project, request: StepRequest, info: StepInfo) -> tuple[dict[str, Any], int]:
    """The execution's params (given by another driver, else defaults, blase.toml and ``--set``) and its memory
    budget (a ``memory_budget`` param, else the project's)."""
    params = as_sets(info, dict(request.params) if request.params is not None
                     else resolve_params(info, project.config.step_params(info.name), request.overrides))
    budget = (parse_bytes(params["memory_budget"], what=f"[steps.{info.name}] memory_budget")
              if "memory_budget" in params else project.config.memory_budget)
    return params, budget


def _plain_request(request: StepRequest) -> bool:
    """A request an up-to-date step can answer without importing the project: no run opened, joined or closed,
    nothing forced, resumed or given as a script or as params from another driver."""
    return not (request.force or request.resume or request.start_run or request.end_run or request.script
                or request.params is not None)


def _up_to_date(project: Project, request: StepRequest, info: StepInfo, out: TextIO) -> StepOutcome | None:
    """The outcome of ``request`` when an earlier execution with the same signature can be reused outside any
    open run, found with ``info`` known from the source (core/static_steps.py); None otherwise (then the engine
    imports the module and goes its usual way, which finds the same)."""
    store = project.store
    if not reuse_allowed(project, info) or store.open_explicit_run() is not None:
        return None
    params, budget = _params_and_budget(project, request, info)
    params = resolve_run_params(store, info.name, params)
    lock = StepLock(project.locks_dir, info.name).acquire()
    try:
        execution = StepExecution(project, info.name, params=params, memory_budget=budget,
                                  func_hash=function_hash(info.func), func=info.func, out=out)
        prev = store.find_reusable(execution.signature()[0].digest, need_inputs=info.reuse is not True)
        if prev is None or store.open_explicit_run() is not None:
            return None
        for line in misspelt_configured(info, project.config.step_params(info.name)):
            say(out, line)
        return _reused(store, info.name, store.producer(prev), request, same_run=False, out=out)
    finally:
        lock.release()


def _reused(store: Any, step: str, producer: Any, request: StepRequest, *, same_run: bool,
            out: TextIO) -> StepOutcome:
    """Up to date outside an explicit run: nothing runs and no run is made, so `runs find --latest` keeps naming
    the run that computed the outputs and a chain of steps run again executes nothing; inside the open run that
    computed them, the run already holds that execution: no second one refers to it."""
    run = store.get_run(producer.run_id)
    whose = (f"the open run {producer.run_id} computed them in an earlier execution of `{step}`"
             if same_run else f"its outputs are those of run {producer.run_id}")
    message = (f"step `{step}` is up to date: nothing ran; {whose}"
               " (same code, params, environment and inputs). Use --force to run it again.")
    if request.run_name and run is not None:
        run = _name_producer(store, run, request.run_name, out)
    return StepOutcome(step=step, status=SUCCEEDED, exit_code=EXIT_OK, run_id=producer.run_id,
                       step_run_id=producer.id, folder=store.run_dir(producer.run_id) / producer.folder,
                       message=message, run_status=run.status if run else SUCCEEDED,
                       reused_from=producer.id, ran=False)


def _run_locked(
    project: Project, request: StepRequest, info: StepInfo, params: dict[str, Any], budget: int, out: TextIO
) -> StepOutcome:
    store = project.store
    if request.end_run and not request.start_run:
        for run_id in store.recover_dead():
            say(out, f"blase: run {run_id} was left open by a process that died; marked it interrupted.")
        open_run = store.open_explicit_run()
        running = store.running_steps(open_run.id) if open_run is not None else []
        if running:
            raise ConfigError(
                f"step `{running[0]}` of run {open_run.id} is still running; --end-run would close the run under"
                f" it: wait for it to finish, or run this step without --end-run and close the run later with"
                f" `blase runs close {open_run.id}`."
            )
    execution = StepExecution(
        project, info.name, params=params, memory_budget=budget, func_hash=function_hash(info.func),
        func=info.func,
        start_run=request.start_run, end_run=request.end_run, run_name=request.run_name, resume=request.resume,
        quiet=request.quiet, out=out, executor={"name": request.executor, "workers": request.workers},
        script=request.script,
        invocation={"how": "step", "step": info.name, "params": params, "start_run": request.start_run,
                    "end_run": request.end_run, "run_name": request.run_name},
    )
    prev = None
    if not (request.force or request.resume) and reuse_allowed(project, info):
        prev = store.find_reusable(execution.signature()[0].digest, need_inputs=info.reuse is not True)
    open_run = store.open_explicit_run() if prev is not None and not request.start_run else None
    producer = store.producer(prev) if prev is not None else None
    same_run = producer is not None and open_run is not None and producer.run_id == open_run.id
    if prev is not None and not request.start_run and (open_run is None or (same_run and not request.end_run)):
        assert producer is not None
        return _reused(store, info.name, producer, request, same_run=same_run, out=out)
    execution.begin()
    ctx = execution.ctx
    status, exit_code, message, reused_from = RUNNING, EXIT_OK, "", None
    finishing = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        # Only the first signal raises: a second one while the first unwinds the step would cut its `finally`
        # blocks short (a checkpoint being saved), or escape the handler below before `finishing` is set.
        if not finishing.is_set() and not isinstance(sys.exc_info()[1], StepInterrupted):
            raise StepInterrupted(signum)

    old_handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in TERMINATING:
            old_handlers[sig] = signal.signal(sig, on_signal)
        if not _EXIT_HOOK:  # before the step's imports register theirs, so that it runs after them (LIFO)
            _EXIT_HOOK.append(True)
            atexit.register(_ignore_signals_at_exit)
    try:
        execution.record_signature()
        if info.sets:
            store.set_tags(execution.run_id, {SETS_TAG + info.name: ",".join(sorted(info.sets))})
        if prev is not None:
            # inside an explicit run: the run holds a reference to the execution that computed the outputs
            producer = store.producer(prev)
            store.copy_step_records(producer.id, execution.run_id, execution.step_run_id, execution.folder)
            reused_from = producer.id
            status = SUCCEEDED
            message = (
                f"step `{info.name}` is up to date: nothing ran; run {execution.run_id} refers to its outputs in run"
                f" {producer.run_id} (same code, params, environment and inputs). Use --force to run it again."
            )
            execution.events.emit("log", level="info", message=message)
        else:
            context_mod._set_active(ctx)
            try:
                info.func(**call_args(info, params, ctx))
            finally:
                context_mod._set_active(None)
            status = SUCCEEDED
    except SystemExit as exc:
        finishing.set()  # the step called sys.exit: 0 (or None) is success, anything else a failure
        if exc.code in (None, 0):
            status = SUCCEEDED
        else:
            status, exit_code = FAILED, EXIT_FAILED
            message = f"step `{info.name}` failed: it called sys.exit({exc.code!r})."
    except (StepInterrupted, KeyboardInterrupt) as exc:
        finishing.set()
        status, exit_code = INTERRUPTED, EXIT_INTERRUPTED
        signum = getattr(exc, "signum", signal.SIGINT)
        message = f"step `{info.name}` was interrupted ({signal.Signals(signum).name}); marked it interrupted."
        checkpoints = execution.folder / "checkpoints"
        if checkpoints.is_dir() and any(checkpoints.iterdir()):  # Train left one after its last whole epoch
            message += f" It left a checkpoint: `blase step {info.name} --resume` continues from it."
    except BaseException as exc:  # noqa: BLE001 - a failing step must be recorded whatever it raised
        finishing.set()
        status, exit_code = FAILED, EXIT_FAILED
        message = failure_message(info.name, exc, execution)
    finally:
        finishing.set()
        try:
            # Finalise even if a second signal arrives (finish() ignores them): the store must say what happened.
            run_status = execution.finish(status, exit_code, message, reused_from=reused_from).run_status
        finally:
            for sig_num, old in old_handlers.items():
                signal.signal(sig_num, _leave_interrupted if status == INTERRUPTED else old)
            if status == INTERRUPTED:
                _INTERRUPTED.append(info.name)

    if status == SUCCEEDED and not message:
        message = f"step `{info.name}` succeeded in {execution.elapsed:.1f} s (run {execution.run_id}"
        message += ", still open)" if run_status == RUNNING else ")"
    return StepOutcome(
        step=info.name, status=status, exit_code=exit_code, run_id=execution.run_id,
        step_run_id=execution.step_run_id, folder=execution.folder, message=message, run_status=run_status,
        reused_from=reused_from,
    )


TERMINATING = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_INTERRUPTED: list[str] = []  # the steps of this process that were interrupted (their end is recorded)
_EXIT_HOOK: list[bool] = []


def _leave_interrupted(_signum: int, _frame: Any) -> None:
    """A signal after an interrupted step's end is recorded: the process is ending on the first one; leave now
    with 130, as the records say, not die by the signal (143, 129: cron would read a crash)."""
    hard_exit(EXIT_INTERRUPTED)


def _ignore_signals_at_exit() -> None:
    """Python puts back the default action of every signal it handles before it tears its modules down, which
    takes tens of milliseconds more: after an interrupted step, ignore them instead, so that the exit stays 130."""
    if _INTERRUPTED:
        for sig in TERMINATING:
            signal.signal(sig, signal.SIG_IGN)


def _name_producer(store: RunStore, run: Run, name: str, out: TextIO) -> Run | None:
    """``--name`` on an up-to-date step names the run that computed its outputs when that run has no name yet;
    one that has another keeps it, and the line says how to rename it. Returns the run as it is now."""
    if run.name == name:
        return run
    if run.name:
        say(out, f"blase: --name {name} not used: nothing ran, and run {run.id}, which computed the outputs, is"
                 f" named {run.name}; `blase runs edit {run.id} --name {name}` renames it.")
        return run
    store.edit_run(run.id, name=name)
    say(out, f"blase: run {run.id}, which computed the outputs, had no name: named it {name}.")
    return store.get_run(run.id)


def failure_message(step: str, exc: BaseException, execution: StepExecution) -> str:
    """The one line a failed step ends with; the traceback goes to the step's log and events."""
    full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC
    where = "details" if isinstance(exc, BlaseError) or full else "traceback"
    line = execution.failure(exc)
    if execution.log_lost:
        return f"{line} (its {where} could not be written to {execution.log_path}: {execution.log_lost})."
    return f"{line} ({where} in {execution.log_path})."
