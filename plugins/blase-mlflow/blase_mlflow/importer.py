"""MLflow runs -> blase runs: params, every metric's full history (steps and timestamps), tags, run name,
status, start and end times, and artifacts, so that ``blase runs find --name/--param``, ``runs show``,
``runs diff`` and the TUI handle them. A run imported before (tag ``mlflow.run_id``) is not imported again;
runs that blase exported there (tag ``blase.run_id`` of this project) are not brought back."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blase_mlflow.export import client_for

STATUS = {"FINISHED": "succeeded", "FAILED": "failed", "KILLED": "interrupted", "RUNNING": "running",
          "SCHEDULED": "running"}


@dataclass
class Imported:
    mlflow_run_id: str
    run_id: str | None
    action: str  # "imported", "already imported", "exported from here"


def import_runs(store: Any, *, tracking_uri: str, experiment: str, with_artifacts: bool = True) -> list[Imported]:
    from blase_tui.errors import BlaseError

    client = client_for(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = [e.name for e in client.search_experiments(max_results=20)]
        raise BlaseError(f"MLflow at {tracking_uri} has no experiment {experiment!r}; it has"
                         f" {', '.join(map(repr, names)) or 'none'}.")
    done = {v: k for k, v in _imported(store).items()}
    ours = set(store.run_ids())
    runs, token = [], None
    while True:
        page = client.search_runs([found.experiment_id], max_results=500, page_token=token,
                                  order_by=["attributes.start_time ASC"])
        runs.extend(page)
        token = page.token
        if not token:
            break
    # runs another blase project exported: a parent per blase run, a child per step execution. The children
    # come back as the steps of their parent's run, not as runs of their own (that doubled every run)
    ids = {run.info.run_id for run in runs}
    steps_of: dict[str, list[Any]] = {}
    for run in runs:
        parent = run.data.tags.get("mlflow.parentRunId")
        if run.data.tags.get("blase.kind") == "step" and parent in ids:
            steps_of.setdefault(parent, []).append(run)
    with_parent = {child.info.run_id for children in steps_of.values() for child in children}
    out = []
    for run in runs:
        rid = run.info.run_id
        if rid in with_parent:
            continue  # comes with its parent, below
        children = steps_of.get(rid, [])
        if rid in done:
            action, run_id = "already imported", done[rid]
        elif run.data.tags.get("blase.run_id") in ours:
            action, run_id = "exported from here", run.data.tags["blase.run_id"]
        else:
            action = "imported"
            run_id = _import_run(client, store, run, tracking_uri, experiment, with_artifacts, children)
        out.append(Imported(rid, run_id, action))
        out.extend(Imported(child.info.run_id, run_id, f"{action} (a step of {run_id})") for child in children)
    return out


def _imported(store: Any) -> dict[str, str]:
    """blase run id -> MLflow run id of the runs imported before."""
    from blase_tui.store.query import tag_values

    return tag_values(store, "mlflow.run_id")


def _value(text: str) -> Any:
    """An MLflow param (always text) as blase keeps params: numbers and JSON as such, the rest as text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _import_run(client: Any, store: Any, run: Any, tracking_uri: str, experiment: str, with_artifacts: bool,
                children: Sequence[Any] = ()) -> str:
    info, data = run.info, run.data
    tags = {k: v for k, v in data.tags.items() if not k.startswith("mlflow.log-model")}
    tags.update({"mlflow.run_id": info.run_id, "mlflow.experiment": experiment, "mlflow.tracking_uri": tracking_uri})
    name = info.run_name or data.tags.get("mlflow.runName")
    started = (info.start_time or 0) / 1000
    run_id = store.create_run(name=name, tags=tags, params={k: _value(v) for k, v in data.params.items()},
                              started=started)
    _metrics_and_artifacts(client, store, info, data, run_id, 0, store.run_dir(run_id) / "artifacts",
                           with_artifacts)
    for child in sorted(children, key=lambda c: (c.info.start_time or 0)):
        cinfo, cdata = child.info, child.data
        step = cdata.tags.get("blase.step") or cinfo.run_name or "step"
        step_run_id, folder = store.begin_step(run_id, step, pid=0, pid_started=None,
                                               started=(cinfo.start_time or info.start_time or 0) / 1000)
        store.log_params(run_id, {k: _value(v) for k, v in cdata.params.items()}, step_run_id)
        _metrics_and_artifacts(client, store, cinfo, cdata, run_id, step_run_id, folder / "artifacts",
                               with_artifacts)
        cstatus = cdata.tags.get("blase.step_status") or STATUS.get(cinfo.status, "succeeded")
        store.finish_step(step_run_id, cstatus, exit_code=0 if cstatus == "succeeded" else 1,
                          ended=(cinfo.end_time or cinfo.start_time or 0) / 1000)
    status = STATUS.get(info.status, "succeeded")
    if status != "running":
        store.close_run(run_id, status, ended=(info.end_time or info.start_time or 0) / 1000)
    store.write_run_json(run_id)
    return run_id


def _metrics_and_artifacts(client: Any, store: Any, info: Any, data: Any, run_id: str, step_run_id: int,
                           folder: Path, with_artifacts: bool) -> None:
    """An MLflow run's metric histories and artifacts, into blase run ``run_id`` (its step ``step_run_id``, or
    the run itself for 0), the artifacts under ``folder``."""
    rows = []
    for key in data.metrics:
        for m in client.get_metric_history(info.run_id, key):
            rows.append((run_id, step_run_id, key, float(m.value), int(m.step), m.timestamp / 1000))
    rows.sort(key=lambda r: (r[5], r[4]))
    store.log_metrics(rows)
    if not with_artifacts:
        return
    import mlflow.artifacts as mlflow_artifacts

    from blase_tui.store.safepath import UnsafePath, inside

    with tempfile.TemporaryDirectory(prefix="blase-mlflow-") as tmp:
        try:
            local: Path | None = Path(client.download_artifacts(info.run_id, "", tmp))
        except Exception:  # a run without artifacts, or an artifact store out of reach: the rest still counts
            local = None
        for model in _logged_models(client, info):  # MLflow 3 keeps logged models apart from run artifacts
            try:  # a model's name comes from the server: the one guard checks it before it names a folder
                where = inside(Path(tmp) / "models", model.name, what=f"model name of MLflow run {info.run_id}")
            except UnsafePath:
                continue
            try:
                mlflow_artifacts.download_artifacts(artifact_uri=model.artifact_location, dst_path=str(where))
            except Exception:  # an artifact store out of reach: the run still comes
                continue
            local = local or Path(tmp)
        if local is not None and any(local.iterdir()):
            shutil.copytree(local, folder, dirs_exist_ok=True)
            items, _ = store.cas.ingest_tree(folder)
            store.add_artifacts(run_id, step_run_id, items)


def _logged_models(client: Any, info: Any) -> list[Any]:
    """The models logged from run ``info`` (MLflow 3's LoggedModel entities); none with an older server."""
    try:
        return list(client.search_logged_models([info.experiment_id],
                                                filter_string=f"source_run_id = '{info.run_id}'"))
    except Exception:
        return []
