"""Projects: the known projects (the user registry) with their newest run; open one, add one by path."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Footer, Static

from blase_tui.core.fmt import STATUS_STYLE, fmt_path, fmt_time
from blase_tui.tui.screens.base import BlaseScreen

POLL = 3.0  # seconds between reads of the projects' stores while the list is shown
COLUMNS = ("project", "runs", "last run", "status", "path")


class ProjectsScreen(BlaseScreen):
    """The registry's projects; enter opens one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", id="projects.open", tooltip="Open the project under the cursor"),
        Binding("a", "add", "Add", id="projects.add", tooltip="Add a project by its folder"),
        Binding("r", "reload", "Reload", id="projects.reload", tooltip="Read the registry again"),
        Binding("A", "all_runs", "All runs", id="projects.all_runs",
                tooltip="Every project's runs in one table: filter, compare across projects, open any run"),
        Binding("s", "system", "System", id="projects.system",
                tooltip="Every running step of every project, and this machine's CPU, memory and GPUs"),
    ]

    class Loaded(Message):
        def __init__(self, rows: list[dict[str, Any]]) -> None:
            super().__init__()
            self.rows = rows

    def compose(self) -> ComposeResult:
        yield Static("blase · projects", classes="title")
        yield Static("Known projects. Enter opens one; [b]a[/] adds a folder; [b]blase create PATH[/] makes a new one.",
                     classes="hint")
        table: DataTable[str] = DataTable(id="projects-table", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        yield Static("", id="projects-empty", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()
        # runs arrive from cron and other terminals: the counts and newest runs move on by themselves
        self.set_interval(POLL, self._poll)

    def _poll(self) -> None:
        if self.is_current:
            self.load()

    def on_screen_resume(self) -> None:
        self.action_reload()  # counts and newest runs move on while other screens are shown

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="projects", exit_on_error=False)
    def load(self) -> None:
        from blase_tui.core import registry
        from blase_tui.store.query import project_summary
        from blase_tui.store.runstore import RunStore

        rows = []
        for p in registry.list_projects():
            root = Path(p["path"])
            row = {"name": p["name"], "path": str(root), "runs": 0, "status": "", "started": None, "missing": False}
            if not (root / "blase.toml").is_file():
                row["missing"] = True
            elif (root / "runs" / "blase.db").exists():
                try:
                    store = RunStore(root)
                    row.update(project_summary(store))
                    store.close()
                except Exception as exc:  # a damaged store must not hide the other projects
                    row["status"] = f"store unreadable: {exc}"
            rows.append(row)
        self.post_message(self.Loaded(rows))

    _shown: list[dict[str, Any]] | None = None  # the rows on screen, as last read

    def on_projects_screen_loaded(self, message: Loaded) -> None:
        if message.rows == self._shown:
            return  # nothing moved since the last read: the table is not redrawn (no flicker every 3 s)
        self._shown = message.rows
        table = self.query_one("#projects-table", DataTable)
        cursor = None  # the project under the cursor stays under it when the rows are read again
        if table.row_count:
            cursor = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        cells = []
        for r in message.rows:
            status = r["status"] or ("folder missing" if r["missing"] else "no runs yet")
            cells.append((r["name"], str(r["runs"]), fmt_time(r.get("started")), status, fmt_path(r["path"])))
        # the columns get their widths now, from every cell: a DataTable left to measure them when idle may draw
        # its header with the widths of an empty table first, and keep that header
        table.clear(columns=True)
        for i, label in enumerate(COLUMNS):
            table.add_column(label, width=max([len(label), *(len(c[i]) for c in cells)]), key=label)
        for r, c in zip(message.rows, cells, strict=True):
            table.add_row(*c[:3], f"[{STATUS_STYLE.get(c[3], 'dim')}]{c[3]}[/]", c[4], key=r["path"])
        keys = [r["path"] for r in message.rows]
        if cursor in keys:
            table.move_cursor(row=keys.index(cursor), animate=False)
        empty = self.query_one("#projects-empty", Static)
        empty.update("" if message.rows else "No projects yet. Press [b]a[/] to add a folder that holds a blase.toml.")
        table.focus()

    def action_all_runs(self) -> None:
        from blase_tui.tui.screens.all_runs import AllRunsScreen

        self.app.push_screen(AllRunsScreen())

    def action_system(self) -> None:
        from blase_tui.tui.screens.system import SystemScreen

        self.app.push_screen(SystemScreen())

    def action_open(self) -> None:
        table = self.query_one("#projects-table", DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            self.app.open_project(Path(str(key)))  # type: ignore[attr-defined]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_project(Path(str(event.row_key.value)))  # type: ignore[attr-defined]

    def action_add(self) -> None:
        from blase_tui.tui.screens.prompt import PromptScreen

        def added(path: str | None) -> None:
            if path:
                self.app.open_project(Path(path).expanduser())  # type: ignore[attr-defined]

        self.app.push_screen(PromptScreen("Project folder (holds blase.toml):", placeholder="~/projects/digits"), added)
