"""`blase models list|show`: the model registry."""

from __future__ import annotations

from typing import Annotated

import typer

from blase_tui.cli import common
from blase_tui.core.fmt import fmt_hash

app = typer.Typer(no_args_is_help=True, help="Saved model versions and their cards.")


@app.command("list")
def list_command(json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every saved model version, newest first, with its aliases, framework, run and final metrics."""
    from blase_tui.store import models

    rows = models.list_models(common.project().store, newest_first=True)
    if json_:
        common.print_json(rows)
        return
    if not rows:
        common.console.print("No models yet. Save one with Train.save_model(...) in a training step.")
        return
    table = common.table("MODEL", "VERSION", "ALIASES", "FRAMEWORK", "RUN", "CREATED", "METRICS", wrap=("METRICS",))
    for r in rows:
        shown = {k: v for k, v in r["metrics"].items() if k not in ("epoch", "seconds")}
        table.add_row(r["name"], str(r["version"]), ", ".join(r["aliases"]) or "-", r["framework"], r["run_id"] or "-",
                      common.fmt_time(r["created"]),
                      "  ".join(f"{k}={common.fmt_value(v)}" for k, v in list(shown.items())[:4]))
    common.console.print(table)


@app.command("show")
def show_command(
    model: Annotated[str, typer.Argument(help="NAME (newest version), NAME:VERSION or NAME@ALIAS.")],
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One model version: its card (framework, input, classes, metrics, training run, data hash, packages)."""
    from blase_tui.store import models

    row = models.get(common.project().store, model)
    if json_:
        common.print_json(row)
        return
    c = common.console
    card = row["card"] or {}
    c.print(f"[bold]{row['name']} v{row['version']}[/]  {row['framework']}  trained in run {row['run_id']}"
            + (" (deleted since)" if row["run_deleted"] else "")
            + (f"  aliases: {', '.join(row['aliases'])}" if row["aliases"] else ""))
    c.print(f"  file {row['file_name']} ({fmt_hash(row['file_hash'])}), stored at {row['path']}")
    if card:
        inp = card.get("input") or {}
        c.print(f"  input {inp.get('column')} {inp.get('shape')} {inp.get('dtype')}, target {inp.get('target')}")
        if card.get("classes") is not None:
            c.print(f"  classes {', '.join(map(str, card['classes']))}")
        c.print(f"  epochs {card.get('epochs')}, seed {card.get('seed')}, data {str(card.get('data_manifest_hash'))[:20]}")
        c.print("  packages " + ", ".join(f"{k} {v}" for k, v in (card.get("packages") or {}).items()))
    c.print("  metrics " + ", ".join(f"{k}={common.fmt_value(v)}" for k, v in row["metrics"].items()))


@app.command("alias")
def alias_command(
    name: Annotated[str, typer.Argument(help="The model's name.")],
    version: Annotated[int, typer.Argument(help="The version the alias names.")],
    alias: Annotated[str, typer.Argument(help="champion, production, or any name.")],
) -> None:
    """Point NAME@ALIAS at a version; it moves from the version it named before.

    NAME@ALIAS works wherever a model is named: models show, blase_tui.models.load, the labelling model."""
    from blase_tui.store import models

    store = common.project().store
    models.set_alias(store, name, version, alias)
    common.console.print(f"{name}@{alias} is now {name} v{version}")
