"""A deployment's model, loaded once and asked for predictions (and class probabilities) per request.

Loading it may run code from the model file (a pickle, a torch module of the project's classes, a Keras Lambda
layer): that happens only for a file this project produced or the user trusted (``--trust``, ``blase deploy
trust``); any other is refused with one line before anything of it runs (:mod:`blase_tui.core.trust`)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from blase_tui.core.config import find_project_root
from blase_tui.core.trust import CODE_FOLDER, UntrustedModel, folder_digests, identity, short, why_trusted
from blase_tui.frameworks.formats import RunsCode, describe
from blase_tui.modules.deploy import read_deployment


class ServedModel:
    """``trust``: load the model even where that runs code from its file (``--trust``); else only a safe format,
    or a file this project produced or trusted (:mod:`blase_tui.core.trust`). ``shown_as``: the target as the
    user named it, for the refusal's hint."""

    def __init__(self, folder: Path, device: str | None = None, *, trust: bool = False,
                 shown_as: str | None = None) -> None:
        from blase_tui.modules.evaluate import load_adapter_for

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
            self.adapter = load_adapter_for(model_file, self.framework, model_file.name,
                                            device if self.framework != "sklearn" else None,
                                            allow_code=self.trusted_because is not None)
        except RunsCode as exc:  # the framework's own guard refused what describe() took for safe
            raise UntrustedModel(f"{shown_as or folder}: {str(exc).rstrip('.')}; serve it only if you trust where it"
                                 f" came from: with --trust, or after `blase deploy trust {shown_as or folder}`.") from None
        self.adapter.classification = self.task == "classification"
        self.model = self.adapter.model
        classes = self.signature.get("classes")
        if classes is None and hasattr(self.model, "classes_"):
            classes = [c.item() if hasattr(c, "item") else c for c in self.model.classes_]
        self.classes = np.asarray(classes) if classes is not None else None
        # a scikit-learn estimator Train fitted on class indices (0..K-1) predicts indices: answer with the
        # card's class names, as the other frameworks do (and as the prediction priors Monitor compares with)
        fitted = getattr(self.model, "classes_", None) if self.framework == "sklearn" else None
        self._index_labels = (self.classes is not None and fitted is not None
                              and [str(c) for c in fitted] == [str(i) for i in range(len(self.classes))]
                              and [str(c) for c in fitted] != [str(c) for c in self.classes])
        self.has_proba = self._has_proba()
        self._one_pass = False
        inputs = self.signature.get("inputs") or {}
        # named columns arrive as a float64 array in the model's order; a model that needs its DataFrame (a
        # ColumnTransformer picking columns by name) gets one (found out on the input example)
        self.columns: list[str] | None = [c["name"] for c in inputs["columns"]] if inputs.get("kind") == "columns" else None
        self.frame_input = self.columns is not None
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

    def _has_proba(self) -> bool:
        if self.framework == "sklearn":
            return hasattr(self.model, "predict_proba") and self.task == "classification"
        return self.task == "classification"

    def _warm_up(self, example: Any) -> None:
        """Predict the input example once (the first request is not the slow one), and learn whether a
        scikit-learn classifier's labels are the argmax of its probabilities (one call per request, not two)."""
        from blase_tui.serve.payload import Parsed, to_input

        try:
            if isinstance(example, dict):
                parsed = Parsed(columns=list(example["columns"]), rows=example["data"])
            else:
                parsed = Parsed(tensor=example)
            x, _ = to_input(parsed, self.signature, max_rows=10_000)
        except Exception:  # noqa: BLE001 - an example that no longer fits is not a reason to refuse serving
            return
        if self.framework == "sklearn":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if self.columns is not None and isinstance(x, np.ndarray):
                    import pandas as pd

                    framed = np.asarray(self.model.predict(pd.DataFrame(x, columns=self.columns)))
                    try:
                        self.frame_input = not np.array_equal(np.asarray(self.model.predict(x)), framed)
                    except Exception:  # noqa: BLE001 - it needs its DataFrame
                        self.frame_input = True
                if self.has_proba:
                    given = self._frame(x)
                    labels = self._named(self.model.predict(given))
                    proba = np.asarray(self.model.predict_proba(given))
                    self._one_pass = self.classes is not None and np.array_equal(self.classes[proba.argmax(axis=1)],
                                                                                 labels)
        else:
            self.predict(x)

    def _named(self, labels: Any) -> np.ndarray:
        """An estimator's predicted labels, as the card's class names when it was fitted on their indices."""
        labels = np.asarray(labels)
        return self.classes[labels.astype(int)] if self._index_labels and self.classes is not None else labels

    def _frame(self, x: Any) -> Any:
        if self.frame_input and isinstance(x, np.ndarray):
            import pandas as pd

            return pd.DataFrame(x, columns=self.columns)
        return x

    def predict(self, x: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """``(predictions, probabilities or None)`` for the records in ``x``."""
        if self.framework == "sklearn":
            x = self._frame(x)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "X does not have valid feature names" and the like, per call
                if self.has_proba:
                    proba = np.asarray(self.model.predict_proba(x))
                    if self._one_pass:
                        return self.classes[proba.argmax(axis=1)], proba
                    return self._named(self.model.predict(x)), proba
                return self._named(self.model.predict(x)), None
        out = np.asarray(self.adapter.predict(np.asarray(x)))
        if self.task == "classification" and out.ndim == 2:
            labels = out.argmax(axis=1)
            return (self.classes[labels] if self.classes is not None else labels), out
        return (out[:, 0] if out.ndim == 2 and out.shape[1] == 1 else out), None
