"""The step engine: runs one step of a project inside a tracked run. `blase step`, `python main.py --step` and
the TUI (through a `blase step` subprocess) all end up here."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from blase_tui.core import context as context_mod
from blase_tui.core import procs
from blase_tui.core.config import parse_bytes
from blase_tui.core.events import EventWriter
from blase_tui.core.lock import StepLock
from blase_tui.core.project import Project
from blase_tui.core.resources import ResourceSampler
from blase_tui.core.signature import (
    Signature,
    code_hash,
    environment,
    environment_hash,
    function_hash,
    git_state,
)
from blase_tui.core.steps import StepInfo, call_args, resolve_params
from blase_tui.core.tracker import RunTracker
from blase_tui.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    BlaseError,
    ConfigError,
    StepInterrupted,
)
from blase_tui.store.hashing import fingerprint, hash_json
from blase_tui.store.runstore import FAILED, INTERRUPTED, RUNNING, SUCCEEDED, RunStore


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
    quiet: bool = False  # the step's log lines go to its log and events only, not to the terminal


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


class _Tee:
    """Copies what the step prints to the terminal, the step's log file and the event stream."""

    def __init__(self, original: TextIO, log_file: TextIO, events: EventWriter, stream: str) -> None:
        self._original = original
        self._log = log_file
        self._events = events
        self._stream = stream
        self._partial = ""

    def write(self, text: str) -> int:
        self._original.write(text)
        self._log.write(text)
        self._partial += text
        if "\n" in self._partial:
            *lines, self._partial = self._partial.split("\n")
            for line in lines:
                self._events.emit("log", level=self._stream, message=line)
        return len(text)

    def flush(self) -> None:
        self._original.flush()
        self._log.flush()

    def isatty(self) -> bool:
        return self._original.isatty()

    def fileno(self) -> int:
        return self._original.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


class _EventLogHandler(logging.Handler):
    def __init__(self, events: EventWriter, log_file: TextIO, echo: TextIO | None) -> None:
        super().__init__()
        self._events = events
        self._log = log_file
        self._echo = echo
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            self._log.write(line + "\n")
            if self._echo is not None:
                self._echo.write(line + "\n")
            self._events.emit("log", level=record.levelname.lower(), message=record.getMessage())
        except Exception:
            self.handleError(record)


