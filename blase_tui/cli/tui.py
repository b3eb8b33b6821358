"""`blase tui`: the full-screen app. Textual is imported only when the command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("tui")
    def tui(
        path: Annotated[Path | None, typer.Argument(help="Project folder (default: found from the working directory).")] = None,
    ) -> None:
        """Open the terminal UI: projects, runs, artifacts, launch steps with live panes, label data."""
        from blase_tui.cli import common
        from blase_tui.tui.app import run_app

        raise typer.Exit(run_app(path or common.project_dir()))
