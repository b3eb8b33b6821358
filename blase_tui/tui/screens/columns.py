"""Columns: which metrics the runs table shows, and whose (a metric two steps log is two choices,
``train/accuracy`` and ``evaluate/accuracy``). The pick stays while runs arrive."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import SelectionList, Static
from textual.widgets.selection_list import Selection

from blase_tui.tui.widgets.runs_table import MAX_METRICS, MetricRef


class ColumnsScreen(ModalScreen[list[MetricRef] | None]):
    """Space ticks a metric, enter keeps the ticked ones (in the list's order), escape leaves them as they were."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Back", id="columns.back"),
        Binding("enter", "keep", "Keep", id="columns.keep", priority=True),  # space ticks
    ]

    def __init__(self, known: list[tuple[MetricRef, int]], shown: list[MetricRef], runs: int) -> None:
        super().__init__()
        self.known, self.shown, self.runs = known, shown, runs

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"Metric columns (up to {MAX_METRICS}; as many as the width holds show): space ticks,"
                         " enter keeps, escape goes back.")
            yield SelectionList[MetricRef](
                *[Selection(f"{step + '/' if step else ''}{key}  ({n} of {self.runs} runs)", (step, key),
                            (step, key) in self.shown) for (step, key), n in self.known],
                id="columns-list")
            yield Static("No run has logged a metric yet." if not self.known else "", id="columns-picked",
                         classes="hint")

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()
        self._say_picked()

    def on_selection_list_selected_changed(self) -> None:
        self._say_picked()

    def _say_picked(self) -> None:
        """The ticked metrics in words, in the order they will show (the tick itself is told by colour)."""
        if not self.known:
            return
        picked = set(self.query_one(SelectionList).selected)
        names = [f"{step + '/' if step else ''}{key}" for (step, key), _ in self.known if (step, key) in picked]
        self.query_one("#columns-picked", Static).update("columns: " + (", ".join(names) or "none (no metric column)"))

    def action_keep(self) -> None:
        picked = set(self.query_one(SelectionList).selected)
        self.dismiss([ref for ref, _ in self.known if ref in picked])

    def action_cancel(self) -> None:
        self.dismiss(None)
