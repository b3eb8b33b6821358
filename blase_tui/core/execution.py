"""One step execution from its first record to its last: the run it joins, its folder, log, events, resource
samples, signature and params, and how it ends. Two drivers share it, so both give the same records:

- the step engine (``blase step NAME``, ``blase_tui.main()``, the TUI's launches), which wraps a call of an
  ``@step`` function;
- a *script step* (``core/script_step.py``): a project script that uses blase's modules or ``Track`` without
  ``blase step`` — seed 000's own ``main()`` run as ``python main.py --step etl`` — which begins an execution
  on its first module call and ends it when the script ends its run or exits.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from blase_tui.core import context as context_mod
from blase_tui.core import plugins
from blase_tui.core.codeuse import CodeUse, imported_since, part_file, step_code
from blase_tui.core.project import Project
from blase_tui.core.resources import ResourceSampler
from blase_tui.core.signature import (
    Signature,
    environment,
    environment_hash,
    git_state,
    project_code_files,
)
from blase_tui.core.tracker import RunTracker
from blase_tui.errors import BlaseError, ConfigError, StepInterrupted
from blase_tui.store import procs, runrefs
from blase_tui.store.db import DiskFull
from blase_tui.store.events import EventWriter
from blase_tui.store.hashing import hash_json
from blase_tui.store.runstore import CODE_IMPORTED, CODE_LOADED, INTERRUPTED, RUNNING, SUCCEEDED

if TYPE_CHECKING:
    import logging


class _Tee:
    """Copies what the step prints to the terminal, the step's log file and the event stream."""

    def __init__(self, original: TextIO, log_file: TextIO, events: EventWriter, stream: str) -> None:
        self._original: TextIO | None = original
        self._saved = original
        self._log = log_file
        self._events = events
        self._stream = stream
        self._partial = ""

    def write(self, text: str) -> int:
        if self._original is not None:
            try:
                self._original.write(text)
            except (BrokenPipeError, ValueError):
                # the reader went away (`blase step x | head -1`): the step goes on, its log keeps everything
                self._drop_original()
        if not self._log.closed:
            self._log.write(text)
        self._partial += text
        if "\n" in self._partial:
            *lines, self._partial = self._partial.split("\n")
            for line in lines:
                self._events.emit("log", level=self._stream, message=line)
        return len(text)

    def flush(self) -> None:
        if self._original is not None:
            try:
                self._original.flush()
            except (BrokenPipeError, ValueError):
                self._drop_original()
        if not self._log.closed:
            self._log.flush()

    def _drop_original(self) -> None:
        """Stop echoing, and point the stream at /dev/null (``reader_gone``)."""
        self._original = None
        reader_gone(self._saved)

    def isatty(self) -> bool:
        return self._original is not None and self._original.isatty()

    def fileno(self) -> int:
        return self._saved.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._saved, name)


def _event_log_handler(events: EventWriter, log_file: TextIO, echo: TextIO | None) -> logging.Handler:
    """The handler of a step's logger: each record to the step's log, its events and (unless quiet) stderr.
    Made on the step's first log line, so that a step that logs nothing never imports logging (~4 ms)."""
    import logging

    class _EventLogHandler(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self._echo = echo
            self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))

        def emit(self, record: logging.LogRecord) -> None:
            try:
                line = self.format(record)
                log_file.write(line + "\n")
                events.emit("log", level=record.levelname.lower(), message=record.getMessage())
                if self._echo is not None:
                    try:
                        self._echo.write(line + "\n")
                    except (BrokenPipeError, ValueError):  # the terminal's reader went away: the log has the line
                        reader_gone(self._echo)
                        self._echo = None
            except Exception:
                self.handleError(record)

    return _EventLogHandler()


def say(out: TextIO, text: str) -> None:
    """One line to ``out``; nothing (and no error) once its reader went away (``reader_gone``)."""
    try:
        out.write(text + "\n")
        out.flush()
    except (BrokenPipeError, ValueError):
        reader_gone(out)


