"""Model file formats: which of them run code from the file when loaded, told without loading it.

| framework    | safe (no code runs)                                   | runs code                                  |
| ------------ | ----------------------------------------------------- | ------------------------------------------ |
| scikit-learn | skops of types skops trusts                           | pickle / joblib; skops naming other types  |
| torch        | a file ``torch.load(weights_only=True)`` reads: state  | a whole module of other classes (the      |
|              | dicts, and modules built from ``torch.nn``'s own      | project's ``Net``), a legacy (non-zip)     |
|              | layers (allowed by name, as torch's safe globals);    | file                                       |
|              | TorchScript (``torch.jit.load``)                      |                                            |
| Keras        | ``.keras`` / ``.h5`` loaded in safe mode              | a Lambda layer's Python function           |
| ONNX         | every ``.onnx`` file (onnxruntime's operators)        |                                            |

``describe`` says which, naming what makes a file unsafe (the types a pickle or skops file names, the Lambda
layers); the adapters' ``load(..., allow_code=False)`` then loads the safe ones with the framework's own guard
(skops' trusted types, ``weights_only``, ``safe_mode``), so what is enforced is the library's check, not this
module's reading. A refusal there is a :class:`RunsCode`.
"""

from __future__ import annotations

import json
import pickletools
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase_tui.errors import BlaseError


class RunsCode(BlaseError):
    """Loading the file would run code from it, and that was not allowed."""


@dataclass(frozen=True)
class ModelFormat:
    """How a model file is stored: ``name``, whether loading it can run code from the file, and what makes it
    so (``untrusted``: type or layer names)."""

    name: str
    runs_code: bool
    untrusted: tuple[str, ...] = field(default=())

    @property
    def note(self) -> str:
        """The format in words, with what makes it unsafe, for a refusal: ``a pickle naming builtins.eval``."""
        base = _NOTES.get(self.name, f"a {self.name} file")
        if not self.untrusted:
            return base
        shown = ", ".join(self.untrusted[:4]) + (f" and {len(self.untrusted) - 4} more" if len(self.untrusted) > 4 else "")
        return f"{base} ({shown})" if self.name == "keras" else f"{base}, naming {shown}"

    def card(self) -> dict[str, Any]:
        """As a model card and ``deployment.json`` say it."""
        out: dict[str, Any] = {"name": self.name, "runs_code": self.runs_code}
        if self.untrusted:
            out["untrusted"] = list(self.untrusted)
        return out


_NOTES = {"pickle": "a pickle", "skops": "a skops file of types skops does not trust",
          "torch-pickle": "a whole torch module of classes outside torch.nn",
          "torch-weights": "a torch file of weights and torch.nn layers",
          "torchscript": "a TorchScript archive", "onnx": "an ONNX model",
          "keras": "a Keras model with a Lambda layer", "plugin": "a model in a plugin's format"}


def is_zip_with(path: Path, suffix: str) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n == suffix or n.endswith("/" + suffix) for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def is_skops(path: Path) -> bool:
    return is_zip_with(path, "schema.json")


