"""`blase plugins list`: the installed plugins, what each adds, and which the project enables; and the CLI nouns
plugins add (`blase mlflow ...`), registered without importing the plugin until its noun is used."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from blase_tui.cli import common

app = typer.Typer(no_args_is_help=True, help="Plugins: installed, enabled, what they add.")


@app.command("list")
def list_command(json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every installed plugin entry point (CLI nouns, Extract readers, executors, framework adapters, TUI
    previews), and the plugins the project's blase.toml enables (\\[plugins] enabled)."""
    from blase_tui.core import plugins
    from blase_tui.core.config import find_project_root

    found = plugins.installed()
    enabled: list[str] = []
    if common.project_dir() is not None or find_project_root() is not None:
        enabled = plugins.enabled(common.project().config.plugins)
    names = {p.plugin for p in found}
    rows = [{"plugin": p.plugin, "distribution": p.distribution, "version": p.version, "kind": p.kind,
             "name": p.name, "value": p.value, "enabled": p.plugin in enabled} for p in found]
    missing = [name for name in enabled if name not in names]
    if json_:
        common.print_json({"installed": rows, "enabled_not_installed": missing})
        return
    if not rows:
        common.console.print("No plugins installed. First-party ones live in plugins/ (pip install"
                             " plugins/blase-fits); docs/plugins.md shows how to write one.")
    else:
        table = common.table("PLUGIN", "VERSION", "ADDS", "AS", "ENABLED")
        for r in rows:
            table.add_row(r["distribution"], r["version"], r["kind"], _as(r["kind"], r["name"]),
                          "yes" if r["enabled"] else "-")
        common.console.print(table)
    for name in missing:
        common.err_console.print(f"blase: [plugins] enables {name!r}, which is not installed (pip install"
                                 f" blase-{name}).", markup=False)


def _as(kind: str, name: str) -> str:
    return {"cli": f"blase {name}", "readers": f"Extract.load_{name}", "executors": f"--executor {name}",
            "previews": f"preview of *{name}"}.get(kind, name)


def register_nouns(root: typer.Typer, argv: list[str]) -> None:
    """Add the CLI nouns of installed plugins to ``root``: each a thin command that imports its plugin only
    when run. Scanned only when the command line needs it (a word that is no built-in noun, or top-level
    help), so other commands never pay for it."""
    builtin = {c.name for c in root.registered_commands} | {g.name for g in root.registered_groups}
    words, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("-C", "--project"):
            skip = True  # its value is a folder, not a noun
        elif not arg.startswith("-"):
            words.append(arg)
    wants_help = not words or words[0] == "help"
    if not wants_help and words[0] in builtin:
        return
    from blase_tui.core import plugins

    for plugin in plugins.installed("cli"):
        if plugin.name not in builtin:
            _add_noun(root, plugin)


def _add_noun(root: typer.Typer, plugin: Any) -> None:
    @root.command(plugin.name, help=f"(plugin {plugin.distribution} {plugin.version}) `blase {plugin.name} --help`"
                  " for its commands.", add_help_option=False,
                  context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def noun(ctx: typer.Context) -> None:
        from blase_tui.core import plugins

        sub = plugins.load("cli", plugin.name, what=f"`blase {plugin.name}`")
        command = typer.main.get_command(sub) if isinstance(sub, typer.Typer) else sub
        command.main(args=list(ctx.args), prog_name=f"blase {plugin.name}", standalone_mode=False)
