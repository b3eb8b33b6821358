"""ONNX: models trained elsewhere and exported (``torch.onnx.export``, ``skl2onnx``, ``tf2onnx``), loaded with
onnxruntime (the ``onnx`` extra) to be served, evaluated and registered; blase does not train them. Loading an
ONNX file runs no Python code from it: the graph's operators are onnxruntime's own.

A classifier exported by skl2onnx has two outputs, the labels and the probabilities (a tensor, or a list of
``{label: probability}`` maps); its classes are read from those maps (or from the labels, for a model of two
classes) on a record of zeros when the model is opened. Any other model's first output is its answer (a
network's class scores, or values).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from blase_tui.errors import BlaseError
from blase_tui.frameworks.base import TrainConfig

_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
           "tensor(int32)": np.int32, "tensor(uint8)": np.uint8, "tensor(float16)": np.float16}


class OnnxModel:
    """An onnxruntime session with the methods a scikit-learn estimator has: ``predict``, ``predict_proba`` (a
    classifier's) and ``classes_`` (when the file says them)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        inputs = session.get_inputs()
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs)
            raise BlaseError(f"the ONNX model takes {len(inputs)} inputs ({names}); blase serves models of one input"
                             " (export it with the features as one tensor).")
        self.input = inputs[0]
        self.dtype = _DTYPES.get(self.input.type, np.float32)
        shape = list(self.input.shape)[1:]
        self.shape: list[int] | None = [int(d) for d in shape] if all(isinstance(d, int) for d in shape) else None
        outputs = session.get_outputs()
        # skl2onnx's classifiers: labels first, then probabilities
        self.classifier = len(outputs) >= 2 and "tensor(float" not in outputs[0].type
        self.classes_: np.ndarray | None = None
        if self.classifier and self.shape is not None:
            try:
                labels, proba = self._run(np.zeros([1, *self.shape], dtype=self.dtype))[:2]
                if isinstance(proba, list) and proba and isinstance(proba[0], dict):
                    self.classes_ = np.asarray(list(proba[0].keys()))
            except Exception:  # noqa: BLE001 - the classes stay unknown; the answers do not depend on them
                self.classes_ = None

    def _run(self, x: np.ndarray) -> list[Any]:
        return list(self.session.run(None, {self.input.name: np.asarray(x, dtype=self.dtype)}))

    def predict(self, x: Any) -> np.ndarray:
        return np.asarray(self._run(np.asarray(x))[0])

    def predict_proba(self, x: Any) -> np.ndarray:
        if not self.classifier:
            raise BlaseError("the ONNX model has no probabilities output (it is not an exported classifier).")
        proba = self._run(np.asarray(x))[1]
        if isinstance(proba, list):  # skl2onnx's ZipMap: one {label: probability} per record
            keys = list(proba[0].keys()) if proba else []
            return np.asarray([[row[k] for k in keys] for row in proba], dtype=np.float64)
        return np.asarray(proba)


class OnnxAdapter:
    framework = "onnx"
    file_suffix = ".onnx"

    def __init__(self) -> None:
        self.model: Any = None
        self.classification = True
        self._bytes: bytes | None = None

    def _no_training(self) -> BlaseError:
        return BlaseError("an ONNX model is served, evaluated and registered, not trained in blase: train it in"
                          " its framework (with Train), then export it.")

    def setup(self, model: Any, config: TrainConfig, n_classes: int | None) -> None:
        raise self._no_training()

    def freeze(self, names: list[str]) -> list[str]:
        raise self._no_training()

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int, int]:
        raise self._no_training()

    def loss(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int, int]:
        raise self._no_training()

    def state(self) -> Any:
        raise self._no_training()

    def load_state(self, state: Any) -> None:
        raise self._no_training()

    def save_checkpoint(self, path: Path, extra: dict[str, Any]) -> None:
        raise self._no_training()

    def read_checkpoint(self, path: Path) -> dict[str, Any]:
        raise self._no_training()

    def predict(self, x: np.ndarray) -> np.ndarray:
        """A classifier's probabilities (an exported scikit-learn one) or the first output (a network's class
        scores, a regressor's values)."""
        if self.classification and self.model.classifier:
            return self.model.predict_proba(x)
        out = self.model._run(np.asarray(x))[0]
        return np.asarray(out)

    def save(self, path: Path) -> None:
        if self._bytes is None:
            raise BlaseError("this ONNX model was not read from a file; export it with its framework.")
        path.write_bytes(self._bytes)

    def describe(self) -> dict[str, Any]:
        inputs = self.model.session.get_inputs()
        return {"class": "ONNX", "input": {"name": inputs[0].name, "type": inputs[0].type,
                                           "shape": [d if isinstance(d, int) else None for d in inputs[0].shape]},
                "outputs": [o.name for o in self.model.session.get_outputs()]}

    @staticmethod
    def load(path: Path, device: str | None = None, *, allow_code: bool = True) -> OnnxAdapter:
        """The ONNX model at ``path`` (no Python code runs from it, so ``allow_code`` changes nothing); on CUDA
        when ``device`` asks and onnxruntime has it."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise BlaseError("ONNX models need onnxruntime: pip install \"blase-tui[onnx]\".") from None
        providers = ["CPUExecutionProvider"]
        if device and device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        adapter = OnnxAdapter()
        adapter._bytes = Path(path).read_bytes()
        try:
            session = ort.InferenceSession(adapter._bytes, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own error types: a damaged or unknown file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BlaseError(f"{path} is not an ONNX model onnxruntime can read ({first[:160]}).") from None
        adapter.model = OnnxModel(session)
        return adapter
