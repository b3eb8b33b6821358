"""`blase models list|show|alias|import`: the model registry."""

from __future__ import annotations

from pathlib import Path
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
        common.print_json([r.to_json() for r in rows])
        return
    if not rows:
        common.console.print("No models yet. Save one with Train.save_model(...) in a training step.")
        return
    table = common.table("MODEL", "VERSION", "ALIASES", "FRAMEWORK", "RUN", "CREATED", "METRICS", wrap=("METRICS",))
    for r in rows:
        shown = {k: v for k, v in r.metrics.items() if k not in ("epoch", "seconds")}
        table.add_row(r.name, str(r.version), ", ".join(r.aliases) or "-", r.framework, r.run_id or "-",
                      common.fmt_time(r.created),
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
        common.print_json(row.to_json())
        return
    c = common.console
    card = row.card or {}
    if card.get("imported_from"):
        made = f"imported from {card['imported_from']}"
    else:  # a card that names no training run: a file trained outside any run, registered by this one
        verb = "registered in" if "training_run" in card and not card["training_run"] else "trained in"
        made = f"{verb} run {row.run_id}" + (" (deleted since)" if row.run_deleted else "")
    c.print(f"{row.name} v{row.version}  {row.framework}  {made}"
            + (f"  aliases: {', '.join(row.aliases)}" if row.aliases else ""), markup=False)
    c.print(f"  file {row.file_name} ({fmt_hash(row.file_hash)}), stored at {row.path}", markup=False)
    if card:
        inp = card.get("input") or {}
        said = [str(v) for v in (inp.get("column"), inp.get("shape"), inp.get("dtype")) if v is not None]
        if card.get("feature_names"):
            said.insert(0, "columns " + ", ".join(map(str, card["feature_names"])))
        if said or inp.get("target") is not None:
            c.print("  input " + " ".join(said) + (f", target {inp['target']}" if inp.get("target") is not None
                                                   else ""), markup=False)
        if card.get("classes") is not None:
            c.print(f"  classes {', '.join(map(str, card['classes']))}", markup=False)
        data = card.get("data_manifest_hash")
        trained = [f"{k} {v}" for k, v in (("epochs", card.get("epochs")), ("seed", card.get("seed")),
                                           ("data", None if data is None else str(data)[:20])) if v is not None]
        if trained:
            c.print("  " + ", ".join(trained), markup=False)
        c.print("  packages " + ", ".join(f"{k} {v}" for k, v in (card.get("packages") or {}).items()), markup=False)
    if row.metrics:
        c.print("  metrics " + ", ".join(f"{k}={common.fmt_value(v)}" for k, v in row.metrics.items()), markup=False)


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


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A model file made elsewhere (.skops .joblib .pkl .pt"
                                                              " .pth .keras .h5 .onnx).")],
    name: Annotated[str, typer.Option("--name", help="The model's name in the registry (a new version of it).")],
    framework: Annotated[str | None, typer.Option("--framework", help="sklearn, torch or tensorflow, when the"
                                                                      " suffix does not say.")] = None,
    task: Annotated[str, typer.Option("--task", help="classification or regression.")] = "classification",
    trust: Annotated[bool, typer.Option("--trust", help="Open the file even where that runs code from it (a pickle"
                                                        " or joblib file): only for a file you trust.")] = False,
) -> None:
    """Register a model file made elsewhere as the next version of NAME, with its card read from the model
    (framework, class and params, columns, classes, input) and recorded as a run of its own; then `blase deploy
    NAME PATH`, `blase serve NAME` and `blase_tui.models.load("NAME")` use it like any other version. A pickle
    or joblib file runs code when opened, so that takes --trust."""
    from blase_tui.errors import ConfigError
    from blase_tui.frameworks.formats import RunsCode
    from blase_tui.modules import recording
    from blase_tui.modules.track import Track

    if not file.is_file():
        raise ConfigError(f"{file}: no such file; give the path of a model file.")
    from blase_tui.store.models import check_name

    check_name(name)  # what can be refused before a run is opened for it: a bad name, a file that runs code
    common.refuse_untrusted_model_file(file, framework, trust, "import")
    try:
        with Track(project=common.project().root).start_run(name=f"import {name}"):
            saved = recording.log_model(file, name, framework=framework, task=task, imported=True, trusted=trust)
    except RunsCode as exc:  # what the framework's own guard refused, past the check above
        raise ConfigError(f"{str(exc).rstrip('.')}; import it only if you trust where it came from: add"
                          " --trust.") from None
    common.console.print(f"registered {file} as {saved}; next: blase models show {name}", markup=False)
