"""`blase projects list|add|remove`: the user-level list of known projects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from blase_tui.cli import common
from blase_tui.core.fmt import fmt_path

app = typer.Typer(no_args_is_help=True, help="The projects blase knows about (the TUI browses these).")


@app.command("list")
def list_command(json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List known projects."""
    from blase_tui.core import registry

    projects = registry.list_projects()
    if json_:
        common.print_json(projects)
        return
    if not projects:
        common.console.print("No known projects. Add one with `blase projects add PATH` or make one with `blase create`.")
        return
    table = common.table("NAME", "PATH", "ADDED", wrap=("PATH",))
    for p in projects:
        path = fmt_path(p["path"]) if p["exists"] else f"{fmt_path(p['path'])} [red](missing)[/]"
        table.add_row(p["name"], path, common.fmt_time(p.get("added")))
    common.console.print(table)


@app.command("add")
def add_command(path: Annotated[Path, typer.Argument(help="A project folder (or a folder inside one).")] = Path(".")) -> None:
    """Remember a project."""
    from blase_tui.core import registry

    entry = registry.add_project(path)
    common.console.print(f"added project {entry['name']} at {entry['path']}")


@app.command("remove")
def remove_command(project: Annotated[str, typer.Argument(help="Name or path of a known project.")]) -> None:
    """Forget a project (its files are left alone)."""
    from blase_tui.core import registry

    entry = registry.remove_project(project)
    common.console.print(f"removed project {entry['name']} ({entry['path']}); its files are untouched")
