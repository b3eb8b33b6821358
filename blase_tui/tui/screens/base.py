"""The base of blase's full screens: what the command palette and the help screen ask every screen, typed,
instead of being looked up with ``getattr``."""

from __future__ import annotations

from textual.screen import Screen

from blase_tui.tui.worker_errors import ShowsWorkerErrors


class BlaseScreen(ShowsWorkerErrors, Screen[None]):
    """A full screen of the app: its worker failures become notifications (``ShowsWorkerErrors``), and it may
    offer runs to the palette and extra rows to the help screen."""

    def palette_runs(self) -> list[str]:
        """Run ids the command palette offers to open ("open run …"); none by default."""
        return []

    def open_run(self, run_id: str) -> None:
        """Open a run from the palette (screens that list runs say how)."""
        from blase_tui.tui.screens.run import RunScreen

        project = getattr(self.app, "project", None)
        if project is not None:
            self.app.push_screen(RunScreen(project, run_id))

    def help_rows(self) -> list[tuple[str, str]]:
        """Keys the help screen lists beyond the screen's bindings (keys read from a config); none by default."""
        return []
