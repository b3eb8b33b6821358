"""The Textual app: holds the open project and the launched steps; screens do the rest. ``make_app`` is the
one factory the CLI and the tests share."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType

from blase_tui.core.launch import LaunchedStep
from blase_tui.core.project import Project
from blase_tui.errors import BlaseError
from blase_tui.tui.commands import BlaseCommands
from blase_tui.tui.worker_errors import ShowsWorkerErrors


class BlaseApp(ShowsWorkerErrors, App[int]):
    """``blase tui``: projects → runs → run, compare, launch with live panes, labelling."""

    TITLE = "blase"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {BlaseCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", id="app.help", tooltip="Keys of this screen"),
        Binding("q", "quit_app", "Quit", id="app.quit", tooltip="Quit (asks while launched steps run)"),
        Binding("ctrl+c", "quit_app", "Quit", show=False, priority=True, id="app.ctrl_c"),
    ]

    def __init__(self, project_root: Path | None = None, *, now: Callable[[], float] = time.time,
                 start: str = "runs", label_options: dict | None = None) -> None:
        super().__init__()
        self.project: Project | None = Project.at(project_root) if project_root else None
        self.jobs: list[LaunchedStep] = []
        self.step_cache: dict[Path, list[dict]] = {}  # project root -> `blase steps --json`
        self._step_reads: dict[Path, Any] = {}  # project root -> the palette's read of its steps under way
        self._projects: dict[Path, Project] = {self.project.root: self.project} if self.project else {}
        self.now = now
        self.summary = ""  # printed after the app ends (the labelling screen's round progress)
        self._start = start
        self._label_options = label_options or {}

    def on_mount(self) -> None:
        from blase_tui.tui.screens.projects import ProjectsScreen

        if self._start == "label" and self.project is not None:
            from blase_tui.tui.screens.label import LabelScreen

            self.push_screen(LabelScreen(self.project, **self._label_options), callback=lambda _: self.exit(0))
            return
        self.push_screen(ProjectsScreen())
        if self.project is not None:
            self.open_project(self.project.root)

    def project_at(self, root: Path) -> Project:
        """One Project (and so one store connection) per folder for the life of the app."""
        root = root.resolve()
        if root not in self._projects:
            self._projects[root] = Project.at(root)
        return self._projects[root]

    def open_project(self, root: Path) -> None:
        """Show the runs of the project at ``root`` on top of the projects list."""
        from blase_tui.tui.screens.runs import RunsScreen

        try:
            self.project = self.project_at(root)
        except BlaseError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        self._remember_project(self.project.root)
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.push_screen(RunsScreen(self.project))

    @work(thread=True, group="registry", exit_on_error=False)
    def _remember_project(self, root: Path) -> None:
        """Remember the project in the user registry (a file lock: not on the event loop); browsing works
        without it."""
        from blase_tui.core import registry

        if any(Path(p["path"]) == root for p in registry.list_projects()):
            return
        try:
            registry.add_project(root)
        except (OSError, BlaseError):
            pass

    def pop_screen(self) -> Any:
        """Back from a screen: its toasts ("train: succeeded", "sorted by loss") stay with it instead of showing
        again on the screen below. A dialog closing keeps them (they belong to the screen under it)."""
        from textual.screen import ModalScreen

        if not isinstance(self.screen, ModalScreen):
            self.clear_notifications()
        return super().pop_screen()

    def open_projects(self) -> None:
        """Back to the projects list (the bottom screen)."""
        while len(self.screen_stack) > 2:
            self.pop_screen()

    def open_jobs(self) -> None:
        """The live panes of the steps launched from this app."""
        from blase_tui.tui.screens.jobs import JobsScreen

        if not self.jobs:
            self.notify("Nothing launched yet: press l on the runs screen to launch a step.", severity="warning")
            return
        if isinstance(self.screen, JobsScreen):
            self.call_later(self.screen.sync)  # already shown: add the new tab
        else:
            self.push_screen(JobsScreen())

    def launch(self, step: str, overrides: dict[str, str], *, force: bool = False,
               pipeline: list[str] | None = None) -> LaunchedStep:
        """Start ``blase step`` (with ``pipeline``: ``blase run`` of those steps, ``step`` the first) as a child
        process of the open project and show its live panes."""
        assert self.project is not None
        job = LaunchedStep(self.project.root, step, dict(overrides), pipeline=pipeline)
        self.jobs.append(job)
        self._start_job(job, force)
        self.open_jobs()
        return job

    @work(thread=True, group="launch", exit_on_error=False)
    def _start_job(self, job: LaunchedStep, force: bool) -> None:
        # Popen forks and execs: quick, but still blocking I/O, so not on the event loop
        job.start(force=force)

    def step_names(self) -> list[str]:
        """The open project's steps, once read (by the launch screen, or the palette when it opens)."""
        return [s["step"] for s in self.step_cache.get(self.project.root, [])] if self.project else []

    async def read_steps(self) -> None:
        """Read the open project's steps into ``step_cache`` unless they are there: the first time the palette
        opens, so its "launch …" entries need no launch form. One read (a child process importing the project's
        code, in a thread) serves every palette search; a search cancelled by the next key leaves it running."""
        import asyncio
        import subprocess

        from blase_tui.tui.screens.launch import read_steps

        if self.project is None or self.step_cache.get(self.project.root):
            return
        root = self.project.root
        task = self._step_reads.get(root)
        if task is None:
            task = self._step_reads[root] = asyncio.ensure_future(asyncio.to_thread(read_steps, root))
        try:
            steps, error = await asyncio.shield(task)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:  # no python, bad JSON, a timeout
            steps, error = [], str(exc)
        if error:  # said by the launch form, which reads them again; the next palette tries again
            self._step_reads.pop(root, None)
            return
        self.step_cache.setdefault(root, steps)

    def action_help(self) -> None:
        from blase_tui.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def running_jobs(self) -> list[LaunchedStep]:
        return [j for j in self.jobs if j.poll() is None]

    def action_quit_app(self) -> None:
        running = self.running_jobs()
        if not running:
            self.exit(0)
            return
        from blase_tui.tui.screens.confirm import ChoiceScreen

        names = ", ".join(j.step for j in running)

        def answer(choice: str | None) -> None:
            if choice == "cancel":
                for job in running:
                    job.cancel()
            if choice in ("cancel", "leave"):
                self.exit(0)

        one = len(running) == 1
        they, them = ("It", "it") if one else ("They", "them")
        self.push_screen(ChoiceScreen(
            (f"The step {names} is still running." if one else f"{len(running)} launched steps are still running"
             f" ({names}).") + f" {they} run{'s' if one else ''} on {'its' if one else 'their'} own, like a cron job:"
            f" quit and leave {them} running (the runs table shows {them} when you come back), or stop {them}?",
            [("s", "stay", "Stay", "default"), ("l", "leave", f"Quit, leave {them} running", "primary"),
             ("c", "cancel", f"Stop {them} and quit", "error")]), answer)


def make_app(project_root: Path | None, **kwargs: object) -> BlaseApp:
    """The app for ``project_root`` (or the projects list when None)."""
    return BlaseApp(project_root, **kwargs)  # type: ignore[arg-type]


def _root_or_none(path: Path | None) -> Path | None:
    try:
        return Project.discover(path).root
    except BlaseError:
        if path is not None:
            raise
        return None


def run_app(path: Path | None) -> int:
    """``blase tui [PATH]``: the project at PATH, else the one around the working directory, else the list."""
    app = make_app(_root_or_none(path))
    app.run()
    return app.return_code or 0


def run_labelling(path: Path | None, *, strategy: str | None = None, n: int | None = None) -> int:
    """``blase label``: the labelling screen alone; quitting it ends the app."""
    root = Project.discover(path).root
    app = make_app(root, start="label", label_options={"strategy": strategy, "n": n})
    app.run()
    if app.summary:
        print(app.summary)
    return app.return_code or 0
