"""The command palette's blase provider, built from the current state: the screen's actions, the open
project's recent runs and steps, and the known projects."""

from __future__ import annotations

from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from blase_tui.tui.screens.base import BlaseScreen


class BlaseCommands(Provider):
    """Actions of the current screen, "open run …" for the newest runs, "launch …" for each step."""

    def _commands(self) -> list[tuple[str, str, Any]]:
        app: Any = self.app
        screen: Any = self.screen
        out: list[tuple[str, str, Any]] = []
        for binding in getattr(screen, "BINDINGS", []):
            if getattr(binding, "description", "") and hasattr(screen, f"action_{binding.action.split('(')[0]}"):
                out.append((binding.description, binding.tooltip or "", partial(screen.run_action, binding.action)))
        if isinstance(screen, BlaseScreen):
            for name in screen.palette_runs():
                out.append((f"open run {name}", "Show this run", partial(screen.open_run, name)))
        if app.project is not None:
            from blase_tui.tui.screens.launch import LaunchScreen

            def launch(step: str) -> None:
                app.push_screen(LaunchScreen(app.project, step=step))

            for step in app.step_names():
                out.append((f"launch {step}", "Open the launch form for this step", partial(launch, step)))
        out.append(("projects", "Known projects", partial(app.open_projects)))
        return out

    async def discover(self) -> Hits:
        await self.app.read_steps()  # type: ignore[attr-defined]
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        await self.app.read_steps()  # type: ignore[attr-defined]
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
