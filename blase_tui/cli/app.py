"""The `blase` command: assembles one Typer app per noun. Heavy imports happen inside commands, so
``blase --help`` stays instant."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from blase_tui import __version__
from blase_tui.cli import (
    agent,
    common,
    create,
    deploy,
    gc,
    inspect,
    label,
    models,
    pipeline,
    plugins,
    projects,
    runs,
    serve,
    step,
    tui,
    verify,
)
from blase_tui.cli.hot import line, one_line_errors, project_first
from blase_tui.errors import EXIT_INTERRUPTED, EXIT_USAGE

app = typer.Typer(
    name="blase",
    help="Local-first ML pipelines: tracked steps, runs you can find and compare, safe in cron.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"blase {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    project: Annotated[
        Path | None,
        typer.Option("--project", "-C", envvar="BLASE_PROJECT", help="Project folder (default: found from the working directory)."),
    ] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """Local-first ML pipelines: tracked steps, runs you can find and compare, safe in cron."""
    common.set_project_dir(project)


step.register(app)
pipeline.register(app)
inspect.register(app)
create.register(app)
app.add_typer(runs.app, name="runs")
app.add_typer(projects.app, name="projects")
app.add_typer(models.app, name="models")
app.add_typer(label.app, name="label")
app.add_typer(deploy.app, name="deploy")
app.add_typer(plugins.app, name="plugins")
app.add_typer(agent.app, name="agent")
serve.register(app)
gc.register(app)
verify.register(app)
tui.register(app)


def run() -> None:
    """The Typer app's entry point (``blase`` itself starts in cli/hot.py): one line per error and the
    documented exit codes."""
    from blase_tui.core import script_step

    script_step.disable()  # `blase` itself is never a project script's step (core/script_step.py)
    try:
        from typer._click import exceptions as click_errors  # typer 0.2x carries its own click
    except ImportError:  # older typer: click itself
        from click import exceptions as click_errors

    argv = project_first(sys.argv[1:])
    with one_line_errors():
        try:
            plugins.register_nouns(app, argv)
            code = app(args=argv, standalone_mode=False)
            if isinstance(code, int) and code:
                sys.exit(code)
        except click_errors.NoArgsIsHelpError as exc:
            from typer import rich_utils

            rich_utils.rich_format_error(exc)  # `blase runs` alone: the help of the noun
            sys.exit(exc.exit_code)
        except click_errors.UsageError as exc:
            # one line, as every other error: not Typer's box
            names, ctx = [], exc.ctx
            while ctx is not None:  # the command's words, whatever the program was called (`python -m blase_tui`)
                names.append(ctx.info_name)
                ctx = ctx.parent
            where = " ".join(["blase", *reversed(names[:-1])])
            line(f"blase: {exc.format_message().rstrip('.')} (`{where} --help` lists what it takes).")
            sys.exit(EXIT_USAGE)
        except getattr(click_errors, "Abort", ()):  # Ctrl-C at a prompt
            sys.exit(EXIT_INTERRUPTED)
