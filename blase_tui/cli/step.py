"""`blase step NAME` and `blase steps`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from blase_tui.cli import common


def register(app: typer.Typer) -> None:
    app.command("step")(step_command)
    app.command("steps")(steps_command)


def step_command(
    name: Annotated[str, typer.Argument(help="The step to run (`blase steps` lists them).")] = "",
    start_run: Annotated[bool, typer.Option("--start-run", "--start_run", help="Open a run that later steps join.")] = False,
    end_run: Annotated[bool, typer.Option("--end-run", "--end_run", help="Close the open run after this step.")] = False,
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", metavar="KEY=VALUE", help="Override a param (repeatable).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Run even if an identical earlier execution can be reused.")] = False,
    run_name: Annotated[str | None, typer.Option("--name", help="A name for a new run.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue training from the last checkpoint an earlier execution left (its params must be this execution's, but for epochs).")] = False,
    resume_any: Annotated[bool, typer.Option("--resume-any", help="Resume even when the checkpoint was made with other params: this execution runs with, and records, the checkpoint's.")] = False,
    executor: Annotated[str | None, typer.Option("--executor", help="Run the step's data work on an executor a plugin"
                                                 " adds, such as dask (default: \\[executor] name).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Workers for --executor (default: one"
                                                " per core).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success but what the step itself prints (for cron); a step that was up to date still says so in one line.")] = False,
) -> None:
    """Run one step of the project, tracked. Exit codes: 0 ok, 1 step failed, 2 usage or config error,
    3 the step is already running, 130 interrupted."""
    from blase_tui.cli import hot  # the implementation `blase step` runs without Typer

    raise typer.Exit(hot.step(common.project_dir(), name=name, start_run=start_run, end_run=end_run, set_=set_,
                              force=force, run_name=run_name, resume=resume, resume_any=resume_any,
                              executor=executor, workers=workers, quiet=quiet))


def steps_command(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the project's steps with their docstrings and params."""
    import contextlib

    project = common.project()
    # whatever the project prints while it is imported goes to stderr, so `--json` stays parseable
    with contextlib.redirect_stdout(sys.stderr):
        steps = project.load_steps()
    rows = []
    for info in steps.values():
        params = {**info.defaults, **project.config.step_params(info.name)}
        rows.append({"step": info.name, "doc": info.summary, "params": params})
    if json_:
        common.print_json(rows)
        return
    table = common.table("STEP", "WHAT IT DOES", "PARAMS", wrap=("WHAT IT DOES", "PARAMS"))
    for r in rows:
        table.add_row(r["step"], r["doc"], ", ".join(f"{k}={common.fmt_value(v)}" for k, v in r["params"].items()))
    common.console.print(table)
