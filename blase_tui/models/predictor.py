"""The one predictor: a loaded model's answers (labels, class probabilities) as ``models.load``, ``blase serve``,
``Evaluate``, ``Update`` and the exported MLflow model give them, the same everywhere.

- A classifier answers **class names** where the model has them (the card's ``classes``, else the estimator's
  ``classes_``), indices only when it has none. A scikit-learn estimator that ``Train`` fitted on class indices
  answers the card's names, as a network's argmax does.
- ``proba`` is the class probabilities (columns in the order of ``classes``), None for a model without them.
- Named columns are given to a scikit-learn model as a DataFrame when it was fitted on one (its
  ``feature_names_in_``), so that a ``ColumnTransformer`` picking columns by name gets its names.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from blase_tui.frameworks.base import Adapter


def trained_by_blase(card: dict[str, Any] | None) -> bool:
    """Whether ``Train`` fitted the model the card describes (it records its epochs)."""
    return bool(card) and "epochs" in card  # type: ignore[operator]


class Predictor:
    """``adapter``: a framework adapter holding the model (``blase_tui.frameworks``); ``task``: classification
    or regression; ``classes``: the card's class labels (None: the model's own, if any); ``columns``: the names
    of the model's input columns, in its order (None: it takes an array); ``trained_by_blase``: ``Train`` fitted
    it (its card says so), on inputs prepared as the adapter prepares them."""

    def __init__(self, adapter: Adapter, framework: str, *, task: str = "classification",
                 classes: list[Any] | None = None, columns: list[str] | None = None, trained_by_blase: bool = False
                 ) -> None:
        self.adapter = adapter
        # Train fits a scikit-learn model on float inputs flattened per record (uint8 scaled to [0, 1]): arrays
        # are given to it the same way
        self.flatten = trained_by_blase and framework == "sklearn"
        self.framework = framework
        self.task = task
        self.model = adapter.model
        adapter.classification = task == "classification"
        fitted = getattr(self.model, "classes_", None) if framework == "sklearn" else None
        if classes is None and fitted is not None:
            classes = [c.item() if hasattr(c, "item") else c for c in np.asarray(fitted)]
        self.classes: np.ndarray | None = np.asarray(classes) if classes is not None else None
        # fitted on class indices (0..K-1) while the card names the classes: answer with the names
        self._index_labels = (self.classes is not None and fitted is not None
                              and [str(c) for c in fitted] == [str(i) for i in range(len(self.classes))]
                              and [str(c) for c in fitted] != [str(c) for c in self.classes])
        names = getattr(self.model, "feature_names_in_", None) if framework == "sklearn" else None
        self.columns = columns if columns is not None else ([str(c) for c in names] if names is not None else None)
        self.frame_input = names is not None
        self.has_proba = (task == "classification"
                          and (framework != "sklearn" or hasattr(self.model, "predict_proba")))
        self._one_pass = False

    # -------------------------------------------------------------------------------------------- answers
    def predict(self, x: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """``(labels or values, class probabilities or None)`` for the records in ``x``."""
        if self.framework == "sklearn":
            x = self._frame(x)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "X does not have valid feature names" and the like, per call
                if self.has_proba:
                    proba = np.asarray(self.model.predict_proba(x))
                    if self._one_pass and self.classes is not None:
                        return self.classes[proba.argmax(axis=1)], proba
                    return self._named(self.model.predict(x)), proba
                return self._named(self.model.predict(x)), None
        out = np.asarray(self.adapter.predict(np.asarray(x)))
        if self.task == "classification" and out.ndim == 2:
            labels = out.argmax(axis=1)
            return (self.classes[labels] if self.classes is not None else labels), out
        return (out[:, 0] if out.ndim == 2 and out.shape[1] == 1 else out), None

    def labels(self, x: Any) -> np.ndarray:
        """Class names (indices for a classifier without names), cluster ids or values."""
        if self.framework == "sklearn":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self._named(self.model.predict(self._frame(x)))
        return self.predict(x)[0]

    def proba(self, x: Any) -> np.ndarray | None:
        """Class probabilities, columns in the order of ``classes``; None for a model without them."""
        if not self.has_proba:
            return None
        if self.framework == "sklearn":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return np.asarray(self.model.predict_proba(self._frame(x)))
        out = np.asarray(self.adapter.predict(np.asarray(x)))
        return out if out.ndim == 2 else None

    def learn(self, x: Any) -> None:
        """Predict ``x`` (an input example) once, to learn how this model is best asked: whether a scikit-learn
        model wants its DataFrame (a ``ColumnTransformer``) or takes a plain array, and whether its labels are
        the argmax of its probabilities (then one call per request, not two)."""
        if self.framework != "sklearn":
            self.predict(x)
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.columns is not None and isinstance(x, np.ndarray):
                import pandas as pd

                framed = np.asarray(self.model.predict(pd.DataFrame(x, columns=self.columns)))
                try:
                    self.frame_input = not np.array_equal(np.asarray(self.model.predict(x)), framed)
                except Exception:  # noqa: BLE001 - it needs its DataFrame
                    self.frame_input = True
            if self.has_proba and self.classes is not None:
                given = self._frame(x)
                labels = self._named(self.model.predict(given))
                proba = np.asarray(self.model.predict_proba(given))
                self._one_pass = np.array_equal(self.classes[proba.argmax(axis=1)], labels)

    # ------------------------------------------------------------------------------------------- helpers
    def _named(self, labels: Any) -> np.ndarray:
        labels = np.asarray(labels)
        return self.classes[labels.astype(int)] if self._index_labels and self.classes is not None else labels

    def _frame(self, x: Any) -> Any:
        if self.flatten and isinstance(x, np.ndarray):
            from blase_tui.frameworks.sklearn_adapter import SklearnAdapter

            return SklearnAdapter.inputs(x)
        if self.frame_input and self.columns is not None and isinstance(x, np.ndarray) and x.ndim == 2:
            import pandas as pd

            return pd.DataFrame(x, columns=self.columns)
        return x
