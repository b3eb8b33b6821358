"""A project script that uses blase without ``blase step`` is a step execution too.

Seed 000's ``main.py`` is run as ``python main.py --step etl --start_run``, then ``--step train``, ...: its own
``main()`` calls the step function and ``Track(...).start_run()`` / ``end_run()``; no ``@step`` and no
``blase step`` are involved. For those records to be the ones ``blase step etl`` makes, the process's first
use of a module (or ``Track.start_run()``) begins a :class:`~blase_tui.core.execution.StepExecution`:

- named by the script's ``--step NAME`` argument, else by the script's file name (``train.py`` -> ``train``);
- in the open explicit run (``--start_run`` of an earlier process), a new explicit run when the script calls
  ``Track.start_run()``, else a run of its own;
- holding the step's lock, as ``blase step`` does (a second copy exits with code 3);
- with the step's log (what the script prints), events, resource samples, signature and params;
- ended by ``Track.end_run()`` (which then closes the run), or when the script exits: succeeded, failed (an
  uncaught exception or a non-zero ``sys.exit``) or interrupted (Ctrl-C, SIGTERM).

Only a script inside a project does this; notebooks, ``python -c`` and test runners keep the in-process
behaviour of ``Track``.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from blase_tui.core import context as context_mod
from blase_tui.errors import EXIT_FAILED, EXIT_INTERRUPTED, BlaseError, StepInterrupted
from blase_tui.store.values import FAILED, INTERRUPTED, RUNNING, SUCCEEDED

_CURRENT: list[Any] = []  # [StepExecution, StepLock] while a script step runs
_ALLOWED = [True]  # the blase command itself never begins one
_EXIT_CODES: list[Any] = []  # what the script passed to sys.exit
_INSTALLED: list[bool] = []


def disable() -> None:
    """Called by the ``blase`` command: its own process is never a script step."""
    _ALLOWED[0] = False


def step_name(argv: list[str] | None = None) -> str | None:
    """The value of ``--step NAME`` / ``--step=NAME`` in the script's arguments."""
    argv = sys.argv[1:] if argv is None else argv
    for i, arg in enumerate(argv):
        if arg == "--step" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--step="):
            return arg.split("=", 1)[1]
    return None


def script_path() -> Path | None:
    """The script this process runs, when it is one of a project's files."""
    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    if not file or getattr(main, "__spec__", None) is not None and main.__spec__.name != "__main__":
        return None  # `python -m package`: a tool, not a project script
    path = Path(file).resolve()
    if path.suffix != ".py" or Path(sys.prefix).resolve() in path.parents:
        return None
    return path


def _project_of(path: Path) -> Any | None:
    from blase_tui.core.config import find_project_root
    from blase_tui.core.project import Project

    root = find_project_root(path.parent)
    return Project.at(root) if root is not None else None


_FOUND: list[tuple[Path | None, Any | None]] = []  # the script and its project, looked up once per process


def _script_project() -> tuple[Path | None, Any | None]:
    """This process's script and the project holding it; (None, None) for a notebook, a test runner, a tool.
    Module calls ask on every batch, and neither can change while the process runs: looked up once."""
    if not _FOUND:
        path = script_path()
        _FOUND.append((path, _project_of(path) if path is not None else None))
    return _FOUND[0]


def current() -> Any | None:
    """The script step this process is running, if any."""
    return _CURRENT[0] if _CURRENT else None


def ensure(*, start_run: bool = False, run_name: str | None = None) -> Any | None:
    """Begin this script's step execution when it is a project script and none is running; returns the
    execution (None where there is no script step: inside ``blase step``, or not a project script)."""
    if _CURRENT:
        return _CURRENT[0]
    if not _ALLOWED[0] or context_mod.active() is not None:
        return None
    path, project = _script_project()
    if project is None:
        return None
    from blase_tui.core.execution import StepExecution
    from blase_tui.core.lock import StepLock
    from blase_tui.core.signature import function_hash
    from blase_tui.store.hashing import hash_file

    named = step_name()
    name = named or path.stem
    # `python main.py --step X` holds the step's lock as `blase step X` does (a second cron copy exits 3); a
    # script run by its file name may run in parallel copies (a sweep over params)
    lock = StepLock(project.locks_dir, name)
    try:
        if named:
            lock.acquire()
    except BlaseError as exc:
        _exit_now(exc)
    main = sys.modules["__main__"]
    func = getattr(main, name, None)
    func_hash = function_hash(func) if callable(func) else hash_file(path)
    execution = StepExecution(project, name, func_hash=func_hash, func=func if callable(func) else None,
                              start_run=start_run, run_name=run_name,
                              defer_explicit=True, script=path,
                              invocation={"how": "script", "step": name,
                                          "script": path.relative_to(project.root).as_posix()
                                          if path.is_relative_to(project.root) else str(path),
                                          "argv": sys.argv[1:]})
    try:
        execution.begin()
    except BlaseError as exc:  # `Track.start_run()` while a run is open: one line, exit 2, as `--start-run`
        lock.release()
        _exit_now(exc)
    except BaseException:
        lock.release()
        raise
    _CURRENT[:] = [execution, lock]
    _install()
    execution.record_signature()
    context_mod._set_active(execution.ctx)
    return execution


