"""Edit a run: its name, its note and its tags, in a modal (``e`` on the runs screen)."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


def parse_tags(text: str) -> tuple[dict[str, str], str | None]:
    """``key=value key2=value2`` as a dict, or the first word that is not ``key=value`` (the problem)."""
    tags: dict[str, str] = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        if not sep or not key:
            return {}, word
        tags[key] = value
    return tags, None


class EditRunScreen(ModalScreen[dict[str, Any] | None]):
    """Dismisses with the changes (``name``, ``note``, ``tags``, ``untag``) for ``RunStore.edit_run``; enter in
    a field goes to the next, enter in the last (or ctrl+s) saves, escape leaves without a change."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="edit.cancel"),
        Binding("ctrl+s", "save", "Save", id="edit.save"),
    ]

    def __init__(self, run_id: str, *, name: str = "", note: str = "", tags: dict[str, str] | None = None) -> None:
        super().__init__()
        self.run_id = run_id
        self.before = {"name": name, "note": note, "tags": dict(tags or {})}

    def compose(self) -> ComposeResult:
        tags = " ".join(f"{k}={v}" for k, v in self.before["tags"].items())
        with Vertical(id="dialog"):
            yield Static(f"Run {self.run_id}: what it is (enter: next field, then save; escape: no change)")
            yield Label("name")
            yield Input(value=self.before["name"], placeholder="e.g. lower lr", id="edit-name")
            yield Label("note")
            yield Input(value=self.before["note"], placeholder="what it was for, what came of it", id="edit-note")
            yield Label("tags")
            yield Input(value=tags, placeholder="key=value key2=value2", id="edit-tags")
            yield Static("", id="edit-problem", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#edit-name", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        order = ["edit-name", "edit-note", "edit-tags"]
        at = order.index(event.input.id or "edit-tags")
        if at < len(order) - 1:
            self.query_one(f"#{order[at + 1]}", Input).focus()
        else:
            self.action_save()

    def action_save(self) -> None:
        tags, problem = parse_tags(self.query_one("#edit-tags", Input).value)
        if problem is not None:
            self.query_one("#edit-problem", Static).update(f"[red]tags: `{problem}` is not key=value[/]")
            self.query_one("#edit-tags", Input).focus()
            return
        name = self.query_one("#edit-name", Input).value.strip()
        note = self.query_one("#edit-note", Input).value.strip()
        self.dismiss({
            "name": name if name != self.before["name"] else None,
            "note": note if note != self.before["note"] else None,
            "tags": {k: v for k, v in tags.items() if self.before["tags"].get(k) != v},
            "untag": [k for k in self.before["tags"] if k not in tags],
        })

    def action_cancel(self) -> None:
        self.dismiss(None)
