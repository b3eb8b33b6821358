"""`blase create TEMPLATE NAME` and `blase demo`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from blase_tui.cli import common
from blase_tui.errors import ConfigError

DEMO_STEPS = ("etl", "inspect", "clean", "prepare", "train", "evaluate")


def register(app: typer.Typer) -> None:
    app.command("create")(create_command)
    app.command("demo")(demo_command)


def create_command(
    template: Annotated[str | None, typer.Argument(help="Template: blank, images (or sample), tabular, json, audio, alerts, rl (`blase create --list`); or just the project name for images.")] = None,
    name: Annotated[str | None, typer.Argument(help="Folder of the new project.")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the templates.")] = False,
) -> None:
    """Create a project from a template: `blase create sample my_project`."""
    from blase_tui.core import templates

    if list_:
        for tname, (_path, summary) in templates.available().items():
            if tname != "sample":  # `sample` is another name for `images`
                common.console.print(f"{tname:8} {summary}", markup=False, soft_wrap=True)
        return
    if template is None:
        raise ConfigError("give a project name: `blase create sample NAME` (`blase create --list` shows templates).")
    if name is None:
        template, name = "sample", template
    target = templates.create(template, Path(name))
    _register(target)
    common.console.print(f"created project {target.name} at {target}")
    common.console.print(f"next: cd {name} && blase steps && blase step etl")


def _register(root: Path) -> None:
    from blase_tui.core import registry

    try:
        registry.add_project(root)
    except (OSError, ConfigError) as exc:
        common.err_console.print(f"blase: note: could not add the project to the known list ({exc}).", markup=False)


def demo_command(
    directory: Annotated[Path | None, typer.Argument(help="Where to put the demo project (default: ./blase-demo).")] = None,
) -> None:
    """Copy the sample project into a new folder, run its steps headless as one run, and show the runs."""
    from blase_tui.core import templates

    target = directory or _free_name(Path("blase-demo"))
    root = templates.create("sample", target)
    _register(root)
    c = common.console
    c.print(f"[bold]blase demo[/]: sample project created at {root}")
    env = {**os.environ, "BLASE_PROJECT": str(root)}
    cmd = [sys.executable, "-m", "blase_tui", "step"]
    for i, step in enumerate(DEMO_STEPS):
        flags = ["--start-run"] if i == 0 else ["--end-run"] if i == len(DEMO_STEPS) - 1 else []
        c.print(f"\n[bold]$ {' '.join(['blase', 'step', step, *flags])}[/]")
        started = time.monotonic()
        proc = subprocess.run([*cmd, step, *flags], cwd=root, env=env)
        if proc.returncode != 0:
            c.print(f"[red]step {step} exited with {proc.returncode}[/]; see `blase runs show latest` in {root}.")
            raise typer.Exit(proc.returncode)
        c.print(f"[dim]({time.monotonic() - started:.1f} s)[/]")
    c.print("\n[bold]$ blase step train --set learning_rate=0.0005[/]  (a second run with another param, to compare)")
    proc = subprocess.run([*cmd, "train", "--set", "learning_rate=0.0005"], cwd=root, env=env)
    if proc.returncode != 0:
        raise typer.Exit(proc.returncode)

    from blase_tui.core.project import Project
    from blase_tui.store.query import list_runs

    store = Project.at(root).store
    runs = list_runs(store, limit=5)
    c.print("\n[bold]Runs[/]")
    for r in runs:
        steps = " ".join(s["step"] for s in r["steps"])
        metrics = "  ".join(f"{k}={common.fmt_value(v)}" for k, v in r["metrics"].items())
        c.print(f"  {r['id']}  {common.status_text(r['status'])}  {steps}  {metrics}")
    rel = os.path.relpath(root)
    c.print("\n[bold]Try next[/]")
    c.print(f"  cd {rel}")
    c.print("  blase runs list                      every run, newest first")
    c.print("  blase runs show latest               params, metrics, artifacts, environment")
    if len(runs) >= 2:
        c.print(f"  blase runs diff {runs[1]['id'][:15]} {runs[0]['id'][:15]}   what changed between the two runs")
    c.print("  blase models list                    the trained models and their cards")
    c.print("  blase runs find --step train --param learning_rate=0.0005 --path")
    c.print("  blase step train --set epochs=12     (and `blase runs watch` in another terminal)")
    c.print("  blase tui                            browse it all in the terminal UI")
    c.print("  blase label                          label alerts for active learning, then `blase step al_train`")


def _free_name(base: Path) -> Path:
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate
