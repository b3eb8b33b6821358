"""The model registry for scripts and steps: register any model, and load a version by name, number or alias.

>>> from blase_tui import models
>>> models.log_model(kmeans, name="clusters")                 # in a step: a new version, with a card
'clusters v1'
>>> model = models.load("clusters@champion")                   # or "clusters", "clusters:1"
>>> model.predict(x)

``log_model`` takes a scikit-learn estimator (clusterers included), a PyTorch module, a Keras model or the path
of a saved model file; ``load`` gives back an object with ``predict`` (and ``predict_proba`` where the
framework has it) for all three. Aliases are set with ``blase models alias NAME VERSION ALIAS``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from blase_tui.errors import BlaseError

_SUFFIX = {"sklearn": ".pkl", "torch": ".pt", "tensorflow": ".keras"}
_BY_SUFFIX = {".pkl": "sklearn", ".joblib": "sklearn", ".skops": "sklearn", ".pt": "torch", ".pth": "torch", ".keras": "tensorflow",
              ".h5": "tensorflow"}


def _framework_of(obj: Any) -> str:
    module = type(obj).__module__.split(".")[0]
    if module == "sklearn" or hasattr(obj, "get_params") and hasattr(obj, "fit"):
        return "sklearn"
    if module == "torch" or any(c.__module__.startswith("torch.") for c in type(obj).__mro__):
        return "torch"
    if module in ("keras", "tensorflow", "tf_keras") or any(c.__module__.startswith(("keras", "tensorflow"))
                                                            for c in type(obj).__mro__):
        return "tensorflow"
    raise BlaseError(f"cannot tell which framework a {type(obj).__name__} belongs to; pass framework="
                     "\"sklearn\", \"torch\" or \"tensorflow\" (or the path of a saved file).")


def _save(obj: Any, framework: str, folder: Path, name: str) -> Path:
    path = folder / f"{name}{_SUFFIX[framework]}"
    if framework == "sklearn":
        import pickle

        path.write_bytes(pickle.dumps(obj))
    elif framework == "torch":
        import torch

        torch.save(obj, path)
    else:
        obj.save(path)
    return path


def _card(obj: Any, framework: str, input_example: Any, metrics: dict[str, Any]) -> dict[str, Any]:
    from importlib import metadata

    import blase_tui
    from blase_tui.modules import recording

    card: dict[str, Any] = {"framework": framework, "model": {"class": type(obj).__name__}, "metrics": metrics,
                            "created": time.time(), **{k: v for k, v in recording.where().items() if v is not None}}
    if "run_id" in card:
        card["training_run"], card["training_step_run"] = card.pop("run_id"), card.pop("step_run_id", None)
    if framework == "sklearn":
        card["model"]["params"] = {k: repr(v) if not isinstance(v, int | float | str | bool | type(None)) else v
                                   for k, v in obj.get_params().items()}
        if hasattr(obj, "classes_"):
            card["classes"] = [c.item() if hasattr(c, "item") else c for c in obj.classes_]
        if hasattr(obj, "feature_names_in_"):
            card["feature_names"] = [str(f) for f in obj.feature_names_in_]
        if hasattr(obj, "n_features_in_"):
            card["input"] = {"shape": [int(obj.n_features_in_)], "dtype": "float64"}
    if input_example is not None:
        example = np.asarray(input_example)
        card["input"] = {"shape": list(example.shape[1:]), "dtype": str(example.dtype)}
        card["input_example"] = example[:5].tolist()
    packages = {}
    for pkg in {"sklearn": ["scikit-learn"], "torch": ["torch"], "tensorflow": ["tensorflow-cpu", "tensorflow",
                                                                                "keras"]}[framework] + ["numpy"]:
        try:
            packages[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    packages["blase-tui"] = blase_tui.__version__
    card["packages"] = packages
    return card


def log_model(model: Any, name: str, *, framework: str | None = None, input_example: Any = None,
              metrics: dict[str, Any] | None = None, task: str = "classification") -> str:
    """Register ``model`` (an estimator, module or Keras model, or the path of a saved model file) as the next
    version of ``name``, with a card (framework, class and params, classes, feature names, input signature and
    an input example, metrics, training run, package versions); kept with the running step (or ``Track``
    run). ``task``: ``classification`` (a network's outputs are class scores: ``predict_proba`` gives their
    softmax) or ``regression``. Returns ``"name vN"``."""
    from blase_tui.modules import recording

    if not recording.active():
        raise BlaseError("log_model needs a run: call it inside a step, or open one with Track().start_run().")
    with tempfile.TemporaryDirectory(prefix="blase-model-") as tmp:
        if isinstance(model, str | Path):
            path = Path(model)
            if not path.is_file():
                raise BlaseError(f"cannot register {path}: no such file.")
            framework = framework or _BY_SUFFIX.get(path.suffix)
            if framework is None:
                raise BlaseError(f"cannot tell which framework saved {path.name}; pass framework=...")
            obj = None
        else:
            framework = framework or _framework_of(model)
            if framework not in _SUFFIX:
                raise BlaseError(f"framework must be sklearn, torch or tensorflow, not {framework!r}.")
            obj = model
            path = _save(model, framework, Path(tmp), name)
        if task not in ("classification", "regression"):
            raise BlaseError(f"task must be 'classification' or 'regression', not {task!r}.")
        card = _card(obj if obj is not None else model, framework, input_example, dict(metrics or {}))
        card["task"] = task
        card_path = Path(tmp) / f"{path.name}.card.json"
        card_path.write_text(json.dumps(card, indent=1, default=str))
        saved = recording.register_model(name, path, card_path, framework=framework, metrics=card["metrics"],
                                         record_output=isinstance(model, str | Path))
    assert saved is not None
    recording.log("registered model %s", saved)
    return saved


class LoadedModel:
    """A registered model version, ready to predict. ``predict`` gives labels (classifiers), cluster ids
    (clusterers) or values; ``predict_proba`` class probabilities where the model has them. ``model`` is the
    framework's own object; ``card``, ``name``, ``version`` and ``aliases`` say what it is."""

    def __init__(self, row: dict[str, Any], adapter: Any) -> None:
        self.name: str = row["name"]
        self.version: int = row["version"]
        self.aliases: list[str] = row.get("aliases", [])
        self.card: dict[str, Any] = row.get("card") or {}
        self.framework: str = row["framework"]
        self._adapter = adapter
        self.model = adapter.model
        classes = self.card.get("classes")
        self.classes = np.asarray(classes) if classes is not None else None

    def predict(self, x: Any) -> np.ndarray:
        if self.framework == "sklearn":
            return np.asarray(self.model.predict(x))
        out = np.asarray(self._adapter.predict(np.asarray(x)))
        if self.classes is not None and out.ndim == 2:
            return self.classes[out.argmax(axis=1)]
        if out.ndim == 2 and self.card.get("task", "classification") == "classification":
            return out.argmax(axis=1)
        return out

    def predict_proba(self, x: Any) -> np.ndarray:
        if self.framework == "sklearn":
            if not hasattr(self.model, "predict_proba"):
                raise BlaseError(f"{self.name} v{self.version} ({type(self.model).__name__}) has no probabilities.")
            return np.asarray(self.model.predict_proba(x))
        out = np.asarray(self._adapter.predict(np.asarray(x)))
        if out.ndim != 2:
            raise BlaseError(f"{self.name} v{self.version} is not a classifier: it has no probabilities.")
        return out

    def __repr__(self) -> str:
        return f"<{self.name} v{self.version} ({self.framework}{', ' + ', '.join(self.aliases) if self.aliases else ''})>"


def load(ref: str, *, project: str | Path | None = None, device: str | None = None) -> LoadedModel:
    """The version ``ref`` names: ``name`` (the newest), ``name:3`` or ``name@champion``."""
    from blase_tui.core.project import Project
    from blase_tui.modules.evaluate import load_adapter_for
    from blase_tui.store import models

    store = (Project.discover(Path(project)) if project is not None else Project.discover()).store
    row = models.get(store, ref, intact=True)
    path = Path(row["path"])
    adapter = load_adapter_for(path, row["framework"], row["file_name"], device)
    card = row.get("card") or {}
    adapter.classification = card.get("task", "classification") == "classification"
    return LoadedModel(row, adapter)
