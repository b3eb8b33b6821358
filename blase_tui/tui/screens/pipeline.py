"""Pipeline: the project's steps in order as a graph (each step with the steps it reads from, by lineage) and
the state of each: up to date, stale and why, never ran, running, failed. Launched from here: r the whole
pipeline, enter the pipeline up to the highlighted step, s that step alone; the jobs view follows the run step by
step. The states come from `blase status --json` in a child process (the project's code is never imported into
the TUI) and are read again when the store changes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Footer, Static

from blase_tui.core.project import Project
from blase_tui.core.storewatch import StoreWatcher
from blase_tui.tui.screens.base import BlaseScreen

MARK = {"up to date": ("✓", "green"), "stale": ("●", "yellow"), "never ran": ("○", "dim"),
        "always runs": ("↻", "cyan")}
LAST = {"running": ("▶ running", "cyan"), "failed": ("✗ failed", "red"), "interrupted": ("■ interrupted", "yellow")}
COLUMNS = ("", "step", "reads from", "state", "why / outputs")


def read_status(root: Path) -> tuple[dict[str, Any] | None, str]:
    """``blase status --json`` of the project at ``root``, and "" or why it could not be read. Blocking: call it
    from a thread."""
    proc = subprocess.run([sys.executable, "-m", "blase_tui", "-C", str(root), "status", "--json"],
                          capture_output=True, text=True, cwd=root, timeout=300, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        return None, proc.stderr.strip().removeprefix("blase: ") or f"blase status exited {proc.returncode}"
    return json.loads(proc.stdout), ""


def graph_line(steps: list[dict[str, Any]]) -> Text:
    """The pipeline in one line, each step with its state's mark: ``✓ etl → ● train → ○ evaluate``."""
    text = Text()
    for i, s in enumerate(steps):
        if i:
            text.append(" → ", style="dim")
        mark, style = MARK.get(s["state"], ("?", ""))
        if (s.get("last") or {}).get("status") == "running":
            mark, style = "▶", "cyan"
        text.append(f"{mark} ", style=style)
        text.append(s["step"], style="bold" if s["runs"] else "")
    return text


class PipelineScreen(BlaseScreen):
    """The pipeline's steps, states and reasons; r runs it, enter runs it up to here, s runs this step."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="pipeline.back", tooltip="Back to the runs"),
        Binding("r", "run_all", "Run pipeline", id="pipeline.run", tooltip="blase run: every step, reusing those"
                                                                             " up to date"),
        Binding("enter", "run_to", "Run to here", id="pipeline.run_to",
                tooltip="blase run --to STEP: the pipeline up to the highlighted step"),
        Binding("s", "run_step", "This step", id="pipeline.step", tooltip="blase step STEP: the highlighted step alone"),
        Binding("f", "force", "Force", show=False, id="pipeline.force",
                tooltip="Run the next launch with --force (every chosen step runs)"),
        Binding("R", "reload", "Reload", show=False, id="pipeline.reload", tooltip="Read the states again"),
    ]

    class Loaded(Message):
        def __init__(self, status: dict[str, Any] | None, error: str) -> None:
            super().__init__()
            self.status, self.error = status, error

    class StoreChanged(Message):
        """The watcher saw a commit."""

    def __init__(self, project: Project) -> None:
        super().__init__()
        self.project = project
        self.status: dict[str, Any] | None = None
        self.force = False
        self._reading = False
        self._again = False
        self._watcher: StoreWatcher | None = None

    def compose(self) -> ComposeResult:
        yield Static(f"blase · {self.project.name} · pipeline", classes="title", id="pipeline-title")
        yield Static("reading the pipeline (blase status)…", id="pipeline-graph")
        table: DataTable[Any] = DataTable(id="pipeline-table", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        yield Static("", id="pipeline-status", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.load()
        self._watcher = StoreWatcher(self.project.root / "runs",
                                     lambda: self.post_message(self.StoreChanged()), debounce=1.0).start()

    def on_unmount(self) -> None:
        if self._watcher is not None:
            self._watcher.stop(wait=False)

    def on_pipeline_screen_store_changed(self, _: StoreChanged) -> None:
        self.load()

    def load(self) -> None:
        """Read the states again, once at a time (a change during a read reads once more after it)."""
        if self._reading:
            self._again = True
            return
        self._reading = True
        self._read()

    @work(thread=True, group="pipeline-status", exit_on_error=False)
    def _read(self) -> None:
        try:
            status, error = read_status(self.project.root)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            status, error = None, str(exc)
        self.post_message(self.Loaded(status, error))

    def on_pipeline_screen_loaded(self, message: Loaded) -> None:
        self._reading = False
        if message.error:
            self.query_one("#pipeline-graph", Static).update(Text(message.error, style="red"))
        else:
            self.status = message.status
            self._draw()
        if self._again:
            self._again = False
            self.load()

    def _draw(self) -> None:
        assert self.status is not None
        steps = self.status["steps"]
        self.query_one("#pipeline-graph", Static).update(graph_line(steps))
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for s in steps:
            mark, style = MARK.get(s["state"], ("?", ""))
            state = Text(s["state"], style=style)
            last = (s.get("last") or {}).get("status")
            if last in LAST:  # what its latest execution is doing, or how it ended
                label, colour = LAST[last]
                state = Text.assemble(state, " · ", (label, colour))
            why = f"outputs of run {s['run']}" if s["state"] == "up to date" else "; ".join(s["reasons"]) or "-"
            table.add_row(Text(mark, style=style), s["step"], ", ".join(s.get("reads") or []) or "-", state, why,
                          key=s["step"])
        if steps:
            table.move_cursor(row=min(row, len(steps) - 1))
        stale = sum(s["runs"] for s in steps)
        where = "[pipeline] steps in blase.toml" if self.status.get("configured") else "the entry module's steps"
        said = f"{stale} of {len(steps)} would run" if stale else "up to date"
        forced = " · next launch with --force (f)" if self.force else ""
        self.query_one("#pipeline-status", Static).update(
            Text(f"{said} · from {where} · read {time.strftime('%H:%M:%S')}{forced}"))

    # ---- actions -------------------------------------------------------------------------------------------
    def _chosen(self) -> str | None:
        table = self.query_one(DataTable)
        if self.status is None or not self.status["steps"]:
            return None
        return str(self.status["steps"][table.cursor_row]["step"])

    def _launch(self, pipeline: list[str] | None, step: str) -> None:
        app: Any = self.app
        app.launch(step, {}, force=self.force, pipeline=pipeline)
        self.force = False

    def action_run_all(self) -> None:
        if self.status is not None:
            self._launch(list(self.status["pipeline"]), self.status["pipeline"][0])

    def action_run_to(self) -> None:
        step = self._chosen()
        if step is not None and self.status is not None:
            order = list(self.status["pipeline"])
            self._launch(order[:order.index(step) + 1], order[0])

    def on_data_table_row_selected(self, _: DataTable.RowSelected) -> None:  # enter on a row
        self.action_run_to()

    def action_run_step(self) -> None:
        step = self._chosen()
        if step is not None:
            self._launch(None, step)

    def action_force(self) -> None:
        self.force = not self.force
        self.notify("the next launch runs every chosen step (--force)" if self.force else "--force off", timeout=3)
        if self.status is not None:
            self._draw()

    def action_reload(self) -> None:
        self.load()

    def action_back(self) -> None:
        self.app.pop_screen()
