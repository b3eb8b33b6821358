"""The model registry for scripts and steps: register any model, and load a version by name, number or alias.

>>> from blase_tui import models
>>> models.log_model(kmeans, name="clusters")                 # in a step: a new version, with a card
'clusters v1'
>>> model = models.load("clusters@champion")                   # or "clusters", "clusters:1"
>>> model.predict(x)

``log_model`` takes a scikit-learn estimator (clusterers included), a PyTorch module, a Keras model or the path
of a saved model file; ``load`` gives back an object with ``predict`` (and ``predict_proba`` where the
framework has it) for all three. Aliases are set with ``blase models alias NAME VERSION ALIAS``.

This package is also the layer between ``frameworks`` and the seed modules that gives a model its home: the
one table of frameworks and file suffixes (:mod:`.frameworks`), the one card builder (:mod:`.card`), the one
predictor that answers the same everywhere (:mod:`.predictor`) and the registry's writer (:mod:`.registry`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from blase_tui.core import script_step
from blase_tui.errors import BlaseError
from blase_tui.models.frameworks import open_model
from blase_tui.models.predictor import Predictor, trained_by_blase


def log_model(model: Any, name: str, *, framework: str | None = None, input_example: Any = None,
              metrics: dict[str, Any] | None = None, task: str = "classification") -> str:
    """Register ``model`` (an estimator, module or Keras model, or the path of a saved model file) as the next
    version of ``name``, with a card (framework, class and params, classes, feature names, input signature and
    an input example, metrics, training run, package versions); kept with the running step (or ``Track``
    run). ``task``: ``classification`` (a network's outputs are class scores: ``predict_proba`` gives their
    softmax) or ``regression``. Returns ``"name vN"``."""
    from blase_tui.models import registry

    saved = registry.log(script_step.recording_tracker(), model, name, framework=framework,
                         input_example=input_example, metrics=metrics, task=task)
    ctx = script_step.recording_step()
    if ctx is not None:
        ctx.log.info("registered model %s", saved)
    return saved


class LoadedModel:
    """A registered model version, ready to predict. ``predict`` gives class names (indices only for a
    classifier without them), cluster ids (clusterers) or values, as ``blase serve`` and the exported MLflow
    model answer; ``predict_proba`` class probabilities (columns in the order of ``classes``) where the model
    has them. ``model`` is the framework's own object; ``card``, ``name``, ``version`` and ``aliases`` say what
    it is."""

    def __init__(self, name: str, version: int | None, framework: str, card: dict[str, Any], adapter: Any,
                 aliases: list[str] | None = None, path: Path | None = None) -> None:
        self.name = name
        self.path = path  # the saved model file (a step that reads it can record it as its input)
        self.version = version
        self.aliases: list[str] = list(aliases or [])
        self.card: dict[str, Any] = card or {}
        self.framework = framework
        self.predictor = Predictor(adapter, framework, task=self.card.get("task", "classification"),
                                   classes=self.card.get("classes"), trained_by_blase=trained_by_blase(self.card))
        self.model = adapter.model
        self.classes = self.predictor.classes

    def predict(self, x: Any) -> np.ndarray:
        return self.predictor.labels(x)

    def predict_proba(self, x: Any) -> np.ndarray:
        proba = self.predictor.proba(x)
        if proba is None:
            what = f"{type(self.model).__name__}" if self.framework == "sklearn" else "it is not a classifier"
            raise BlaseError(f"{self.name} v{self.version} ({what}) has no probabilities.")
        return proba

    def __repr__(self) -> str:
        return f"<{self.name} v{self.version} ({self.framework}{', ' + ', '.join(self.aliases) if self.aliases else ''})>"


def load(ref: str, *, project: str | Path | None = None, device: str | None = None) -> LoadedModel:
    """The version ``ref`` names: ``name`` (the newest), ``name:3`` or ``name@champion``."""
    from blase_tui.core.project import Project
    from blase_tui.store import models

    store = (Project.discover(Path(project)) if project is not None else Project.discover()).store
    found = models.get(store, ref, intact=True)
    framework = found.framework or ""
    adapter = open_model(Path(found.path), framework, found.file_name, device)
    return LoadedModel(found.name, found.version, framework, found.card or {}, adapter, list(found.aliases),
                       path=Path(found.path))
