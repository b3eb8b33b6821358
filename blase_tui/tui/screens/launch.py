"""Launch: pick a step, see and edit its params, start it as a `blase step` child process. A param's field
checks what is typed as `blase step --set` would, and says so in one line under the form; a field left empty
means its default (the grey placeholder)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Checkbox, Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from blase_tui.core.fmt import fmt_value
from blase_tui.core.project import Project
from blase_tui.tui.screens.base import BlaseScreen


def read_steps(root: Path) -> tuple[list[dict[str, Any]], str]:
    """The steps of the project at ``root`` with their params (``blase steps --json``), and "" or why they could
    not be read. Blocking: call it from a thread. A child process imports the user's entry module, so the TUI
    never runs (or caches) project code."""
    proc = subprocess.run(
        [sys.executable, "-m", "blase_tui", "-C", str(root), "steps", "--json"],
        capture_output=True, text=True, cwd=root, timeout=120,
    )
    if proc.returncode != 0:
        return [], proc.stderr.strip() or f"blase steps exited {proc.returncode}"
    return json.loads(proc.stdout), ""


PIPELINE = "__pipeline__"  # the option that launches `blase run`
PIPELINE_DOC = ("every step of the pipeline ([pipeline] steps in blase.toml, else the entry module's) as one run,"
                " each reused when up to date (blase run); P on the runs screen shows which would run and why.")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value) if not isinstance(value, float) else repr(value)


class LaunchScreen(BlaseScreen):
    """Pick a step (left), edit its params (right; enter moves to the next), ctrl+s starts it; its live panes
    open in Jobs."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "start", "Start", id="launch.start", tooltip="Start the step with these params"),
        Binding("escape", "back", "Back", id="launch.back", tooltip="Back without starting"),
        Binding("ctrl+r", "reset", "Defaults", id="launch.reset", tooltip="Put the configured values back"),
    ]

    class Steps(Message):
        def __init__(self, steps: list[dict[str, Any]], error: str) -> None:
            super().__init__()
            self.steps, self.error = steps, error

    def __init__(self, project: Project, *, step: str | None = None) -> None:
        super().__init__()
        self.project = project
        self.wanted = step
        self.steps: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None  # the step whose form is on screen
        self._showing: dict[str, Any] | None = None  # the step whose form is on screen or being mounted
        self._typing_into: Input | None = None
        self._typed = False

    def compose(self) -> ComposeResult:
        yield Static(f"blase · {self.project.name} · launch a step", classes="title")
        with Horizontal(id="launch-layout"):
            yield OptionList(id="step-list")
            # the scroll areas are not focus stops: Tab goes from the step list straight to the first param
            with VerticalScroll(id="param-form", can_focus=False):
                yield Static("reading the project's steps…", id="step-doc", classes="hint")
                yield VerticalScroll(id="param-rows", can_focus=False)
                hint = Static("", id="param-hint", classes="hint")
                hint.styles.text_wrap, hint.styles.text_overflow = "nowrap", "ellipsis"  # one line, always
                yield hint
                yield Checkbox("--force: run even if reusable", id="force", tooltip="Run even if an identical earlier execution could be reused")
                with Horizontal(id="launch-buttons"):
                    yield Button("Start (ctrl+s)", id="start", variant="success")
        yield Footer()

    async def on_mount(self) -> None:
        app: Any = self.app
        if app.step_cache.get(self.project.root):
            await self._show_steps(app.step_cache[self.project.root])
        self.load_steps()

    @work(thread=True, exclusive=True, group="steps", exit_on_error=False)
    def load_steps(self) -> None:
        self.post_message(self.Steps(*read_steps(self.project.root)))

    async def on_launch_screen_steps(self, message: Steps) -> None:
        if message.error:
            self.query_one("#step-doc", Static).update(f"[red]{message.error}[/]")
            return
        app: Any = self.app
        app.step_cache[self.project.root] = message.steps
        await self._show_steps(message.steps)

    async def _show_steps(self, steps: list[dict[str, Any]]) -> None:
        if steps == self.steps:
            return  # same steps and params: keep what the user typed
        self.steps = steps
        options = self.query_one("#step-list", OptionList)
        options.clear_options()
        options.add_options([Option(s["step"], id=s["step"]) for s in steps])
        if steps:  # last: the whole pipeline as one run (`blase run`)
            options.add_option(Option(Text("▶ the pipeline", style="bold"), id=PIPELINE))
        index = next((i for i, s in enumerate(steps) if s["step"] == self.wanted), 0)
        if steps:
            options.highlighted = index
            await self._show_form(steps[index])
        options.focus()

    @on(OptionList.OptionHighlighted, "#step-list")
    async def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id == PIPELINE:
            await self._show_form({"step": PIPELINE, "params": {}, "doc": PIPELINE_DOC})
            return
        step = next((s for s in self.steps if s["step"] == event.option.id), None)
        if step is not None and step is not self._showing:
            await self._show_form(step)

    @on(OptionList.OptionSelected, "#step-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        inputs = self.query("#param-rows Input")
        if inputs:
            self._typing_into, self._typed = inputs.first(), False
            self._typing_into.focus()
        else:
            self.query_one("#start", Button).focus()

    def on_key(self, event: events.Key) -> None:
        """Typing while the step list has focus goes into the first param: focus moves a moment after enter,
        and the keys typed in that moment must not be lost."""
        if not (isinstance(self.focused, OptionList) and event.is_printable and event.character):
            return
        target = self._typing_into
        if target is None:
            inputs = self.query("#param-rows Input")
            if not inputs:
                return
            target = self._typing_into = inputs.first()
            target.focus()
        event.stop()
        event.prevent_default()
        # the first key replaces the value (as typing into a selected field does), the next ones append
        target.select_on_focus = False
        target.value = (target.value if self._typed else "") + event.character
        target.cursor_position = len(target.value)
        self._typed = True

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if not isinstance(event.widget, OptionList):
            self._typing_into, self._typed = None, False

    async def _show_form(self, step: dict[str, Any]) -> None:
        """Replace the form; awaited, so a key pressed next (enter, then typing) reaches the new inputs.

        ``current`` is the step whose inputs are on screen: it is unset while they are replaced, so a start
        pressed in between is refused instead of reading inputs that are not mounted yet."""
        self.current, self._showing = None, step
        doc = step.get("doc") or "(no docstring)"
        name = "the pipeline" if step["step"] == PIPELINE else step["step"]
        self.query_one("#step-doc", Static).update(Text.assemble((name, "bold"), f": {doc}"))
        rows = self.query_one("#param-rows", VerticalScroll)
        await rows.remove_children()
        widgets = []
        for key, value in step.get("params", {}).items():
            row = Horizontal(Label(f"{key} [dim]{type(value).__name__}[/]"),
                             Input(value=_text(value), id=f"param-{key}", placeholder=fmt_value(value)),
                             classes="param-row")
            widgets.append(row)
        if not widgets:
            widgets.append(Static("This step takes no params.", classes="hint"))
        await rows.mount_all(widgets)
        self.query_one("#param-hint", Static).update("")
        if self._showing is step:
            self.current = step

    def overrides(self) -> dict[str, str]:
        """Params whose text differs from the configured value, as ``--set`` strings. An emptied field means
        the configured value (its placeholder): no override."""
        if self.current is None:
            return {}
        out = {}
        for key, value in self.current.get("params", {}).items():
            text = self.query_one(f"#param-{key}", Input).value.strip()
            if text and text != _text(value):
                out[key] = text
        return out

    @on(Input.Changed, "#param-rows Input")
    def _param_changed(self, event: Input.Changed) -> None:
        """Check the field as it is typed: text that is not of the param's type says so at once, in one line."""
        if self.current is None or event.input.id is None:
            return
        key = event.input.id.removeprefix("param-")
        bad = self._type_problem(key, event.input.value.strip())
        if bad is None:  # this one is fine now: say what is still wrong in another field, if anything
            bad = next((p for k in self.current.get("params", {}) if k != key
                        for p in [self._type_problem(k, self.query_one(f"#param-{k}", Input).value.strip())]
                        if p is not None), None)
        hint = self.query_one("#param-hint", Static)
        hint.update(Text(bad, style="bold red") if bad else "")

    def _type_problem(self, key: str, text: str) -> str | None:
        """One line when ``text`` is not of ``key``'s type (empty: the default, always fine)."""
        from blase_tui.core.steps import coerce, param_kind
        from blase_tui.errors import BlaseError

        assert self.current is not None
        if key not in self.current.get("params", {}) or not text:
            return None
        default = self.current["params"][key]
        try:
            coerce(key, text, default)
        except (BlaseError, ValueError, TypeError):
            return f"{key} takes {param_kind(default) or 'a value'}, not `{text}` (empty: {fmt_value(default)})"
        return None

    def problems(self, overrides: dict[str, str]) -> list[str]:
        """The same checks `blase step --set` makes, so a typo is caught here and not in a failed job."""
        from blase_tui.core.steps import coerce
        from blase_tui.errors import BlaseError

        assert self.current is not None
        out = []
        for key, text in overrides.items():
            default = self.current["params"][key]
            try:
                coerce(key, text, default)
            except (BlaseError, ValueError, TypeError) as exc:
                out.append(str(exc))
        return out

    async def action_reset(self) -> None:
        if self.current is not None:
            await self._show_form(self.current)
            inputs = self.query("#param-rows Input")
            if inputs:
                inputs.first().focus()

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        # enter moves on to the next field; ctrl+s starts (so editing several params never starts by accident)
        self.focus_next()

    def action_start(self) -> None:
        if self.current is None:
            self.notify("No step to start yet.", severity="warning")
            return
        app: Any = self.app
        step, overrides = self.current["step"], self.overrides()
        problems = self.problems(overrides)
        if problems:
            self.notify("\n".join(problems), title="check the params", severity="error", timeout=8)
            return
        force = self.query_one("#force", Checkbox).value
        self.app.pop_screen()
        if step == PIPELINE:  # `blase run`: the CLI reads the pipeline's order
            app.launch(self.steps[0]["step"], {}, force=force, pipeline=[])
            return
        app.launch(step, overrides, force=force)

    def action_back(self) -> None:
        self.app.pop_screen()
