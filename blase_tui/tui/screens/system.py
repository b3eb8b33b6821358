"""System: every running step of every known project on this machine, and the host's CPU, memory and GPUs,
read again every 2 seconds. Enter opens the highlighted step's run on its Live tab."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Footer, Static

from blase_tui.core.fmt import fmt_bytes, fmt_run_tail, fmt_seconds
from blase_tui.tui.screens.base import BlaseScreen

POLL = 2.0


class SystemScreen(BlaseScreen):
    """Running steps across projects and the host's figures; enter opens a step's run."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="system.back", tooltip="Back"),
        Binding("enter", "open", "Open run", id="system.open", tooltip="Open the highlighted step's run on its Live tab"),
    ]

    class Read(Message):
        def __init__(self, steps: list[dict[str, Any]], host: dict[str, Any]) -> None:
            super().__init__()
            self.steps, self.host = steps, host

    def __init__(self, read: Callable[[], tuple[list[dict[str, Any]], dict[str, Any]]] | None = None) -> None:
        """``read`` returns (running steps, host figures); by default core.system reads this machine."""
        super().__init__()
        self.steps: list[dict[str, Any]] = []
        self._read = read or _read_machine
        self.last: SystemScreen.Read | None = None

    def compose(self) -> ComposeResult:
        yield Static("blase · system", classes="title")
        yield Static("reading…", id="system-host")
        table: DataTable[Any] = DataTable(id="system-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("project", "run", "step", "running for", "pid", "memory", "cpu time")
        yield table
        yield Static("", id="system-status", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.read()
        self.set_interval(POLL, self.read)

    @work(thread=True, exclusive=True, group="system", exit_on_error=False)
    def read(self) -> None:
        self.post_message(self.Read(*self._read()))

    WIDE = 100  # narrower than this, runs show by their random tail (`blase runs show` takes it too)

    def on_system_screen_read(self, message: Read) -> None:
        self.last = message
        self._show(message.steps, message.host)

    def on_resize(self) -> None:
        if self.last is not None:
            self._show(self.last.steps, self.last.host)

    def _show(self, steps: list[dict[str, Any]], h: dict[str, Any]) -> None:
        # each figure keeps its words together: a narrow terminal wraps between figures, never inside one
        parts = [f"cpu {h['cpu']:.0f}% of {h['cores']} cores",
                 f"memory {fmt_bytes(h['mem_used'])} / {fmt_bytes(h['mem_total'])}"]
        parts += [f"gpu{g['index']} {g['util']:.0f}% · {fmt_bytes(g['mem_used'])} / {fmt_bytes(g['mem_total'])}"
                  for g in h["gpus"]] or ["no GPU"]
        width = max(20, self.size.width - 2)
        lines = ["host  " + parts[0]]
        for part in parts[1:]:
            if len(lines[-1]) + 5 + len(part) <= width:
                lines[-1] += "  ·  " + part
            else:
                lines.append("      " + part)
        host = Text("\n".join(lines))
        host.stylize("bold", 0, 4)
        self.query_one("#system-host", Static).update(host)
        table = self.query_one("#system-table", DataTable)
        keep = table.cursor_row
        table.clear()
        now = self.app.now()  # type: ignore[attr-defined]
        narrow = self.size.width < self.WIDE
        for s in steps:
            run = fmt_run_tail(s["run_id"]) if narrow else s["run_id"]
            table.add_row(s["project"], run, s["step"], fmt_seconds(now - (s["started"] or now)),
                          str(s["pid"]) + ("" if s["rss"] is not None else f" on {s['host']}"),
                          fmt_bytes(s["rss"]) if s["rss"] is not None else "-",
                          fmt_seconds(s["cpu"]) if s["cpu"] is not None else "-")
        self.steps = steps
        if steps:
            table.move_cursor(row=min(keep, len(steps) - 1), animate=False)
        self.query_one("#system-status", Static).update(
            f"{len(steps)} step(s) running across the known projects · enter opens one's run"
            if steps else "No step is running in any known project.")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        from blase_tui.tui.screens.run import RunScreen

        table = self.query_one("#system-table", DataTable)
        if not self.steps:
            return
        s = self.steps[min(table.cursor_row, len(self.steps) - 1)]
        project = self.app.project_at(Path(s["root"]))  # type: ignore[attr-defined]
        self.app.push_screen(RunScreen(project, s["run_id"], tab="live"))  # the step runs: its live panes

    def action_back(self) -> None:
        self.app.pop_screen()


def _read_machine() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from blase_tui.core import system

    return system.running_steps(), system.host()
