"""Assistant: the conversation of `blase agent` in the TUI (docs/agent.md). Type a question; the answer, each
tool the assistant called and each action it asked for come into the log above. The autonomy level is in the
title line and the prompt: in semi, an action waits for y/n in a dialog; in manual nothing runs. Without an
endpoint (none configured, or it does not answer) the screen shows the offline recommendations. The
conversation is recorded as a run when the screen closes."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Input, Static

from blase_tui.core.project import Project
from blase_tui.tui.screens.base import BlaseScreen
from blase_tui.tui.widgets.wrapped_log import WrappedLog


class AssistantScreen(BlaseScreen):
    DEFAULT_CSS = """
    AssistantScreen #assistant-title { height: 1; padding: 0 1; background: $boost; }
    AssistantScreen #assistant-log { height: 1fr; }
    AssistantScreen #assistant-input { dock: bottom; margin-bottom: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="assistant.back", tooltip="Back to the runs (the conversation is kept"
                                                                        " as a run)"),
        Binding("ctrl+o", "offline", "Offline advice", id="assistant.offline",
                tooltip="Recommendations from the records, without a model"),
    ]

    def __init__(self, project: Project) -> None:
        super().__init__()
        self.project = project
        self.session: Any = None
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Static(id="assistant-title", markup=False)
        yield WrappedLog(id="assistant-log")
        yield Input(placeholder="Ask about runs, metrics, logs; ask it to run a step", id="assistant-input")
        yield Footer()

    def on_mount(self) -> None:
        from blase_tui.agent.session import Session

        self.session = Session(self.project, confirm=self._confirm, say=self._said)
        s = self.session
        configured = bool(self.project.config.agent)
        where = f"{s.model} at {s.base_url}" if configured else "no [agent] in blase.toml: ctrl+o for offline advice"
        self.query_one("#assistant-title", Static).update(f"Assistant [{s.autonomy}]  {where}")
        self.query_one("#assistant-input", Input).placeholder = f"[{s.autonomy}] ask about runs, metrics, logs;" \
                                                                " ask it to run a step"
        field = self.query_one("#assistant-input", Input)
        field.cursor_blink = False  # a steady cursor: the log above is what moves
        field.focus()

    def _log(self) -> WrappedLog:
        return self.query_one("#assistant-log", WrappedLog)

    def _write(self, lines: list[str]) -> None:
        self._log().append(lines)

    def _said(self, text: str) -> None:
        self.app.call_from_thread(self._write, [f"  {text}"])

    def _confirm(self, command: str) -> bool:
        """In semi: a dialog, answered on the app's thread while the conversation's worker waits."""
        from blase_tui.tui.screens.confirm import ConfirmScreen

        answered = threading.Event()
        result: list[bool] = [False]

        def done(yes: bool | None) -> None:
            result[0] = bool(yes)
            answered.set()

        self.app.call_from_thread(self.app.push_screen, ConfirmScreen(f"Run `{command}`?"), done)
        answered.wait()
        return result[0]

    def on_input_submitted(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question or self.busy:
            return
        event.input.value = ""
        self.busy = True
        self._write([f"> {question}"])
        self._ask(question)

    @work(thread=True, exclusive=True, group="assistant")
    def _ask(self, question: str) -> None:
        from blase_tui.agent.session import EndpointDown
        from blase_tui.errors import BlaseError

        before = len(self.session.calls)
        try:
            answer = self.session.ask(question)
            lines = [f"  ({c['tool']}{': ' + c['outcome'] if c.get('outcome') != 'ran' else ''})"
                     for c in self.session.calls[before:]]
            lines += answer.splitlines() or ["(no answer)"]
        except EndpointDown as exc:
            lines = [str(exc), "Offline advice instead:", *self._offline()]
        except BlaseError as exc:
            lines = [str(exc)]
        self.app.call_from_thread(self._answered, lines)

    def _answered(self, lines: list[str]) -> None:
        self._write(lines)
        self.busy = False

    def _offline(self) -> list[str]:
        from blase_tui.agent.offline import recommendations

        found = recommendations(self.project)
        return [f"- {line}" for line in found] or ["- Nothing calls for attention."]

    def action_offline(self) -> None:
        self._write(["(offline advice)"])
        self._offline_worker()

    @work(thread=True, exclusive=True, group="assistant-offline")
    def _offline_worker(self) -> None:
        lines = self._offline()
        self.app.call_from_thread(self._write, lines)

    def action_back(self) -> None:
        if self.session is not None and not self.busy:
            self.session.record()  # (nothing when nothing was asked)
        self.app.pop_screen()
