"""scikit-learn: ``fit`` on the whole training split when it fits the memory budget, ``partial_fit`` over
batches (one pass per epoch) when the estimator supports it."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from blase_tui.errors import BlaseError
from blase_tui.frameworks.base import TrainConfig, to_float_input


class SklearnAdapter:
    framework = "sklearn"
    file_suffix = ".pkl"  # checkpoints (pickles of the estimator and the epoch); saved models: skops

    def __init__(self) -> None:
        self.model: Any = None
        self.classes: np.ndarray | None = None
        self.classification = True

    def setup(self, model: Any, config: TrainConfig, n_classes: int | None) -> None:
        if not hasattr(model, "fit"):
            raise BlaseError(f"framework='sklearn' needs an estimator with fit(), not a {type(model).__name__}.")
        if hasattr(model, "random_state") and getattr(model, "random_state", None) is None:
            model.set_params(random_state=config.seed)
        self.model = model
        self.classification = config.task == "classification"
        self.classes = np.arange(n_classes) if n_classes else None

    @property
    def incremental(self) -> bool:
        return hasattr(self.model, "partial_fit")

    @staticmethod
    def inputs(x: np.ndarray) -> np.ndarray:
        """Records as Train fits an estimator on them: floats (uint8 scaled to [0, 1]), one flat row each."""
        x = to_float_input(x)
        return x.reshape(len(x), -1)

    def fit_all(self, x: np.ndarray, y: np.ndarray) -> None:
        self.model.fit(self.inputs(x), y)

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int, int]:
        if self.classification and self.classes is not None:
            self.model.partial_fit(self.inputs(x), y, classes=self.classes)
        else:
            self.model.partial_fit(self.inputs(x), y)
        return self.loss(x, y)

    def freeze(self, names: list[str]) -> list[str]:
        if names:
            raise BlaseError("freeze_layers applies to neural networks (torch, tensorflow), not scikit-learn models.")
        return []

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.classification and hasattr(self.model, "predict_proba"):
            return self.model.predict_proba(self.inputs(x))
        if self.classification:
            pred = self.model.predict(self.inputs(x)).astype(int)
            n = len(self.classes) if self.classes is not None else int(pred.max()) + 1
            return np.eye(n)[pred]
        return self.model.predict(self.inputs(x))

    def loss(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int, int]:
        if self.classification:
            proba = self.predict(x)
            p = np.clip(proba[np.arange(len(y)), y.astype(int)], 1e-12, 1)
            return float(-np.log(p).sum()), int((proba.argmax(1) == y).sum()), len(y)
        pred = self.predict(x)
        return float(((pred - y) ** 2).sum()), 0, len(y)

    def state(self) -> Any:
        return pickle.dumps(self.model)

    def load_state(self, state: Any) -> None:
        self.model = pickle.loads(state)

    def save_checkpoint(self, path: Path, extra: dict[str, Any]) -> None:
        tmp = path.with_name(f".tmp-{path.name}")
        tmp.write_bytes(pickle.dumps({"model": self.model, **extra}))
        os.replace(tmp, path)

    def read_checkpoint(self, path: Path) -> dict[str, Any]:
        payload = pickle.loads(path.read_bytes())
        self.model = payload["model"]
        return payload

    def save(self, path: Path) -> None:
        """The estimator at ``path``: a skops file for ``.skops`` (loading it runs no code), else a pickle."""
        tmp = path.with_name(f".tmp-{path.name}")
        if path.suffix == ".skops":
            import skops.io as sio

            sio.dump(self.model, tmp)
        else:
            tmp.write_bytes(pickle.dumps(self.model))
        os.replace(tmp, path)

    @staticmethod
    def load(path: Path, device: str | None = None, *, allow_code: bool = True) -> SklearnAdapter:
        """The estimator saved at ``path``: a skops file (of the types skops trusts, unless ``allow_code``), or a
        pickle or joblib file (only with ``allow_code``: unpickling runs code the file names)."""
        from blase_tui.frameworks.formats import RunsCode, is_skops

        adapter = SklearnAdapter()
        if is_skops(Path(path)):
            import skops.io as sio

            trusted = sio.get_untrusted_types(file=path) if allow_code else None
            try:
                adapter.model = sio.load(path, trusted=trusted)
            except sio.exceptions.UntrustedTypesFoundException:
                names = ", ".join(sio.get_untrusted_types(file=path))
                raise RunsCode(f"{path} is a skops file of types skops does not trust ({names}).") from None
            return adapter
        if not allow_code:
            raise RunsCode(f"{path} is a pickle: loading it runs code the file names.")
        import joblib  # a plain pickle, or joblib's (arrays after the pickle); scikit-learn depends on it

        adapter.model = joblib.load(path)
        return adapter

    def describe(self) -> dict[str, Any]:
        return {"class": type(self.model).__name__, "params": {k: repr(v) for k, v in self.model.get_params().items()}}
