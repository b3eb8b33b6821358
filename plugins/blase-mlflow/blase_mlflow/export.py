"""blase runs -> MLflow: each run a parent MLflow run, each step execution a child run (``mlflow.parentRunId``),
with params, every metric's full history (steps and timestamps), tags, status, times and artifacts; each model
version a registered model version loadable with ``mlflow.pyfunc.load_model`` (the ``blase`` pyfunc flavour,
with the model's framework pinned in its requirements and a signature from its card), and the same model in
MLflow's own flavour (``mlflow.sklearn`` or ``mlflow.pytorch``) logged beside it, for machines without blase.

Idempotent: runs are found again by their ``blase.run_id`` / ``blase.step_run_id`` tags, metric histories are
extended with only the points MLflow does not have yet, and a model version already registered (tag
``blase.version``) is left as it is. Exporting twice changes nothing.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUS = {"succeeded": "FINISHED", "failed": "FAILED", "interrupted": "KILLED", "running": "RUNNING"}
BATCH = 1000  # metrics per log_batch call (MLflow's limit)


@dataclass
class Exported:
    run_id: str
    mlflow_run_id: str
    created: bool
    steps: int = 0
    metric_points: int = 0
    models: list[str] = field(default_factory=list)


def quiet() -> None:
    """MLflow's progress bars, warnings about pickled Python models and signature hints are noise here."""
    import logging
    import os
    import warnings

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")
    warnings.filterwarnings("ignore", message=".*type hints", category=UserWarning)


def client_for(tracking_uri: str) -> Any:
    quiet()
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def experiment_id(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return found.experiment_id
    return client.create_experiment(name)


def export_runs(store: Any, run_ids: list[str], *, tracking_uri: str, experiment: str, project_name: str
                ) -> list[Exported]:
    client = client_for(tracking_uri)
    exp = experiment_id(client, experiment)
    return [export_run(client, store, run_id, exp, tracking_uri, project_name) for run_id in run_ids]


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds * 1000))


def _find(client: Any, exp: str, key: str, value: str) -> Any:
    runs = client.search_runs([exp], filter_string=f"tags.`{key}` = '{value}'", max_results=1)
    return runs[0] if runs else None


def _param_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def export_run(client: Any, store: Any, run_id: str, exp: str, tracking_uri: str, project_name: str) -> Exported:
    desc = store.describe_run(run_id)
    run = desc.run
    tags = {f"blase.tag.{k}" if k.startswith("mlflow.") else k: str(v) for k, v in desc.tags.items()}
    tags.update({"blase.run_id": run_id, "blase.kind": "run", "blase.project": project_name,
                 "mlflow.source.name": "blase", "mlflow.source.type": "LOCAL"})
    if run.note:
        tags["mlflow.note.content"] = run.note
    existing = _find_kind(client, exp, run_id, "run")
    if existing is None:
        parent = client.create_run(exp, start_time=_ms(run.started), tags=tags,
                                   run_name=run.name or run_id).info.run_id
    else:
        parent = existing.info.run_id
    out = Exported(run_id, parent, existing is None)
    out.metric_points += _sync(client, store, parent, run_id, 0, desc.params, tags, existing)
    children: dict[int, str] = {}
    for step in desc.steps:
        child_tags = {"mlflow.parentRunId": parent, "blase.run_id": run_id, "blase.kind": "step",
                      "blase.step": step.step, "blase.step_run_id": f"{run_id}/{step.id}",
                      "blase.step_status": step.status}
        if step.reused_from_run:
            child_tags["blase.reused_from_run"] = step.reused_from_run
        found = _find(client, exp, "blase.step_run_id", f"{run_id}/{step.id}")
        if found is None:
            child = client.create_run(exp, start_time=_ms(step.started), tags=child_tags,
                                      run_name=step.step).info.run_id
        else:
            child = found.info.run_id
        children[step.id] = child
        out.metric_points += _sync(client, store, child, run_id, step.id, step.params, {}, found)
        folder = store.run_dir(run_id) / step.folder
        if (folder / "artifacts").is_dir() and any((folder / "artifacts").iterdir()):
            client.log_artifacts(child, str(folder / "artifacts"))
        if (folder / "log.txt").is_file():
            client.log_artifact(child, str(folder / "log.txt"))
        out.steps += 1
    out.models = _export_models(client, store, run_id, children, parent, tracking_uri)
    for step in desc.steps:
        status = STATUS.get(step.status, "FINISHED")
        if status != "RUNNING":
            client.set_terminated(children[step.id], status=status, end_time=_ms(step.ended))
    status = STATUS.get(run.status, "FINISHED")
    if status != "RUNNING":
        client.set_terminated(parent, status=status, end_time=_ms(run.ended))
    return out


def _find_kind(client: Any, exp: str, run_id: str, kind: str) -> Any:
    runs = client.search_runs([exp], filter_string=f"tags.`blase.run_id` = '{run_id}' and tags.`blase.kind` = '{kind}'",
                              max_results=1)
    return runs[0] if runs else None


