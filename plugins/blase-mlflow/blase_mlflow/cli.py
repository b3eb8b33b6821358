"""`blase mlflow export|import`: the MLflow bridge (docs/mlflow.md)."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Export blase runs and models to MLflow; import MLflow runs.")

URI_HELP = "MLflow tracking URI: http://host:5000, sqlite:///mlflow.db, a folder (default: [plugins.mlflow] tracking_uri)."


def _project() -> object:
    from blase_tui import plugin as common

    return common.project()


def _uri(project: object, given: str | None) -> str:
    from blase_tui import plugin as plugins
    from blase_tui.plugin import BlaseError

    uri = given or plugins.settings(project.config.plugins, "mlflow").get("tracking_uri")  # type: ignore[attr-defined]
    if not uri:
        raise BlaseError("give --tracking-uri (such as sqlite:///mlflow.db or http://127.0.0.1:5000), or set"
                         " tracking_uri in [plugins.mlflow] of blase.toml.")
    return str(uri)


@app.command("export")
def export_command(
    runs: Annotated[list[str] | None, typer.Argument(help="Runs to export (ids, `latest`); none: --all.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Export every run of the project.")] = False,
    tracking_uri: Annotated[str | None, typer.Option(help=URI_HELP)] = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment (default: the project's name).")] = None,
) -> None:
    """Runs as MLflow runs (a parent per run, a child per step), with params, full metric histories, tags,
    status, artifacts, and model versions as registered models (`mlflow.pyfunc.load_model`). Again: updates,
    never duplicates."""
    from blase_mlflow.export import export_runs
    from blase_tui import plugin as common
    from blase_tui.plugin import BlaseError

    project = _project()
    store = project.store  # type: ignore[attr-defined]
    if all_ == bool(runs):
        raise BlaseError("name the runs to export, or --all (not both).")
    ids = sorted(store.run_ids()) if all_ else [store.resolve_run(r) for r in runs or []]
    uri = _uri(project, tracking_uri)
    name = experiment or project.name  # type: ignore[attr-defined]
    for done in export_runs(store, ids, tracking_uri=uri, experiment=name, project_name=project.name):  # type: ignore[attr-defined]
        what = "created" if done.created else "updated"
        models = f"; {len(done.models)} model version(s)" if done.models else ""
        common.console.print(f"{done.run_id} -> MLflow run {done.mlflow_run_id} ({what}: {done.steps} step(s),"
                             f" {done.metric_points} new metric point(s){models})", markup=False)


@app.command("import")
def import_command(
    tracking_uri: Annotated[str | None, typer.Option(help=URI_HELP)] = None,
    experiment: Annotated[str, typer.Option(help="The MLflow experiment whose runs to import.")] = "Default",
    no_artifacts: Annotated[bool, typer.Option("--no-artifacts", help="Leave the artifacts in MLflow.")] = False,
    trust: Annotated[bool, typer.Option("--trust", help="Register models whose file runs code when loaded (a"
                                                        " pickle) too: only for an MLflow store you trust.")] = False,
) -> None:
    """MLflow runs as blase runs (params, metric histories, tags, name, status, times, artifacts), and the
    registered model versions of those runs as versions of blase's registry, with their aliases; what was
    imported before is skipped."""
    from blase_mlflow.importer import import_models, import_runs
    from blase_tui import plugin as common

    project = _project()
    found = import_runs(project.store, tracking_uri=_uri(project, tracking_uri), experiment=experiment,  # type: ignore[attr-defined]
                        with_artifacts=not no_artifacts)
    for item in found:
        common.console.print(f"MLflow run {item.mlflow_run_id} -> {item.run_id} ({item.action})", markup=False)
        if item.left_out:
            more = f" and {len(item.left_out) - 3} more" if len(item.left_out) > 3 else ""
            common.console.print(f"  left out {len(item.left_out)} artifact(s), symbolic links or names that cannot"
                                 f" be a file's: {', '.join(item.left_out[:3])}{more}", markup=False)
    runs = [item for item in found if "(a step of " not in item.action]  # a step comes with its run: not counted
    new = sum(item.action == "imported" for item in runs)
    common.console.print(f"{new} imported, {len(runs) - new} already here.", markup=False)
    # registered models of those runs (not of runs exported from here: those versions are this project's)
    brought = {item.mlflow_run_id: item.run_id for item in found
               if item.run_id is not None and item.action.startswith(("imported", "already imported"))}
    for model in import_models(project.store, tracking_uri=_uri(project, tracking_uri), runs=brought,  # type: ignore[attr-defined]
                               trust=trust):
        said = f" as {model.blase}" if model.blase else ""
        aliases = f", aliases {', '.join(model.aliases)}" if model.aliases else ""
        common.console.print(f"MLflow model {model.mlflow_name} version {model.mlflow_version}{said} ({model.action}"
                             f"{aliases})", markup=False)