def recording_step() -> Any | None:
    """The step execution module calls record into: the running step's context; in a project script run
    without ``blase step``, the script's step execution, begun here."""
    ctx = context_mod.active()
    if ctx is None and ensure() is not None:
        ctx = context_mod.active()
    return ctx


def recording_tracker() -> Any | None:
    """The run module calls record into: the step's, else a run ``Track`` opened in this process, else None."""
    ctx = recording_step()
    return ctx.tracker if ctx is not None else context_mod.current_tracker()


def end(status: str | None = None, *, close_run: bool = False, message: str = "") -> Any | None:
    """End the running script step (``status`` None: from the exception in flight, if any); with
    ``close_run`` its run closes too (``Track.end_run()``, the seed's ``--end_run``). Returns how it ended."""
    if not _CURRENT:
        return None
    execution, lock = _CURRENT
    exc = sys.exc_info()[1]
    if status is None:
        status = _status_of(exc)
    if status != SUCCEEDED and not message:
        message = _failure(execution, exc) if exc is not None else f"step `{execution.step}` ended {status}."
    if close_run:
        execution.end_run = True
    code = 0 if status == SUCCEEDED else EXIT_INTERRUPTED if status == INTERRUPTED else EXIT_FAILED
    try:
        finished = execution.finish(status, code, message)
    finally:
        _CURRENT.clear()
        lock.release()
    # the line `blase step` ends with, so the seed's way says what happened and where it was recorded
    if status == SUCCEEDED:
        still = ", still open" if finished.run_status == RUNNING else ""
        line = f"step `{execution.step}` succeeded in {execution.elapsed:.1f} s (run {execution.run_id}{still})"
    else:
        line = (f"{message.rstrip('.')} (its details could not be written to {execution.log_path}:"
                f" {execution.log_lost})" if execution.log_lost else f"{message.rstrip('.')} (details in"
                f" {execution.log_path})")
    execution.out.write(f"blase: {line}\n")
    execution.out.flush()
    return finished


def _status_of(exc: BaseException | None) -> str:
    if exc is None or isinstance(exc, SystemExit) and exc.code in (None, 0):
        return SUCCEEDED
    if isinstance(exc, KeyboardInterrupt | StepInterrupted):
        return INTERRUPTED
    return FAILED


def _failure(execution: Any, exc: BaseException) -> str:
    return execution.failure(exc) + "."


def _exit_now(exc: BlaseError) -> None:
    """One line and the error's exit code, as `blase step` would end."""
    sys.stderr.write(f"blase: {exc}\n")
    sys.stderr.flush()
    raise SystemExit(exc.exit_code)


# ------------------------------------------------------------ process hooks
def _install() -> None:
    """Hooks that end the script step however the process ends. Installed once per process."""
    if _INSTALLED:
        return
    _INSTALLED.append(True)
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        ours = isinstance(exc, BlaseError | StepInterrupted)
        if not ours:
            previous(exc_type, exc, tb)  # the traceback first; the step's one line last, as `blase step` ends
        if _CURRENT:
            if exc.__traceback__ is None:
                exc = exc.with_traceback(tb)
            end(_status_of(exc), message=_failure(_CURRENT[0], exc))
        elif isinstance(exc, BlaseError):
            sys.stderr.write(f"blase: {exc}\n")
        if ours:
            # our own errors are one line and end with their exit code, as under `blase step`
            hard_exit(exc.exit_code if isinstance(exc, BlaseError) else EXIT_INTERRUPTED)

    sys.excepthook = hook
    real_exit = sys.exit

    def exit_(code: Any = None) -> None:
        _EXIT_CODES.append(code)
        real_exit(code)

    sys.exit = exit_  # the code a script exits with decides success; atexit cannot see it otherwise
    atexit.register(_at_exit)
    if threading.current_thread() is threading.main_thread():
        def on_term(signum: int, _frame: Any) -> None:
            raise StepInterrupted(signum)

        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, on_term)


def _at_exit() -> None:
    if not _CURRENT:
        return
    code = _EXIT_CODES[-1] if _EXIT_CODES else None
    ok = code in (None, 0)
    step = _CURRENT[0].step
    end(SUCCEEDED if ok else FAILED, message="" if ok else f"step `{step}` failed: the script exited with code {code}.")


def hard_exit(code: int) -> None:
    """Leave with ``code`` once the step's records are written (an excepthook cannot set the exit code, and a
    signal after an interrupted step's end must not turn 130 into death by that signal)."""
    if "logging" in sys.modules:  # (imported only by a step that logs: not worth ~4 ms of every start)
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
