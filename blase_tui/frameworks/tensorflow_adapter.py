"""TensorFlow/Keras: ``train_on_batch`` over numpy batches from the shards, so blase owns the epoch loop
(progress, checkpoints, early stopping) exactly as for PyTorch."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from blase_tui.errors import BlaseError  # noqa: E402
from blase_tui.frameworks.base import TrainConfig, to_float_input  # noqa: E402

_LOSSES = {"cross_entropy": "sparse_categorical_crossentropy", "categorical_crossentropy":
           "sparse_categorical_crossentropy", "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
           "mse": "mse", "mean_squared_error": "mse", "mae": "mae", "bce": "binary_crossentropy",
           "binary_crossentropy": "binary_crossentropy"}


class TensorFlowAdapter:
    framework = "tensorflow"
    file_suffix = ".keras"

    def __init__(self) -> None:
        self.model: Any = None
        self.classification = True
        self._compiled = False
        self._rescales: bool | None = None  # whether the model scales its own pixels (a leading Rescaling layer)

    def setup(self, model: Any, config: TrainConfig, n_classes: int | None) -> None:
        if not isinstance(model, tf.keras.Model):
            raise BlaseError(f"framework='tensorflow' needs a keras Model, not a {type(model).__name__}.")
        tf.keras.utils.set_random_seed(config.seed)
        if config.device and config.device.startswith("cuda") and not tf.config.list_physical_devices("GPU"):
            raise BlaseError("device 'cuda' was asked for but TensorFlow sees no GPU here; use device=\"cpu\".")
        self.model = model
        self.classification = config.task == "classification"
        self._config = config

    def _compile(self) -> None:
        config = self._config
        loss = config.loss_fn or ("cross_entropy" if self.classification else "mse")
        if isinstance(loss, str):
            if loss not in _LOSSES:
                raise BlaseError(f"loss_fn {loss!r} is not one of {', '.join(_LOSSES)}; or pass a keras loss.")
            loss = _LOSSES[loss]
            if self.classification and loss == "sparse_categorical_crossentropy":
                # logits or probabilities: look at the last layer's activation
                last = self.model.layers[-1]
                from_logits = getattr(last, "activation", None) in (None, tf.keras.activations.linear)
                loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
        opt = config.optimizer
        if isinstance(opt, str):
            opt = tf.keras.optimizers.get({"class_name": opt, "config": {"learning_rate": config.learning_rate}})
        self.model.compile(optimizer=opt, loss=loss, metrics=["accuracy"] if self.classification else [])
        self._compiled = True

    def freeze(self, names: list[str]) -> list[str]:
        layers = {layer.name: layer for layer in self.model.layers}
        frozen = []
        for name in names:
            if name not in layers:
                raise BlaseError(f"freeze_layers: the model has no layer {name!r} (layers: {', '.join(layers)}).")
            layers[name].trainable = False
            frozen += [w.path for w in layers[name].weights]
        self._compiled = False
        return frozen

    def _x(self, x: np.ndarray) -> np.ndarray:
        if self._rescales is None:
            self._rescales = rescales_itself(self.model)
        # a model that starts with keras.layers.Rescaling(1/255) (the Keras tutorials' way) gets its pixels as
        # they are: scaling them here too would feed it values in [0, 1/255]
        x = x.astype(np.float32) if x.dtype == np.uint8 and self._rescales else to_float_input(x)
        return x[..., None] if x.ndim == 3 else x

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int, int]:
        if not self._compiled:
            self._compile()
        result = self.model.train_on_batch(self._x(x), y, return_dict=True)
        correct = int(round(float(result.get("accuracy", 0.0)) * len(y))) if self.classification else 0
        return float(result["loss"]) * len(y), correct, len(y)

    def loss(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int, int]:
        if not self._compiled:
            self._compile()
        result = self.model.test_on_batch(self._x(x), y, return_dict=True)
        correct = int(round(float(result.get("accuracy", 0.0)) * len(y))) if self.classification else 0
        return float(result["loss"]) * len(y), correct, len(y)

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = np.asarray(self.model.predict_on_batch(self._x(x)))
        if self.classification:
            if np.any(out < 0) or not np.allclose(out.sum(axis=1), 1, atol=1e-3):
                e = np.exp(out - out.max(axis=1, keepdims=True))
                out = e / e.sum(axis=1, keepdims=True)
            return out
        return out.reshape(len(x), -1).squeeze(-1)

    def embed(self, x: np.ndarray) -> np.ndarray | None:
        """What the model's last hidden layer (the one before its output) makes of ``x``, one row a record: the
        image embedding ``Monitor`` tests for drift. None for a model of one layer."""
        if getattr(self, "_embedder", None) is None:
            layers = [layer for layer in self.model.layers if not isinstance(layer, tf.keras.layers.InputLayer)]
            if len(layers) < 2:
                return None
            self._embedder = tf.keras.Model(self.model.inputs, layers[-2].output)
        out = np.asarray(self._embedder.predict_on_batch(self._x(x)))
        return out.reshape(len(out), -1)

    def state(self) -> Any:
        return [w.copy() for w in self.model.get_weights()]

    def load_state(self, state: Any) -> None:
        self.model.set_weights(state)

    def save_checkpoint(self, path: Path, extra: dict[str, Any]) -> None:
        if not self._compiled:
            self._compile()
        tmp = path.with_name(f".tmp-{path.name}.keras")
        self.model.save(tmp)  # weights and optimizer state
        meta = path.with_name(path.name + ".json")
        meta.write_text(json.dumps({k: v for k, v in extra.items() if k != "best_state"}, default=float))
        os.replace(tmp, path)

    def read_checkpoint(self, path: Path) -> dict[str, Any]:
        loaded = tf.keras.models.load_model(path, compile=True)
        self.model.set_weights(loaded.get_weights())
        self._compile()
        if loaded.optimizer is not None and self.model.optimizer is not None:
            self.model.optimizer.build(self.model.trainable_variables)
            for mine, theirs in zip(self.model.optimizer.variables, loaded.optimizer.variables, strict=False):
                mine.assign(theirs)
        return json.loads(path.with_name(path.name + ".json").read_text())

    def save(self, path: Path) -> None:
        # Keras picks the format by the suffix: the legacy HDF5 file older code reads for .h5, else .keras (zip)
        suffix = path.suffix if path.suffix == ".h5" else self.file_suffix
        tmp = path.with_name(f".tmp-{path.stem}{suffix}")
        self.model.save(tmp)
        shutil.move(tmp, path)

    @staticmethod
    def load(path: Path, device: str | None = None, *, allow_code: bool = True) -> TensorFlowAdapter:
        """The model saved at ``path`` (``.keras`` or ``.h5``); without ``allow_code`` in Keras' safe mode, which
        refuses a Lambda layer's Python code (a :class:`RunsCode`)."""
        from blase_tui.frameworks.formats import RunsCode

        adapter = TensorFlowAdapter()
        try:
            adapter.model = tf.keras.models.load_model(path, compile=False, safe_mode=not allow_code)
        except ValueError as exc:
            if allow_code or "safe_mode" not in str(exc):
                raise
            raise RunsCode(f"{path} is a Keras model with a Lambda layer: loading it runs its Python code.") from None
        return adapter

    def describe(self) -> dict[str, Any]:
        return {"class": type(self.model).__name__, "parameters": int(self.model.count_params()),
                "device": "gpu" if tf.config.list_physical_devices("GPU") else "cpu",
                "uint8_input": "the model's Rescaling layer scales it" if rescales_itself(self.model)
                else "scaled to [0, 1] by blase"}


def rescales_itself(model: Any) -> bool:
    """Whether ``model`` has a ``Rescaling`` layer before its first layer with weights: it scales raw pixels
    itself (the Keras tutorials' ``layers.Rescaling(1./255)``), so blase must not scale them as well."""
    for layer in getattr(model, "layers", []):
        if isinstance(layer, tf.keras.layers.Rescaling):
            return True
        if layer.weights:
            return False
    return False