def _sync(client: Any, store: Any, mlflow_run: str, run_id: str, step_run_id: int, params: dict[str, Any],
          tags: dict[str, str], existing: Any) -> int:
    """Params, tags and the metric points MLflow does not have yet; returns the number of points logged."""
    from mlflow.entities import Metric, Param, RunTag

    have_params = dict(existing.data.params) if existing is not None else {}
    new_params = [Param(k, _param_text(v)[:6000]) for k, v in params.items() if k not in have_params]
    for i in range(0, len(new_params), 100):
        client.log_batch(mlflow_run, params=new_params[i:i + 100])
    have_tags = dict(existing.data.tags) if existing is not None else {}
    new_tags = [RunTag(k, v) for k, v in tags.items() if have_tags.get(k) != v]
    for i in range(0, len(new_tags), 100):
        client.log_batch(mlflow_run, tags=new_tags[i:i + 100])
    logged = 0
    for sid, key in store.metric_keys(run_id):
        if sid != step_run_id:
            continue
        series = store.metric_series(run_id, step_run_id, key)
        already = len(client.get_metric_history(mlflow_run, key)) if existing is not None else 0
        points = [Metric(key, float(p.value) if p.value is not None else float("nan"),
                         _ms(p.ts) or 0, int(p.iteration) if p.iteration is not None else i)
                  for i, p in enumerate(series)][already:]
        for i in range(0, len(points), BATCH):
            client.log_batch(mlflow_run, metrics=points[i:i + BATCH])
        logged += len(points)
    return logged


def _export_models(client: Any, store: Any, run_id: str, children: dict[int, str], parent: str,
                   tracking_uri: str) -> list[str]:
    """Each model version this run registered, as a registered MLflow model version (once)."""
    import mlflow

    from blase_mlflow.pyfunc import BlaseModel
    from blase_tui.plugin import registry as models

    done = []
    for row in models.list_models(store):
        if row.run_id != run_id:
            continue
        full = models.get(store, row.ref)
        versions = client.search_model_versions(f"name = '{row.name}'")
        match = [v for v in versions if v.tags.get("blase.version") == str(row.version)
                 and v.tags.get("blase.run_id") == run_id]
        if match:
            mv = match[0]
        else:
            target = children.get(full.step_run_id or -1, parent)
            mlflow.set_tracking_uri(tracking_uri)
            mlflow.set_registry_uri(tracking_uri)
            with tempfile.TemporaryDirectory(prefix="blase-mlflow-") as tmp:
                model_file = Path(tmp) / full.file_name
                shutil.copyfile(full.path, model_file)
                info = Path(tmp) / "blase_model.json"
                info.write_text(json.dumps({"name": full.name, "version": full.version,
                                            "framework": full.framework, "card": full.card or {}},
                                           default=str))
                card = full.card or {}
                signature = signature_of(card)
                with mlflow.start_run(run_id=target):
                    logged = mlflow.pyfunc.log_model(
                        name=f"{full.name}-v{full.version}", python_model=BlaseModel(),
                        artifacts={"model": str(model_file), "info": str(info)},
                        pip_requirements=["blase-tui", "blase-mlflow", *requirements_of(card)],
                        signature=signature)
                    _log_native(full, signature, card)
            if not _registered(client, full.name):
                client.create_registered_model(full.name, tags={"blase.model": full.name})
            mv = client.create_model_version(full.name, logged.model_uri, run_id=target,
                                             tags={"blase.version": str(full.version), "blase.run_id": run_id,
                                                   "blase.framework": full.framework})
        for alias in row.aliases:
            client.set_registered_model_alias(row.name, alias, mv.version)
        done.append(f"{row.name} v{row.version} -> MLflow {row.name} version {mv.version}")
    return done


def requirements_of(card: dict[str, Any]) -> list[str]:
    """The model's framework and numpy, pinned to the versions its card recorded (a local build tag dropped)."""
    recorded = card.get("packages") or {}
    return [f"{pkg}=={str(version).split('+')[0]}" for pkg, version in recorded.items() if pkg != "blase-tui"]


def signature_of(card: dict[str, Any]) -> Any:
    """The MLflow signature the card describes: named double columns (a model fitted on a DataFrame), or a
    tensor of the input's shape and dtype; None when the card says neither."""
    import numpy as np
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema, TensorSpec

    given = card.get("input") or {}
    if card.get("feature_names"):
        return ModelSignature(inputs=Schema([ColSpec("double", str(n)) for n in card["feature_names"]]))
    if given.get("shape"):
        return ModelSignature(inputs=Schema([TensorSpec(np.dtype(given.get("dtype") or "float32"),
                                                        (-1, *[int(d) for d in given["shape"]]))]))
    return None


def _log_native(version: Any, signature: Any, card: dict[str, Any]) -> None:
    """The model again in MLflow's own flavour (``mlflow.sklearn``, ``mlflow.pytorch``), beside the blase
    pyfunc: loadable where blase is not installed (the blase flavour needs blase). Its answers are the
    framework's own (a scikit-learn estimator's ``predict``), without blase's class names for a model Train
    fitted on class indices."""
    import mlflow

    from blase_tui.plugin import open_model

    name = f"{version.name}-v{version.version}-{version.framework}"
    model = open_model(Path(version.path), version.framework, version.file_name).model
    requirements = requirements_of(card) or None
    if version.framework == "sklearn":
        mlflow.sklearn.log_model(model, name=name, signature=signature, pip_requirements=requirements,
                                 serialization_format="skops" if _skops_ok(model) else "cloudpickle")
    elif version.framework == "torch":
        mlflow.pytorch.log_model(model, name=name, signature=signature, pip_requirements=requirements)


def _skops_ok(model: Any) -> bool:
    """Whether skops writes ``model`` with only the types it trusts (then MLflow stores it without pickle)."""
    try:
        import skops.io as sio

        return not sio.get_untrusted_types(data=sio.dumps(model))
    except Exception:  # noqa: BLE001 - skops missing, or a model it cannot write
        return False


def _registered(client: Any, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
        return True
    except MlflowException:
        return False
