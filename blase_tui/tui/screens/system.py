"""System: every running step of every known project on this machine, and the host's CPU, memory and GPUs,
read again every 2 seconds. Enter opens the highlighted step's run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Footer, Static

from blase_tui.core.fmt import fmt_bytes, fmt_seconds
from blase_tui.tui.screens.base import BlaseScreen

POLL = 2.0


class SystemScreen(BlaseScreen):
    """Running steps across projects and the host's figures; enter opens a step's run."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="system.back", tooltip="Back"),
        Binding("enter", "open", "Open run", id="system.open", tooltip="Open the run of the highlighted step"),
    ]

    class Read(Message):
        def __init__(self, steps: list[dict[str, Any]], host: dict[str, Any]) -> None:
            super().__init__()
            self.steps, self.host = steps, host

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[dict[str, Any]] = []

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
        from blase_tui.core import system

        self.post_message(self.Read(system.running_steps(), system.host()))

    def on_system_screen_read(self, message: Read) -> None:
        h = message.host
        gpus = "  ".join(f"gpu{g['index']} {g['util']:.0f}% · {fmt_bytes(g['mem_used'])} / {fmt_bytes(g['mem_total'])}"
                         for g in h["gpus"]) or "no GPU"
        self.query_one("#system-host", Static).update(Text.assemble(
            ("host  ", "bold"), f"cpu {h['cpu']:.0f}% of {h['cores']} cores  ·  memory {fmt_bytes(h['mem_used'])}"
            f" / {fmt_bytes(h['mem_total'])}  ·  {gpus}"))
        table = self.query_one("#system-table", DataTable)
        keep = table.cursor_row
        table.clear()
        now = time.time()
        for s in message.steps:
            table.add_row(s["project"], s["run_id"], s["step"], fmt_seconds(now - (s["started"] or now)),
                          str(s["pid"]) + ("" if s["rss"] is not None else f" on {s['host']}"),
                          fmt_bytes(s["rss"]) if s["rss"] is not None else "-",
                          fmt_seconds(s["cpu"]) if s["cpu"] is not None else "-")
        self.steps = message.steps
        if message.steps:
            table.move_cursor(row=min(keep, len(message.steps) - 1), animate=False)
        self.query_one("#system-status", Static).update(
            f"{len(message.steps)} step(s) running across the known projects · enter opens one's run"
            if message.steps else "No step is running in any known project.")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        from blase_tui.tui.screens.run import RunScreen

        table = self.query_one("#system-table", DataTable)
        if not self.steps:
            return
        s = self.steps[min(table.cursor_row, len(self.steps) - 1)]
        project = self.app.project_at(Path(s["root"]))  # type: ignore[attr-defined]
        self.app.push_screen(RunScreen(project, s["run_id"]))

    def action_back(self) -> None:
        self.app.pop_screen()
