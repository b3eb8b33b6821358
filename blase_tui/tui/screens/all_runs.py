"""Every project's runs in one table (`A` on the projects screen; `blase runs list --all-projects` on the command
line): newest first, with each run's project, the same filter as a project's runs (words, `project` names
included, and `metric>0.9`), sort and metric columns. Enter opens a run in its project (its artifacts, logs and
metrics); space marks two runs, of any projects, and c compares them. Read again every few seconds, only what
changed in each project."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Footer, Input, Static

from blase_tui.tui.screens.runs import RunsTableScreen
from blase_tui.tui.widgets.runs_table import RunsTable

POLL = 3.0
SLACK = 5.0  # as the runs screen: writers' clocks may trail ours a little


class AllRunsScreen(RunsTableScreen):
    """Runs of every known project: enter opens one, space marks two (any projects), c compares, / filters."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="all.filter", tooltip="Filter: words (a project's name too), or"
                                                                       " metric>0.9"),
        Binding("s", "sort", "Sort", id="all.sort", tooltip="Sort by the next column"),
        Binding("c", "compare", "Compare", id="all.compare", tooltip="Compare the two marked runs, of any projects"),
        Binding("escape", "escape", "Back", id="all.escape", tooltip="Clear the filter; without one, back"),
    ]

    class Rows(Message):
        def __init__(self, rows: list[dict[str, Any]], problems: list[str]) -> None:
            super().__init__()
            self.rows, self.problems = rows, problems

    def __init__(self) -> None:
        super().__init__()
        self._since: dict[str, tuple[float | None, int]] = {}  # project root -> (changed since, last rowid)
        self.loaded = False
        self.problems: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("blase · every project · runs", classes="title")
        yield Input(placeholder="filter: words (id, name, status, step, project) or metric>0.9", id="filter")
        yield RunsTable(id="all-runs-table", project_column=True, now=getattr(self.app, "now", time.time))
        yield Static("reading every project's runs…", id="all-runs-status", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(RunsTable).focus()
        self.read()
        self.set_interval(POLL, self.read)

    @work(thread=True, exclusive=True, group="all-runs", exit_on_error=False)
    def read(self) -> None:
        """The runs of each known project that changed since the last read (all of them the first time)."""
        from blase_tui.core.registry import list_projects
        from blase_tui.errors import BlaseError
        from blase_tui.store.query import run_rows

        app: Any = self.app
        rows: list[dict[str, Any]] = []
        problems: list[str] = []
        for known in list_projects():
            if not known["exists"]:
                problems.append(f"{known['name']}: folder gone")
                continue
            root = str(Path(known["path"]).resolve())
            since, rowid = self._since.get(root, (None, 0))
            started = time.time()
            try:
                project = app.project_at(Path(root))
                found = run_rows(project.store, changed_since=since, after_rowid=rowid)
            except BlaseError as exc:
                problems.append(f"{known['name']}: {exc}")
                continue
            for r in found:
                rows.append({**r, "project": project.name, "project_root": root})
            self._since[root] = (started - SLACK, max([rowid, *(r["rowid"] for r in found)]))
        self.post_message(self.Rows(rows, problems))

    def on_all_runs_screen_rows(self, message: Rows) -> None:
        table = self.query_one(RunsTable)
        table.upsert(message.rows)
        self.problems = message.problems
        self.loaded = True
        self._update_status()

    def _update_status(self) -> None:
        table = self.query_one(RunsTable)
        projects = {r["project_root"] for r in table.rows.values()}
        total, shown = len(table.rows), len(table.order)
        parts = [f"{total} runs of {len(projects)} projects" if total == shown else f"{shown} of {total} runs match"]
        if table.problem:
            parts = [f"[yellow]{escape(table.problem)}[/]"]
        if table.marked:
            parts.append("marked: " + ", ".join(f"{table.rows[m]['project']}/{m[-6:]}" for m in table.marked)
                         + (" — c compares" if len(table.marked) == 2 else ""))
        if self.problems:
            parts.append(f"[yellow]{escape('; '.join(self.problems))}[/]")
        if not total and self.loaded:
            parts = ["no runs in any known project yet (`blase projects add PATH` adds one)"]
        self.query_one("#all-runs-status", Static).update(" · ".join(parts))

    def on_runs_table_opened(self, message: RunsTable.Opened) -> None:
        from blase_tui.tui.screens.run import RunScreen

        row = self.query_one(RunsTable).rows[message.run_id]
        app: Any = self.app
        self.app.push_screen(RunScreen(app.project_at(Path(row["project_root"])), message.run_id))

    def action_compare(self) -> None:
        from blase_tui.tui.screens.compare import CompareScreen

        table = self.query_one(RunsTable)
        if len(table.marked) != 2:
            self.notify("Mark two runs (of any projects) with space first, then press c.", severity="warning")
            return
        app: Any = self.app
        a, b = (table.rows[m] for m in table.marked)
        self.app.push_screen(CompareScreen(app.project_at(Path(a["project_root"])), a["id"], b["id"],
                                           app.project_at(Path(b["project_root"]))))
