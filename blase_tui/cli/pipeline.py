"""`blase run` (the project's pipeline as one run) and `blase status` (what it would run, and why)."""

from __future__ import annotations

import contextlib
import sys
from typing import Annotated

import typer

from blase_tui.cli import common

StepsArg = Annotated[list[str] | None, typer.Argument(help="Only these steps of the pipeline (default: all).",
                                                      show_default=False)]
FromOpt = Annotated[str | None, typer.Option("--from", help="Start at this step of the pipeline.")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Stop after this step of the pipeline.")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", "-s", metavar="STEP.KEY=VALUE",
    help="Override a param of one step (train.epochs=3), or of every step that takes it (epochs=3); repeatable.")]


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
    app.command("status")(status_command)


def _load(steps_: list[str] | None, start: str | None, stop: str | None, set_: list[str] | None):  # type: ignore[no-untyped-def]
    from blase_tui.core import pipeline

    project = common.project()
    with contextlib.redirect_stdout(sys.stderr):  # what the project prints as it is imported
        steps = project.load_steps()
    order = pipeline.pipeline_order(project, steps)
    chosen = pipeline.select(order, list(steps_ or []), start, stop)
    return project, steps, order, chosen, pipeline.split_overrides(list(set_ or []), chosen, steps)


def run_command(
    steps_: StepsArg = None,
    start: FromOpt = None,
    stop: ToOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Say what would run and why; run nothing.")] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Run every chosen step, even those up to date.")] = False,
    set_: SetOpt = None,
    run_name: Annotated[str | None, typer.Option("--name", help="A name for the run.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the steps' own output and one line per step"
                                                              " (for cron).")] = False,
) -> None:
    """Run the project's pipeline (\\[pipeline] steps in blase.toml, else the entry module's steps in order) as one
    run, in one process: each step up to date is reused, the rest run in order, and the first failure stops it.
    When every step is up to date nothing runs and no run is made. Exit codes as `blase step`: 0 ok, 1 a step
    failed, 2 usage or config error, 3 a step is already running, 130 interrupted."""
    from blase_tui.core import pipeline

    project, steps, order, chosen, overrides = _load(steps_, start, stop, set_)
    plans = pipeline.plan(project, steps, chosen, overrides, force=force)
    err = sys.stderr
    if dry_run or not any(p.runs for p in plans):
        todo = [p.step for p in plans if p.runs]
        head = (f"would run {', '.join(todo)} as one run" if todo else
                "the pipeline is up to date: nothing ran" if not dry_run else "the pipeline is up to date: nothing would run")
        common.console.print(f"{' → '.join(chosen)}: {head}", markup=False, highlight=False)
        pipeline.print_plan(plans, sys.stdout)
        raise typer.Exit(0)
    if not quiet:
        pipeline.print_plan(plans, err)
    code, outcomes = pipeline.run_pipeline(project, steps, chosen, overrides, force=force, run_name=run_name,
                                           quiet=quiet, out=err)
    ran = [o.step for o in outcomes if o.reused_from is None and o.ran]
    if code == 0:
        run_id = outcomes[-1].run_id
        reused = len(chosen) - len(ran)
        print(f"run {run_id}: {len(ran)} of {len(chosen)} steps ran ({', '.join(ran) or 'none'})"
              + (f"; {reused} reused" if reused else ""), file=err)
    raise typer.Exit(code)


def status_command(
    steps_: StepsArg = None,
    start: FromOpt = None,
    stop: ToOpt = None,
    set_: SetOpt = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Each step of the pipeline and whether `blase run` would run it, and why: never ran, code, params,
    environment or inputs changed, or a step before it runs and writes what it reads (as `dvc status`)."""
    from blase_tui.core import pipeline

    project, steps, order, chosen, overrides = _load(steps_, start, stop, set_)
    plans = pipeline.plan(project, steps, chosen, overrides)
    if json_:
        common.print_json({"pipeline": order, "configured": bool(project.config.pipeline),
                           "steps": [p.to_json() for p in plans]})
        return
    source = "[pipeline] steps in blase.toml" if project.config.pipeline else f"the steps of {project.config.entry}"
    stale = sum(p.runs for p in plans)
    common.console.print(f"pipeline ({source}): {' → '.join(order)}; "
                         + (f"{stale} of {len(plans)} would run" if stale else "up to date"),
                         markup=False, highlight=False)
    pipeline.print_plan(plans, sys.stdout)
