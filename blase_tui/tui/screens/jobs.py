"""Jobs: the steps launched from this app, one tab each with its live panes. Cancel asks first; the step is
then sent SIGTERM and the engine marks it interrupted. A launched step runs in its own session: it keeps
running if the terminal closes, like a cron job, and shows up in the runs table when the TUI opens again."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Static, TabbedContent, TabPane

from blase_tui.core.launch import LaunchedStep
from blase_tui.tui.screens.base import BlaseScreen
from blase_tui.tui.widgets.step_panes import StepPanes

GLYPH = {"succeeded": "✓", "failed": "✗", "interrupted": "■"}


def _tab_id(index: int) -> str:
    return f"job-{index}"


class JobsScreen(BlaseScreen):
    """Steps launched from here: live memory, CPU, GPU, a bar per stage and the log. 1–9 or [ ] pick a tab,
    x cancels its step, o opens its run, w closes the tab of a step that has ended."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="jobs.back", tooltip="Back (launched steps keep running)"),
        Binding("x", "cancel", "Cancel step", id="jobs.cancel", tooltip="Stop the step of this tab (asks first)"),
        Binding("o", "open_run", "Open run", id="jobs.open", tooltip="Show the run this step belongs to"),
        Binding("l", "launch", "Launch", id="jobs.launch", tooltip="Launch another step"),
        Binding("w", "close_tab", "Close tab", id="jobs.close",
                tooltip="Close the tab of a step that has ended (its run stays in the runs table)"),
        Binding("left_square_bracket", "step_tab(-1)", "Previous", show=False, id="jobs.prev", tooltip="Previous tab"),
        Binding("right_square_bracket", "step_tab(1)", "Next", show=False, id="jobs.next", tooltip="Next tab"),
        *[Binding(str(i), f"pick_tab({i})", f"Tab {i}", show=False, id=f"jobs.tab{i}") for i in range(1, 10)],
    ]

    def __init__(self) -> None:
        super().__init__()
        self.shown: list[LaunchedStep] = []  # every job given a tab, in order (closed ones included)
        self.closed: set[int] = set()

    def compose(self) -> ComposeResult:
        yield Static("blase · launched steps", classes="title", id="jobs-title")
        yield TabbedContent(id="job-tabs")
        yield Footer()

    async def on_mount(self) -> None:
        await self.sync()

    async def on_screen_resume(self) -> None:
        await self.sync()

    async def sync(self) -> None:
        """Add a tab for each job launched since the screen was last shown, and select the newest of those
        (coming back from a dialog leaves the selected tab alone)."""
        app: Any = self.app
        tabs = self.query_one(TabbedContent)
        added = None
        for job in app.jobs:
            if job in self.shown:
                continue
            index = len(self.shown)
            self.shown.append(job)
            project = app.project_at(job.project_root)
            store = project.store

            def locate(job: LaunchedStep = job, store: Any = store) -> Any:
                if job.pipeline is not None:  # every step's events, in order
                    return job.events_paths(store)
                return job.events_path if job.locate(store) else None

            def finished(job: LaunchedStep = job) -> bool:
                return job.poll() is not None

            what = job.step if job.pipeline is None else f"pipeline {' → '.join(job.pipeline) or '(all steps)'}"
            panes = StepPanes(locate, finished, title=f"{project.name}: {what} {self._overrides(job)}",
                              budget=project.config.memory_budget)
            panes.job = job  # type: ignore[attr-defined]
            await tabs.add_pane(TabPane(self._label(index, job, "running"), panes, id=_tab_id(index)))
            added = _tab_id(index)
        if added is not None:
            tabs.active = added

    @staticmethod
    def _label(index: int, job: LaunchedStep, status: str) -> str:
        what = job.step if job.pipeline is None else (f"run {job.pipeline[0]}…{job.pipeline[-1]}"
                                                      if len(job.pipeline) > 1 else "run pipeline")
        return f"{index + 1} {what} {GLYPH.get(status, '…')}"

    @staticmethod
    def _overrides(job: LaunchedStep) -> str:
        return " ".join(f"{k}={v}" for k, v in job.overrides.items())

    def current_job(self) -> LaunchedStep | None:
        active = self.query_one(TabbedContent).active
        if not active:
            return None
        return self.shown[int(active.split("-")[1])]

    def on_step_panes_finished(self, message: StepPanes.Finished) -> None:
        job: LaunchedStep = message.panes.job  # type: ignore[attr-defined]
        code = job.poll()
        status = message.status or ("interrupted" if job.cancelled else "failed" if code else "succeeded")
        message.panes.status = status
        message.panes.query_one("#panes-status", Static).update(message.panes._status_line())
        index = self.shown.index(job)
        self.query_one(TabbedContent).get_tab(_tab_id(index)).label = self._label(index, job, status)
        if job.pipeline is not None:  # `blase run` says a line per step on stderr: the pipeline's summary
            if job.step_run_id is None and code == 0:
                message.panes.write_log(["the pipeline is up to date: nothing ran"])
            text = job.error_text()
            if text:
                message.panes.write_log(["── pipeline ──", *text.splitlines()])
        elif job.step_run_id is None or code not in (0, 1, 130, None):
            # the child stopped before its step began (a bad param, another copy holding the lock)
            text = job.error_text()
            if text:
                message.panes.write_log(text.splitlines())
        severity = "information" if status == "succeeded" else "warning" if status == "interrupted" else "error"
        what = "pipeline" if job.pipeline is not None else job.step
        self.notify(f"{what}: {status}" + (f" (exit {code})" if code else ""), severity=severity)  # type: ignore[arg-type]

    def action_pick_tab(self, number: int) -> None:
        """The tab labelled ``number`` (a closed tab's number is not given to another)."""
        if 1 <= number <= len(self.shown) and id(self.shown[number - 1]) not in self.closed:
            self.query_one(TabbedContent).active = _tab_id(number - 1)

    def action_step_tab(self, delta: int) -> None:
        job = self.current_job()
        open_ = [i for i, j in enumerate(self.shown) if id(j) not in self.closed]
        if job is not None and open_:
            here = open_.index(self.shown.index(job))
            self.action_pick_tab(open_[(here + delta) % len(open_)] + 1)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_cancel(self) -> None:
        from blase_tui.tui.screens.confirm import ConfirmScreen

        job = self.current_job()
        if job is None or job.poll() is not None:
            self.notify("This step is not running.", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                job.cancel()
                self.notify(f"{job.step}: stopping…")

        self.app.push_screen(ConfirmScreen(f"Stop {job.step} (pid {job.pid})? It will be marked interrupted.",
                                           yes="Stop it", no="Keep running"), answer)

    async def action_close_tab(self) -> None:
        """Close the tab of a step that has ended; a running step's tab stays (x stops it first)."""
        job = self.current_job()
        if job is None:
            return
        if job.poll() is None:
            self.notify("This step is still running; x stops it, then w closes its tab.", severity="warning")
            return
        tabs = self.query_one(TabbedContent)
        await tabs.remove_pane(_tab_id(self.shown.index(job)))
        self.closed.add(id(job))
        if not tabs.tab_count:
            self.query_one("#jobs-title", Static).update("blase · launched steps · none open (l launches one)")

    def action_open_run(self) -> None:
        from blase_tui.tui.screens.run import RunScreen

        job = self.current_job()
        app: Any = self.app
        if job is None or job.run_id is None:
            self.notify("This step has not recorded a run yet.", severity="warning")
            return
        app.push_screen(RunScreen(app.project_at(job.project_root), job.run_id))

    def action_launch(self) -> None:
        from blase_tui.tui.screens.launch import LaunchScreen

        app: Any = self.app
        app.push_screen(LaunchScreen(app.project))