def reader_gone(stream: TextIO) -> None:
    """The reader of ``stream`` went away (`blase step x 2>&1 | head -1`): point its file at /dev/null, so that
    later writes, and Python's own flush at exit, neither fail nor turn the step's exit code into 1 or 120; what
    the step printed is in its log."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


@dataclass
class Finished:
    status: str
    run_status: str


class StepExecution:
    """A running execution of ``step`` in ``project``. :meth:`begin` opens it (joining the open explicit run,
    or opening one with ``start_run``, or a run of its own); :meth:`finish` records how it ended and closes the
    run when it should. Between the two, ``ctx`` is the active step context, so every module records into it."""

    def __init__(
        self,
        project: Project,
        step: str,
        *,
        params: dict[str, Any] | None = None,
        memory_budget: int | None = None,
        func_hash: str,
        func: Any = None,
        start_run: bool = False,
        end_run: bool = False,
        run_name: str | None = None,
        resume: bool = False,
        quiet: bool = False,
        out: TextIO | None = None,
        executor: dict[str, Any] | None = None,
        defer_explicit: bool = False,
        script: Path | None = None,
        invocation: dict[str, Any] | None = None,
    ) -> None:
        self.project = project
        self.step = step
        self.params = dict(params or {})
        self.memory_budget = memory_budget if memory_budget is not None else project.config.memory_budget
        self.func_hash = func_hash
        self.func = func  # the step function, whose code (and what it reaches) is the step's code
        self.start_run = start_run
        self.end_run = end_run
        self.run_name = run_name
        self.resume = resume
        self.executor = {k: v for k, v in (executor or {}).items() if v is not None}
        self.quiet = quiet
        self.out = out or sys.stderr
        # Track.start_run(): the run becomes the project's explicit run (others join it) only when this process
        # leaves it open; until then it is this process's alone, so parallel scripts do not block each other.
        self.defer_explicit = defer_explicit
        self.code_extra = (script,) if script is not None else ()  # a script step's own file is its code too
        # how the step was started, kept in its folder as ``command.json`` (``runs reproduce`` starts it so again)
        self.invocation = invocation
        self._signature: tuple[Signature, dict[str, Any], Any] | None = None
        self._code: CodeUse | None = None
        self.modules_before: set[str] = set()
        self.started = 0.0
        self.finished: Finished | None = None
        self.log_lost: str | None = None  # why the step's log could not take its traceback (a full disk)

    # ---------------------------------------------------------------- begin
    @property
    def logger(self) -> logging.Logger:
        """The step's logger (``ctx.log``), made on first use."""
        if self._logger is None:
            import logging

            logger = logging.getLogger(f"blase.step.{self.step}")
            logger.setLevel(logging.INFO)
            logger.propagate = False
            self.handler = _event_log_handler(self.events, self.log_file, None if self.quiet else sys.stderr)
            logger.addHandler(self.handler)
            self._logger = logger
        return self._logger

    def begin(self) -> StepExecution:
        project, store = self.project, self.project.store
        for run_id in store.recover_dead():
            say(self.out, f"blase: run {run_id} was left open by a process that died; marked it interrupted.")
        pid, pid_started = os.getpid(), procs.process_started()
        if self.start_run:
            run_id = store.create_run(name=self.run_name, explicit=not self.defer_explicit, owner_pid=pid,
                                      owner_started=pid_started, exclusive=True)
            if run_id is None:
                open_run = store.open_explicit_run()
                open_id = open_run.id if open_run is not None else "?"
                raise ConfigError(
                    f"run {open_id} is still open (started with --start-run); end it first with"
                    f" `blase step STEP --end-run` or `blase runs close {open_id}`."
                )
            self.new_run = True
        else:
            open_run = store.open_explicit_run()
            self.new_run = open_run is None
            if self.new_run:
                run_id = store.create_run(name=self.run_name, owner_pid=pid, owner_started=pid_started)
            else:
                run_id = open_run.id
                store.set_run_owner(run_id, pid, pid_started)
                if self.run_name and self.run_name != open_run.name:
                    if open_run.name:  # a step joining an open run does not rename it behind the user's back
                        say(self.out, f"blase: --name {self.run_name} not used: this step joins the open run"
                                      f" {run_id}, named {open_run.name}; `blase runs edit {run_id} --name"
                                      f" {self.run_name}` renames it.")
                    else:
                        store.edit_run(run_id, name=self.run_name)
        self.run_id = run_id
        self.explicit = self.start_run or not self.new_run

        self.step_run_id, self.folder = store.begin_step(run_id, self.step, pid=pid, pid_started=pid_started)
        store.ensure_reserve()
        if self.invocation is not None:
            store.write_step_command(self.folder, self.invocation)
        self.events = EventWriter(self.folder / "events.jsonl")
        self.log_file = open(self.folder / "log.txt", "a", encoding="utf-8", buffering=1)
        self.sampler = ResourceSampler(self.events.emit).start()
        self.events.emit("status", status=RUNNING, step=self.step, run_id=run_id, step_run_id=self.step_run_id,
                         pid=pid)
        self._logger: logging.Logger | None = None
        self.tracker = RunTracker(store, run_id, step_run_id=self.step_run_id, folder=self.folder, events=self.events)
        self.ctx = context_mod.StepContext(
            step=self.step, params=self.params, project=project, tracker=self.tracker, events=self.events,
            log=lambda: self.logger, memory_budget=self.memory_budget, resume=self.resume, executor=self.executor,
        )
        self.modules_before = set(sys.modules)  # what the step imports from here on is its code too
        self.old_out, self.old_err = sys.stdout, sys.stderr
        sys.stdout = _Tee(self.old_out, self.log_file, self.events, "stdout")  # type: ignore[assignment]
        sys.stderr = _Tee(self.old_err, self.log_file, self.events, "stderr")  # type: ignore[assignment]
        self.started = time.monotonic()
        return self

    @property
    def code(self) -> CodeUse:
        """The parts of the project's code this step uses (``core/codeuse.py``)."""
        if self._code is None:
            script = self.code_extra[0] if self.code_extra else None
            entry = script or self.project.root / self.project.config.entry
            self._code = step_code(self.project.root, self.func, script=script, entry=entry)
        return self._code

    def signature(self) -> tuple[Signature, dict[str, Any], Any]:
        """What decides this execution's result, computed without writing anything: ``(signature,
        environment, git state)``. The engine looks for a reusable earlier execution with it before any run is
        opened."""
        if self._signature is None:
            env = environment(self.project.cache_dir)
            git = git_state(self.project.root)
            sig = Signature(
                step=self.step,
                func_hash=self.func_hash,
                code_hash=self.code.digest,
                # a run given by id counts by what it made: another run that made the same is the same input
                params_hash=hash_json(runrefs.by_content(self.project.store, self.params)),
                env_hash=environment_hash(env),
            )
            self._signature = (sig, env, git)
        return self._signature

    def record_signature(self) -> str:
        """Environment, git state, signature and params; returns the signature digest."""
        store = self.project.store
        sig, env, git = self.signature()
        if self.new_run:
            store.record_environment(self.run_id, env, git)
        store.set_step_signature(self.step_run_id, sig, sig.digest, git)
        store.set_step_code(self.step_run_id, self.code.parts)
        if self.code.whole_project:  # say why any edit anywhere reruns this step
            self.logger.info("blase: every project file counts as the code of step `%s`: %s", self.step,
                             self.code.reason)
        if self.params:
            store.log_params(self.run_id, self.params, self.step_run_id)
        return sig.digest

    # --------------------------------------------------------------- finish
    def _record_imported_code(self) -> None:
        """The project modules the step imported as it ran that the analysis did not see (part of its code), and
        every project module loaded in its process (kept with the run, so it can be reproduced: an entry module
        that imports a helper at the top needs it to import at all)."""
        store, root = self.project.store, self.project.root
        loaded = imported_since(set(), root, names=True)
        new = {name for name in loaded if name not in self.modules_before}
        store.set_step_code(self.step_run_id, {part: digest for name, (part, digest) in loaded.items()
                                               if name in new and part not in self.code.parts}, how=CODE_IMPORTED)
        store.set_step_code(self.step_run_id, dict(loaded.values()), how=CODE_LOADED)

    def _run_ending(self) -> None:
        """What the step asked to be done as it ends (``recording.at_end``): a failure there is one line in the
        log, never a failed step."""
        ctx = getattr(self, "ctx", None)
        if ctx is None or not ctx.ending:
            return
        previous = context_mod.active()
        context_mod._set_active(ctx)  # the step's context, as while it ran (its artifact folder)
        try:
            for fn in ctx.ending:
                try:
                    fn()
                except Exception as exc:  # a plot that fails must not lose the step's results
                    self.logger.warning("blase: %s failed at the end of the step: %s",
                                        getattr(fn, "__qualname__", fn), exc)
        finally:
            ctx.ending = []
            context_mod._set_active(previous)

    def finish(self, status: str, exit_code: int, message: str = "", *, reused_from: int | None = None) -> Finished:
        """Record the end of the execution (whatever else fails on the way) and close the run when this step
        ends it: a run of its own, ``--end-run`` / ``end_run()``, or an interruption."""
        if self.finished is not None:
            return self.finished
        with _signals_held():
            return self._finish(status, exit_code, message, reused_from)

    def _finish(self, status: str, exit_code: int, message: str, reused_from: int | None) -> Finished:
        self._run_ending()
        if context_mod.active() is self.ctx:
            context_mod._set_active(None)
        if isinstance(sys.stdout, _Tee):
            sys.stdout = self.old_out
        if isinstance(sys.stderr, _Tee):
            sys.stderr = self.old_err
        if self._logger is not None:
            self._logger.removeHandler(self.handler)
        store = self.project.store
        problems: list[str] = []

        def attempt(what: str, fn: Any) -> Any:
            # bookkeeping that may fail (a full disk) without stopping the rest of the ending
            try:
                return fn()
            except (OSError, BlaseError) as exc:
                problems.append(f"{what}: {exc}")
                return None

        if status != SUCCEEDED and message:
            attempt("the log", lambda: self.log_file.write(f"\n{message}\n"))
        attempt("metrics", self.tracker.close)
        attempt("the code it imported", self._record_imported_code)
        ingested = attempt("artifacts", self.tracker.ingest_artifact_dir)
        if ingested and ingested[1]:
            attempt("the log", lambda: self.log_file.write(
                f"blase: left out links to folders in artifacts/ ({', '.join(ingested[1])}); copy the files there"
                " instead of linking them.\n"))
        self.sampler.stop()
        self.events.emit("status", status=status, step=self.step, exit_code=exit_code,
                         elapsed=time.monotonic() - self.started)
        attempt("events", self.events.close)
        attempt("the params hash", lambda: store.rehash_step_params(self.step_run_id))
        self._must(lambda: store.finish_step(
            self.step_run_id, status, exit_code=exit_code, error=message if status != SUCCEEDED else None,
            peak_rss=self.sampler.peak_rss or None, cpu_seconds=self.sampler.cpu_seconds(), skipped_from=reused_from,
        ))
        close = (not self.explicit) or self.end_run or self.ctx.end_run_requested or status == INTERRUPTED
        others = [s for s in store.running_steps(self.run_id) if s != self.step] if close and self.explicit else []
        if others and status != INTERRUPTED:
            # another step of the run is still running: closing now would end the run under it
            say(self.out, f"blase: run {self.run_id} stays open: step `{others[0]}` of it is still running; close"
                          f" it when that ends (`blase runs close {self.run_id}`).")
            close = False
        if not close and self.defer_explicit and self.new_run and not store.promote_explicit(self.run_id):
            open_run = store.open_explicit_run()
            say(self.out, f"blase: run {open_run.id if open_run else '?'} was opened meanwhile and is the open run;"
                          f" closed run {self.run_id} instead of leaving it open.")
            close = True
        if close:
            attempt("the code snapshot", lambda: snapshot_code(self.project, self.run_id, self.code_extra))
            run_status = self._must(lambda: store.close_run(self.run_id, None if self.explicit else status))
            attempt("the plugins' run_closed hooks", lambda: plugins.after_run_closed(
                self.project.root, self.run_id, self.project.config.plugins))
        else:
            self._must(lambda: store.set_run_owner(self.run_id, None, None))
            attempt("run.json", lambda: store.write_run_json(self.run_id))
            run_status = RUNNING
        if problems:
            attempt("the log", lambda: self.log_file.write("".join(f"blase: could not save {p}\n" for p in problems)))
            say(self.out, f"blase: step `{self.step}` of run {self.run_id}: could not save {problems[0]}")
        attempt("the log", self.log_file.close)
        self.finished = Finished(status, run_status)
        return self.finished

    def failure(self, exc: BaseException) -> str:
        """Write ``exc``'s traceback to the step's log and events; return the one line the step ends with
        (without where the details are)."""
        tb = "".join(traceback.format_exception(exc))
        try:
            self.log_file.write(tb)
            self.log_file.flush()
        except OSError as err:  # a full disk: the events and the store still get the one line, which says so
            self.log_lost = err.strerror or str(err)
        self.events.emit("log", level="error", message=tb)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return (f"step `{self.step}` failed: no space left on the disk holding"
                    f" {exc.filename or self.project.root} (run {self.run_id}); free some space and run it again")
        if isinstance(exc, StepInterrupted | KeyboardInterrupt):
            return f"step `{self.step}` was interrupted; marked it interrupted"
        text = str(exc).rstrip().rstrip(".")
        if isinstance(exc, BlaseError):
            return f"step `{self.step}` failed: {text}"
        return f"step `{self.step}` failed: {type(exc).__name__}: {text}"

    @property
    def log_path(self) -> Path:
        """The step's log, relative to the project."""
        return (self.folder / "log.txt").relative_to(self.project.root)

    def _must(self, fn: Any) -> Any:
        """A write the store needs to say how the step ended: on a full disk, the reserved space is released
        (``RunStore.release_reserve``) and the write tried again."""
        try:
            return fn()
        except (OSError, BlaseError) as exc:
            full = isinstance(exc, DiskFull) or isinstance(exc, OSError) and exc.errno == errno.ENOSPC
            if not full or not self.project.store.release_reserve():
                raise
            return fn()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


@contextmanager
def _signals_held() -> Iterator[None]:
    """While a step's end is being recorded, SIGINT, SIGTERM and SIGHUP are ignored: a second Ctrl-C or a
    impatient `kill` must not leave the run `running` with half its artifacts recorded."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in held.items():
            signal.signal(sig, handler)


def snapshot_code(project: Project, run_id: str, extra: tuple[Path, ...] = ()) -> None:
    """Keep the project's code with the run as it closes: the entry module, its scripts, and every project
    module its steps used (whatever ``scripts`` says, so ``runs reproduce`` has them), as run-level artifacts
    under ``code/``, stored once by content, so two runs' code can be compared file by file."""
    try:
        root = project.root.resolve()
        used = [(root / part_file(part)).resolve() for part in project.store.run_code_parts(run_id)]
        extra = (*extra, *(p for p in used if p.is_relative_to(root) and p.is_file()))
        files = project_code_files(project.root, project.config.entry, project.config.scripts, extra)
        project.store.snapshot_code(run_id, [(f.relative_to(project.root).as_posix(), f) for f in files])
    except OSError as exc:  # a vanished file must not fail the run's closing
        say(sys.stderr, f"blase: could not keep a copy of the project's code with run {run_id}: {exc}")
