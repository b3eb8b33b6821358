"""A deployment's model, loaded once and asked for predictions (and class probabilities) per request.

Loading it may run code from the model file (a pickle, a torch module of the project's classes, a Keras Lambda
layer): that happens only for a file this project produced or the user trusted (``--trust``, ``blase deploy
trust``); any other is refused with one line before anything of it runs (:mod:`blase_tui.core.trust`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from blase_tui.core.config import find_project_root
from blase_tui.core.trust import CODE_FOLDER, UntrustedModel, folder_digests, identity, short, why_trusted
from blase_tui.frameworks.formats import RunsCode, describe
from blase_tui.models.predictor import Predictor, trained_by_blase
from blase_tui.modules.deploy import read_deployment


class ServedModel:
    """``trust``: load the model even where that runs code from its file (``--trust``); else only a safe format,
    or a file this project produced or trusted (:mod:`blase_tui.core.trust`). ``shown_as``: the target as the
    user named it, for the refusal's hint."""

    def __init__(self, folder: Path, device: str | None = None, *, trust: bool = False,
                 shown_as: str | None = None) -> None:
        from blase_tui.models.frameworks import open_model

        self.folder = Path(folder).resolve()
        self.manifest = read_deployment(self.folder)
        self.signature: dict[str, Any] = self.manifest["signature"]
        info = self.manifest["model"]
        self.name: str = info["name"]
        self.version: int | None = info.get("version")
        self.framework: str = info["framework"]
        self.training_run: str | None = info.get("training_run")
        self.task: str = info.get("task") or self.signature.get("task") or "classification"
        model_file = self.folder / self.manifest["model_file"]
        self.format = describe(model_file, self.framework)
        self.trusted_because = self._trusted(self.manifest["model_file"], trust, shown_as or str(folder))
        if self.trusted_because is not None and (self.folder / CODE_FOLDER).is_dir():
            # the model's classes are the project's own: importable from code/ (only a model allowed to run code
            # gets it on the path)
            code = str(self.folder / CODE_FOLDER)
            if code not in sys.path:
                sys.path.insert(0, code)
        try:
            self.adapter = open_model(model_file, self.framework, model_file.name,
                                      device if self.framework != "sklearn" else None,
                                      allow_code=self.trusted_because is not None)
        except RunsCode as exc:  # the framework's own guard refused what describe() took for safe
            raise UntrustedModel(f"{shown_as or folder}: {str(exc).rstrip('.')}; serve it only if you trust where it"
                                 f" came from: with --trust, or after `blase deploy trust {shown_as or folder}`.") from None
        inputs = self.signature.get("inputs") or {}
        # named columns arrive as a float64 array in the model's order; a model that needs its DataFrame (a
        # ColumnTransformer picking columns by name) gets one (found out on the input example)
        columns = [c["name"] for c in inputs["columns"]] if inputs.get("kind") == "columns" else None
        self.predictor = Predictor(self.adapter, self.framework, task=self.task,
                                   classes=self.signature.get("classes"), columns=columns,
                                   trained_by_blase=trained_by_blase(self._card()))
        self.model = self.adapter.model
        self.classes = self.predictor.classes
        self.columns: list[str] | None = columns
        self.has_proba = self.predictor.has_proba
        example = self.signature.get("input_example")
        if example is not None:
            self._warm_up(example)

    def _trusted(self, model: str, trust: bool, shown_as: str) -> str | None:
        """Why the model may run code here, None when its format runs none; refuses one that would, unasked."""
        if not self.format.runs_code:
            return None
        if trust:
            return "--trust"
        digests = folder_digests(self.folder, model)
        ident = identity(model, digests)
        why = why_trusted(ident, digests[model], has_code=len(digests) > 1)
        if why is not None:
            return why
        producer = "this project did not produce it" if find_project_root() else "no project here produced it"
        raise UntrustedModel(
            f"{shown_as}: {model} is {self.format.note}, whose loading can run code from the file, and {producer}"
            f" (SHA-256 {short(ident)} is neither a registered model nor trusted); serve it only if you trust where"
            f" it came from: with --trust, or after `blase deploy trust {shown_as}`.")

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}" if self.version is not None else self.name

    def _card(self) -> dict[str, Any]:
        """The model's card as the deployment keeps it (``model/card.json``), ``{}`` when there is none."""
        import json

        try:
            return dict(json.loads((self.folder / "model" / "card.json").read_text()))
        except (OSError, ValueError):
            return {}

    def _warm_up(self, example: Any) -> None:
        """Predict the input example once (the first request is not the slow one), learning how the model is
        best asked (:meth:`Predictor.learn`)."""
        from blase_tui.serve.payload import Parsed, to_input

        try:
            if isinstance(example, dict):
                parsed = Parsed(columns=list(example["columns"]), rows=example["data"])
            else:
                parsed = Parsed(tensor=example)
            x, _ = to_input(parsed, self.signature, max_rows=10_000)
            self.predictor.learn(x)
        except Exception:  # noqa: BLE001 - an example that no longer fits is not a reason to refuse serving
            return

    def predict(self, x: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """``(predictions, probabilities or None)`` for the records in ``x``."""
        return self.predictor.predict(x)
