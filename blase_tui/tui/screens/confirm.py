"""Yes or no, or one of a few choices, in a modal."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True for yes; escape or ``n`` is no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "answer(False)", "No", id="confirm.no"),
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
    ]

    def __init__(self, question: str, *, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question)
            with Horizontal():
                yield Button(f"{self.no} (n)", id="no")
                yield Button(f"{self.yes} (y)", id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ChoiceScreen(ModalScreen[str]):
    """One of a few choices, each a button with its key; dismisses with the choice's name (escape: the first).

    >>> ChoiceScreen("Quit?", [("s", "stay", "Stay", "default"), ("q", "quit", "Quit", "error")])
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "choose('')", "Back", id="choice.back")]

    def __init__(self, question: str, choices: list[tuple[str, str, str, str]]) -> None:
        super().__init__()
        self.question, self.choices = question, choices

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question)
            with Vertical(id="choices"):  # one under the other: long labels fit 80 columns
                for key, name, label, variant in self.choices:
                    yield Button(f"{label} ({key})", id=f"choice-{name}", variant=variant)  # type: ignore[arg-type]

    def on_mount(self) -> None:
        self.query(Button).first().focus()

    def on_key(self, event: Any) -> None:
        for key, name, _, _ in self.choices:
            if event.key == key:
                event.stop()
                self.dismiss(name)
                return

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss((event.button.id or "").removeprefix("choice-"))

    def action_choose(self, name: str) -> None:
        self.dismiss(name or self.choices[0][1])
