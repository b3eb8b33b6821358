"""The one model card builder: what a model is (framework, class and params, task, classes, the columns or
tensor it takes, an input example), how well it did (metrics), where it came from (training run) and what it
needs (package versions). ``Train.save_model``, ``models.log_model``, ``blase models import`` and ``Deploy``
(for a model file) all write their cards with :func:`build`; the card is ``<file>.card.json`` beside the model
and ``model/card.json`` in a deployment.
"""

from __future__ import annotations

import time
from importlib import metadata
from typing import Any

import numpy as np

from blase_tui.models.frameworks import Framework, named

TASKS = ("classification", "regression")


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON holds."""
    return value.item() if hasattr(value, "item") else value


def classes_of(model: Any) -> list[Any] | None:
    """The class labels a fitted classifier keeps (``classes_``), as plain values; None when it has none."""
    classes = getattr(model, "classes_", None)
    if classes is None:
        return None
    try:
        return [plain(c) for c in np.asarray(classes).tolist()]
    except Exception:  # noqa: BLE001 - a classes_ attribute of another kind (a property that fails unfitted)
        return None


def feature_names_of(model: Any) -> list[str] | None:
    """The column names a scikit-learn model was fitted on (``feature_names_in_``: a DataFrame's columns)."""
    names = getattr(model, "feature_names_in_", None)
    return [str(f) for f in names] if names is not None else None


def input_of(model: Any, framework: str) -> dict[str, Any] | None:
    """What the model says it takes, read from the model itself: ``{"shape", "dtype"}`` of one record."""
    if framework == "sklearn" and hasattr(model, "n_features_in_"):
        return {"shape": [int(model.n_features_in_)], "dtype": "float64"}
    if framework == "onnx" and getattr(model, "shape", None) is not None:
        return {"shape": list(model.shape), "dtype": np.dtype(model.dtype).name}
    if framework == "tensorflow":
        try:
            shape = list(model.inputs[0].shape)[1:]
            if all(s is not None for s in shape):
                return {"shape": [int(s) for s in shape], "dtype": str(model.inputs[0].dtype).replace("tf.", "")}
        except Exception:  # noqa: BLE001 - a subclassed model before its first call has no inputs
            return None
    return None


def packages(framework: Framework) -> dict[str, str]:
    """The installed versions of what a model of ``framework`` needs (its framework packages, numpy, blase)."""
    out: dict[str, str] = {}
    for pkg in (*framework.packages, "numpy", "blase-tui"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def describe(model: Any, framework: str) -> dict[str, Any]:
    """The model's class and, for scikit-learn, its params (non-plain values as their repr)."""
    out: dict[str, Any] = {"class": type(model).__name__}
    if framework == "sklearn" and hasattr(model, "get_params"):
        out["params"] = {k: v if isinstance(v, int | float | str | bool | type(None)) else repr(v)
                         for k, v in model.get_params().items()}
    return out


def build(model: Any, framework: str, *, task: str = "classification", input_example: Any = None,
          metrics: dict[str, Any] | None = None, where: dict[str, Any] | None = None,
          classes: list[Any] | None = None, model_info: dict[str, Any] | None = None,
          extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The card of ``model`` (the framework's object; None when only its file is known). ``where``: the
    run and step execution that made it (``run_id``, ``step_run_id``); ``classes``: the labels, when the model
    does not keep them itself (a network's outputs); ``model_info``: the adapter's description, when it has a
    better one than the class and params; ``extra``: training's own fields (epochs, history, ...)."""
    if task not in TASKS:
        from blase_tui.errors import BlaseError

        raise BlaseError(f"task must be 'classification' or 'regression', not {task!r}.")
    fw = named(framework)
    card: dict[str, Any] = {"framework": fw.name, "task": task,
                            "model": model_info or (describe(model, fw.name) if model is not None else {}),
                            "metrics": dict(metrics or {}), "created": time.time()}
    where = where or {}
    if where.get("run_id"):
        card["training_run"], card["training_step_run"] = where["run_id"], where.get("step_run_id")
    found = classes if classes is not None else classes_of(model)
    if found is not None or task == "classification":
        card["classes"] = None if found is None else [plain(c) for c in found]
    features = feature_names_of(model)
    if features:
        card["feature_names"] = features
    described = input_of(model, fw.name) if model is not None else None
    if described is not None:
        card["input"] = described
    if input_example is not None:
        if hasattr(input_example, "columns") and not features:  # a DataFrame's columns name the inputs
            card["feature_names"] = [str(c) for c in input_example.columns]
        example = np.asarray(input_example)
        card["input"] = {**(card.get("input") or {}), "shape": list(example.shape[1:]), "dtype": str(example.dtype)}
        card["input_example"] = example[:5].tolist()
    card["packages"] = packages(fw)
    card.update(extra or {})
    return card
