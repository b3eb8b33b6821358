"""``?``: the keys of the screen underneath, from its bindings, plus what the screen is for."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from blase_tui.tui.screens.base import BlaseScreen

KEY_NAMES = {"question_mark": "?", "slash": "/", "left_square_bracket": "[", "right_square_bracket": "]",
             "space": "space", "escape": "esc"}
GLOBAL = [("?", "this help"), ("ctrl+p", "command palette: every action, open run…, launch…"),
          ("q", "quit (asks while launched steps run)"), ("escape", "back")]


class HelpScreen(ModalScreen[None]):
    """Lists the bindings of ``screen`` and the app's global keys."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close"),
    ]

    def __init__(self, screen: Screen[Any]) -> None:
        super().__init__()
        self.under = screen

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        seen = set()
        taken: set[str] = set()  # keys the screen binds itself: the global rows for them would be wrong
        # the screen's own keys and those of blase's widgets; not the editing keys of every Input and table
        ours = [n for n in self.under.query("*").nodes if type(n).__module__.startswith("blase_tui.")]
        for node in [self.under, *ours]:
            for binding in getattr(node, "BINDINGS", []):
                if not isinstance(binding, Binding) or not binding.description:
                    continue
                key = " ".join(KEY_NAMES.get(k, k) for k in binding.key.split(","))
                if (key, binding.description) in seen:
                    continue
                seen.add((key, binding.description))
                taken.update(key.split())
                table.add_row(key, binding.tooltip or binding.description)
        if isinstance(self.under, BlaseScreen):
            for key, text in self.under.help_rows():
                table.add_row(key, text)
        for key, text in GLOBAL:
            if key not in taken and not (key == "escape" and "esc" in taken):
                table.add_row(key, text)
        doc = " ".join(line.strip() for line in (self.under.__doc__ or "").strip().split("\n\n", 1)[0].splitlines())
        dialog = VerticalScroll(id="help-dialog")
        dialog.border_subtitle = "esc closes · ↑↓ scroll"  # on the border: in view however long the list is
        with dialog:
            yield Static(f"[b]{type(self.under).__name__.replace('Screen', '')}[/b]: {doc}\n")
            yield Static(table)

    def action_close(self) -> None:
        self.dismiss(None)