def _say(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()


def find_reusable(store: RunStore, digest: str) -> Any | None:
    """A succeeded execution with the same signature whose inputs are unchanged and whose outputs still exist.
    Executions that recorded no outputs are never reused: there would be nothing to reuse."""
    for prev in store.db.query(
        "SELECT * FROM step_runs WHERE signature = ? AND status = ? ORDER BY id DESC LIMIT 5", (digest, SUCCEEDED)
    ):
        arts = store.db.query("SELECT hash FROM artifacts WHERE step_run_id = ?", (prev["id"],))
        sets = store.db.query("SELECT role, path, fingerprint FROM datasets WHERE step_run_id = ?", (prev["id"],))
        outputs = [s for s in sets if s["role"] == "output"]
        if not arts and not outputs:
            continue
        if not all(store.cas.has(a["hash"]) for a in arts):
            continue
        if all(s["path"] and s["fingerprint"] == fingerprint(store.root / s["path"]) for s in sets):
            return prev
    return None


def _reuse(store: RunStore, prev: Any, run_id: str, step_run_id: int, folder: Path) -> None:
    arts = store.db.query("SELECT name, hash, size FROM artifacts WHERE step_run_id = ?", (prev["id"],))
    for a in arts:
        store.cas.link_into(a["hash"], folder / "artifacts" / a["name"])
    store.add_artifacts(run_id, step_run_id, [(a["name"], a["hash"], a["size"]) for a in arts])
    store.log_metrics(
        (run_id, step_run_id, m["key"], m["value"], m["iteration"], m["ts"])
        for m in store.db.query("SELECT key, value, iteration, ts FROM metrics WHERE step_run_id = ? ORDER BY rowid",
                                (prev["id"],))
    )
    for d in store.db.query("SELECT * FROM datasets WHERE step_run_id = ?", (prev["id"],)):
        store.add_dataset(run_id, step_run_id, role=d["role"], name=d["name"], path=d["path"], digest=d["hash"],
                          fingerprint=d["fingerprint"], records=d["records"], size=d["bytes"])


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
    info = project.get_step(request.step, steps)
    params = resolve_params(info, project.config.step_params(info.name), request.overrides)
    budget = (
        parse_bytes(params["memory_budget"], what=f"[steps.{info.name}] memory_budget")
        if "memory_budget" in params else project.config.memory_budget
    )
    lock = StepLock(project.locks_dir, info.name).acquire()
    # Steps use paths relative to the project root (the seed's convention), wherever blase was started.
    cwd = os.getcwd()
    os.chdir(project.root)
    try:
        return _run_locked(project, request, info, params, budget, out)
    finally:
        os.chdir(cwd)
        lock.release()


def _run_locked(
    project: Project, request: StepRequest, info: StepInfo, params: dict[str, Any], budget: int, out: TextIO
) -> StepOutcome:
    store = project.store
    for run_id in store.recover_dead():
        _say(out, f"blase: run {run_id} was left open by a process that died; marked it interrupted.")

    pid, pid_started = os.getpid(), procs.process_started()
    open_run = store.open_explicit_run()
    if request.start_run and open_run is not None:
        raise ConfigError(
            f"run {open_run['id']} is still open (started with --start-run); end it first with"
            f" `blase step STEP --end-run` or `blase runs close {open_run['id']}`."
        )
    new_run = open_run is None
    if new_run:
        run_id = store.create_run(
            name=request.run_name, explicit=request.start_run, owner_pid=pid, owner_started=pid_started
        )
    else:
        run_id = open_run["id"]
        store.set_run_owner(run_id, pid, pid_started)
    explicit = request.start_run or not new_run

    step_run_id, folder = store.begin_step(run_id, info.name, pid=pid, pid_started=pid_started)
    events = EventWriter(folder / "events.jsonl")
    log_file = open(folder / "log.txt", "a", encoding="utf-8", buffering=1)
    sampler = ResourceSampler(events.emit).start()
    events.emit("status", status=RUNNING, step=info.name, run_id=run_id, step_run_id=step_run_id, pid=pid)

    logger = logging.getLogger(f"blase.step.{info.name}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = _EventLogHandler(events, log_file, None if request.quiet else sys.stderr)
    logger.addHandler(handler)

    tracker = RunTracker(store, run_id, step_run_id=step_run_id, folder=folder, events=events)
    ctx = context_mod.StepContext(
        step=info.name, params=params, project=project, tracker=tracker, events=events, log=logger,
        memory_budget=budget,
        resume=request.resume,
    )

    status, exit_code, message, reused_from = RUNNING, EXIT_OK, "", None
    finishing = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if not finishing.is_set():
            raise StepInterrupted(signum)

    old_handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            old_handlers[sig] = signal.signal(sig, on_signal)
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout = _Tee(old_out, log_file, events, "stdout")  # type: ignore[assignment]
    sys.stderr = _Tee(old_err, log_file, events, "stderr")  # type: ignore[assignment]
    started = time.monotonic()
    try:
        env = environment(project.cache_dir)
        git = git_state(project.root)
        if new_run:
            store.record_environment(run_id, env, git)
        sig = Signature(
            step=info.name,
            func_hash=function_hash(info.func),
            code_hash=code_hash(project.root, project.config.entry, project.config.scripts),
            params_hash=hash_json(params),
            env_hash=environment_hash(env),
        )
        store.set_step_signature(step_run_id, sig, sig.digest, git)
        if params:
            store.log_params(run_id, params, step_run_id)

        prev = None if (request.force or request.resume) else find_reusable(store, sig.digest)
        if prev is not None:
            _reuse(store, prev, run_id, step_run_id, folder)
            reused_from = prev["id"]
            status = SUCCEEDED
            message = (
                f"step `{info.name}` is up to date (same code, params, environment and inputs as run"
                f" {prev['run_id']}); reused its outputs. Use --force to run it again."
            )
            events.emit("log", level="info", message=message)
        else:
            context_mod._set_active(ctx)
            try:
                info.func(**call_args(info, params, ctx))
            finally:
                context_mod._set_active(None)
            status = SUCCEEDED
    except (StepInterrupted, KeyboardInterrupt) as exc:
        finishing.set()
        status, exit_code = INTERRUPTED, EXIT_INTERRUPTED
        signum = getattr(exc, "signum", signal.SIGINT)
        message = f"step `{info.name}` was interrupted ({signal.Signals(signum).name}); marked it interrupted."
        log_file.write(f"\n{message}\n")
    except BaseException as exc:  # noqa: BLE001 - a failing step must be recorded whatever it raised
        finishing.set()
        status, exit_code = FAILED, EXIT_FAILED
        tb = traceback.format_exc()
        log_file.write(tb)
        events.emit("log", level="error", message=tb)
        rel_log = (folder / "log.txt").relative_to(project.root)
        text = str(exc).rstrip().rstrip(".")
        if isinstance(exc, BlaseError):
            message = f"step `{info.name}` failed: {text} (details in {rel_log})."
        else:
            message = f"step `{info.name}` failed: {type(exc).__name__}: {text} (traceback in {rel_log})."
    finally:
        finishing.set()
        sys.stdout, sys.stderr = old_out, old_err
        for sig_num, old in old_handlers.items():
            signal.signal(sig_num, old)
        logger.removeHandler(handler)
        # Finalise even if a second signal arrives: the store must say what happened.
        try:
            tracker.close()
            tracker.ingest_artifact_dir()
        except Exception as exc:  # the step's own result stands; report the bookkeeping failure
            log_file.write(f"blase: could not save all metrics or artifacts: {exc}\n")
        sampler.stop()
        events.emit("status", status=status, step=info.name, exit_code=exit_code, elapsed=time.monotonic() - started)
        events.close()
        store.finish_step(
            step_run_id, status, exit_code=exit_code, error=message if status != SUCCEEDED else None,
            peak_rss=sampler.peak_rss or None, cpu_seconds=sampler.cpu_seconds(), skipped_from=reused_from,
        )
        close = (not explicit) or request.end_run or ctx.end_run_requested or status == INTERRUPTED
        if close:
            run_status = store.close_run(run_id, None if explicit else status)
        else:
            store.set_run_owner(run_id, None, None)
            store.write_run_json(run_id)
            run_status = RUNNING
        log_file.close()

    if status == SUCCEEDED and not message:
        elapsed = time.monotonic() - started
        message = f"step `{info.name}` succeeded in {elapsed:.1f} s (run {run_id}"
        message += ", still open)" if run_status == RUNNING else ")"
    return StepOutcome(
        step=info.name, status=status, exit_code=exit_code, run_id=run_id, step_run_id=step_run_id,
        folder=folder, message=message, run_status=run_status, reused_from=reused_from,
    )
