"""Start a step as a `blase step` subprocess and follow it: what the TUI's Launch does. The child is the same
command cron runs, so a crash in a step never takes the caller down and both look alike in the store."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase_tui.store.runstore import RunStore


def step_command(project_root: Path, step: str, overrides: dict[str, str] | None = None, *,
                 force: bool = False, pipeline: list[str] | None = None) -> list[str]:
    """The ``blase step`` command line for ``step`` with ``--set key=value`` for each override; with
    ``pipeline``, the ``blase run`` of those steps (overrides as ``step.key=value``)."""
    what = ["run", *pipeline] if pipeline is not None else ["step", step]
    cmd = [sys.executable, "-m", "blase_tui", "-C", str(project_root), *what, "--quiet"]
    for key, value in (overrides or {}).items():
        cmd += ["--set", f"{key}={value}"]
    if force:
        cmd.append("--force")
    return cmd


_counter = itertools.count(1)
KEEP_STDERR = 50


def _prune(folder: Path) -> None:
    """Keep the stderr files of the last launches only (they matter when a launch fails to start)."""
    files = sorted(folder.glob("*.stderr"), key=lambda p: p.stat().st_mtime)
    for old in files[:-KEEP_STDERR]:
        old.unlink(missing_ok=True)


@dataclass
class LaunchedStep:
    """One step started by :meth:`start`; ``locate`` finds its execution in the store once it has begun."""

    project_root: Path
    step: str
    overrides: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    run_id: str | None = None
    step_run_id: int | None = None
    events_path: Path | None = None
    stderr_path: Path | None = None
    returncode: int | None = None
    cancelled: bool = False
    pipeline: list[str] | None = None  # a `blase run` of these steps: ``step`` is the one it is at
    started: float = 0.0

    def start(self, *, force: bool = False) -> LaunchedStep:
        """Start the child in its own process group (so ^C in the TUI's terminal does not reach it)."""
        logs = self.project_root / ".blase" / "launch"
        logs.mkdir(parents=True, exist_ok=True)
        _prune(logs)
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{next(_counter)}"
        self.stderr_path = logs / f"{self.step}-{stamp}.stderr"
        self.started = time.time() - 1.0  # the store's clock may trail ours a little
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                step_command(self.project_root, self.step, self.overrides, force=force, pipeline=self.pipeline),
                cwd=self.project_root, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def locate(self, store: RunStore) -> bool:
        """Look up the execution the child recorded (by its pid); True once found. A pipeline's child goes from
        step to step: each call finds the one it is at now (``step``, ``run_id`` and ``events_path`` follow)."""
        if self.pipeline is not None:
            return bool(self.events_paths(store))
        if self.step_run_id is not None:
            return True
        if self.proc is None:
            return False
        row = store.step_run_of_process(self.proc.pid, self.step, since=self.started)
        if row is not None:
            self._at(store, row)
        return row is not None

    def events_paths(self, store: RunStore) -> list[Path]:
        """The events files of every step the child has begun, in order (one for a step; a pipeline's each), in
        one read of the store; the job is then at the last of them."""
        if self.pipeline is None:
            return [self.events_path] if self.locate(store) and self.events_path is not None else []
        if self.proc is None:
            return []
        rows = store.step_runs_of_process(self.proc.pid, since=self.started)
        if rows:
            self._at(store, rows[-1])
        return [store.run_dir(r.run_id) / r.folder / "events.jsonl" for r in rows]

    def _at(self, store: RunStore, row: Any) -> None:
        self.step = row.step
        self.run_id, self.step_run_id = row.run_id, int(row.id)
        self.events_path = store.run_dir(self.run_id) / row.folder / "events.jsonl"

    def poll(self) -> int | None:
        if self.proc is not None and self.returncode is None:
            self.returncode = self.proc.poll()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        assert self.proc is not None
        self.returncode = self.proc.wait(timeout)
        return self.returncode

    def cancel(self) -> None:
        """SIGTERM: the engine marks the execution interrupted and exits 130."""
        if self.proc is not None and self.poll() is None:
            self.cancelled = True
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    def error_text(self) -> str:
        """What the child wrote on stderr (its one-line error when it could not start the step)."""
        try:
            return self.stderr_path.read_text(errors="replace").strip() if self.stderr_path else ""
        except OSError:
            return ""



# ------------------------------------------------------------------------- stopping any running step
@dataclass(frozen=True)
class Stopping:
    """A running step execution sent SIGTERM (it marks itself interrupted and exits 130)."""

    step_run_id: int
    run_id: str
    step: str
    pid: int


def cancel_running(store: RunStore, run_id: str | None = None, *, step: str | None = None) -> list[Stopping]:
    """Stop the running steps of ``run_id`` (else of the whole project), whoever started them: the TUI, cron,
    another terminal, a TUI that has closed. Each is sent SIGTERM, as Ctrl-C would stop it. A step running on
    another host, or in a process this user may not signal, is one clear error; one whose process is gone is
    marked interrupted (``recover_dead``) and left out."""
    from blase_tui.errors import BlaseError
    from blase_tui.store import procs

    store.recover_dead()
    rows = [r for r in store.running_step_runs(run_id) if step is None or r.step == step]
    if not rows:
        where = f"run {run_id}" if run_id else "this project"
        what = f"no step `{step}` of {where} is running" if step else f"no step of {where} is running"
        raise BlaseError(f"nothing to stop: {what}; `blase runs list --status running` shows what runs.")
    here = procs.hostname()
    elsewhere = [r for r in rows if r.host and r.host != here]
    if elsewhere:
        r = elsewhere[0]
        raise BlaseError(f"step `{r.step}` of run {r.run_id} runs on host {r.host}, not here; stop it"
                         f" there (`blase runs cancel {r.run_id}`).")
    stopping = []
    for r in rows:
        if not procs.is_alive(r.pid, r.pid_started, r.host):
            continue
        try:
            os.kill(r.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        except PermissionError:
            raise BlaseError(f"step `{r.step}` of run {r.run_id} runs as another user (pid {r.pid});"
                             " stop it as that user.") from None
        stopping.append(Stopping(int(r.id), r.run_id, r.step, int(r.pid)))
    return stopping


def wait_stopped(store: RunStore, stopping: list[Stopping], timeout: float = 30.0) -> dict[int, str]:
    """Wait until each execution has left ``running`` (or ``timeout``); their statuses by id."""
    deadline = time.monotonic() + timeout
    status: dict[int, str] = {}
    while True:
        for s in stopping:
            row = store.step_run(s.step_run_id)
            status[s.step_run_id] = row.status if row is not None else "gone"
        if all(v != "running" for v in status.values()) or time.monotonic() > deadline:
            return status
        time.sleep(0.1)