def pickled_globals(blob: bytes) -> list[str]:
    """The ``module.name`` globals a pickle names (what unpickling it imports and may call), read without
    unpickling it; sorted."""
    found: set[str] = set()
    strings: list[str] = []
    try:
        for op, arg, _pos in pickletools.genops(blob):
            if op.name in ("GLOBAL", "INST") and isinstance(arg, str):
                found.add(arg.replace(" ", "."))
            elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings.append(str(arg))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.add(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # noqa: BLE001 - past what pickletools can walk (joblib's arrays follow): names so far
        pass
    return sorted(found)


# names every pickle of arrays holds, left out of a refusal so that what it names is what matters (the
# estimator's classes, or builtins.eval)
_PLAIN = {"copyreg._reconstructor", "copyreg.__newobj__", "builtins.object", "builtins.set", "builtins.frozenset",
          "builtins.bytearray", "builtins.slice", "builtins.complex", "__builtin__.set", "_codecs.encode",
          "collections.OrderedDict", "numpy.dtype", "numpy.ndarray", "numpy.core.multiarray._reconstruct",
          "numpy._core.multiarray._reconstruct", "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
          "joblib.numpy_pickle.NumpyArrayWrapper", "numpy.dtypes.Float64DType", "numpy.dtypes.Int64DType"}


def _pickle_format(path: Path) -> ModelFormat:
    with open(path, "rb") as fh:
        blob = fh.read(64 << 20)  # the names sit in the pickle's opcodes, before any large array's bytes
    named = [g for g in pickled_globals(blob) if g not in _PLAIN]
    return ModelFormat("pickle", True, tuple(named))


def torch_layers() -> list[Any]:
    """``torch.nn``'s own layer classes: a module built only from them holds no code of its own, and torch's
    weights-only loader may rebuild it (``torch.serialization.safe_globals``)."""
    import inspect

    import torch

    return sorted({obj for obj in vars(torch.nn).values()
                   if inspect.isclass(obj) and issubclass(obj, torch.nn.Module)
                   and obj.__module__.startswith("torch.nn.modules.")}, key=lambda c: c.__qualname__)


def is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (``torch.jit.save``): compiled code and constants, read by
    ``torch.jit.load``'s own loader, which rebuilds no Python object the file names."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def _torch_format(path: Path) -> ModelFormat:
    if not zipfile.is_zipfile(path):
        return ModelFormat("torch-pickle", True, ("a legacy (non-zip) torch file",))
    if is_torchscript(path):
        return ModelFormat("torchscript", False)
    import torch

    with torch.serialization.safe_globals(torch_layers()):
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    return ModelFormat("torch-pickle", True, tuple(sorted(unsafe))) if unsafe else ModelFormat("torch-weights", False)


def keras_config(path: Path) -> str | None:
    """The model's configuration as the file holds it (JSON text), or None when it cannot be read."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                return zf.read("config.json").decode("utf-8", errors="replace")
        import h5py

        with h5py.File(path, "r") as h5:
            value = h5.attrs.get("model_config")
            return value.decode() if isinstance(value, bytes) else (str(value) if value is not None else None)
    except Exception:  # noqa: BLE001 - unreadable here: the loader (in safe mode) decides
        return None


def _lambda_layers(config: Any, out: list[str], layer: str = "model") -> None:
    """The names of the layers whose configuration holds a Python lambda (Keras 3 writes ``__lambda__``, the
    legacy HDF5 format ``"function_type": "lambda"``): the code safe mode refuses to rebuild."""
    if isinstance(config, dict):
        inner = config.get("config")
        if isinstance(inner, dict) and isinstance(inner.get("name"), str) and "class_name" in config:
            layer = inner["name"]
        if config.get("class_name") == "__lambda__" or config.get("function_type") == "lambda":
            out.append(layer)
        for value in config.values():
            _lambda_layers(value, out, layer)
    elif isinstance(config, list):
        for value in config:
            _lambda_layers(value, out, layer)


def _keras_format(path: Path) -> ModelFormat:
    text = keras_config(path)
    if text is None:
        return ModelFormat("keras", False)
    try:
        config = json.loads(text)
    except ValueError:
        return ModelFormat("keras", False)
    found: list[str] = []
    _lambda_layers(config, found)
    return ModelFormat("keras", bool(found), tuple(dict.fromkeys(found)))


def describe(path: Path, framework: str) -> ModelFormat:
    """The format of the model file at ``path`` (saved by ``framework``), read without loading it."""
    path = Path(path)
    if framework == "sklearn":
        if is_skops(path):
            try:
                import skops.io as sio
            except ImportError:
                return ModelFormat("skops", True, ("(skops is not installed: pip install skops)",))
            untrusted = sio.get_untrusted_types(file=path)
            return ModelFormat("skops", bool(untrusted), tuple(untrusted))
        return _pickle_format(path)
    if framework == "torch":
        return _torch_format(path)
    if framework == "tensorflow":
        return _keras_format(path)
    if framework == "onnx":  # a graph of onnxruntime's own operators: no Python code in the file
        return ModelFormat("onnx", False)
    return ModelFormat("plugin", True, (framework,))
