"""The one table of model frameworks: each framework's name (and the other names users give it), the file
suffixes its models are saved under (the first is the one blase writes), the packages a model of it needs, how
to tell that an object belongs to it, and its adapter (``blase_tui.frameworks``). A plugin adds a framework
through the ``blase.frameworks`` entry point group; it appears here by its name.

>>> named("scikit-learn").name
'sklearn'
>>> of_file(Path("m.joblib")).name
'sklearn'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blase_tui.errors import BlaseError, ConfigError
from blase_tui.frameworks.base import Adapter


@dataclass(frozen=True)
class Framework:
    name: str  # as blase records it: sklearn, torch, tensorflow (or a plugin's)
    aliases: tuple[str, ...]  # what users also call it
    suffixes: tuple[str, ...]  # model files it reads; the first is the one blase writes
    modules: tuple[str, ...]  # top-level modules whose classes are its models
    packages: tuple[str, ...]  # what a model of it needs installed (the first one found is pinned)
    adapter_path: str  # ``module:Class`` of its adapter

    def adapter(self) -> type[Adapter]:
        """Its adapter class, imported now (a framework is imported only when a model of it is asked for)."""
        from importlib import import_module

        module, _, cls = self.adapter_path.partition(":")
        return getattr(import_module(module), cls)  # type: ignore[no-any-return]

    @property
    def suffix(self) -> str:
        """The suffix of the files blase writes."""
        return self.suffixes[0]


FRAMEWORKS: dict[str, Framework] = {f.name: f for f in (
    Framework("sklearn", ("scikit-learn", "sk-learn"), (".skops", ".joblib", ".pkl", ".pickle"), ("sklearn",),
              ("scikit-learn", "scipy", "joblib", "skops"), "blase_tui.frameworks.sklearn_adapter:SklearnAdapter"),
    Framework("torch", ("pytorch",), (".pt", ".pth"), ("torch",), ("torch",),
              "blase_tui.frameworks.torch_adapter:TorchAdapter"),
    Framework("tensorflow", ("keras", "tf", "tf.keras"), (".keras", ".h5"), ("keras", "tensorflow", "tf_keras"),
              ("tensorflow-cpu", "tensorflow", "keras"), "blase_tui.frameworks.tensorflow_adapter:TensorFlowAdapter"),
    # exported models (torch.onnx, skl2onnx, tf2onnx), served with onnxruntime: the `onnx` extra
    Framework("onnx", ("onnxruntime",), (".onnx",), ("onnxruntime", "blase_tui.frameworks.onnx_adapter"),
              ("onnxruntime",), "blase_tui.frameworks.onnx_adapter:OnnxAdapter"),
)}
SUFFIXES: tuple[str, ...] = tuple(s for f in FRAMEWORKS.values() for s in f.suffixes)
# every model file a preview recognises, by suffix, with the kind it names (some no framework here reads)
FILE_KINDS = {".pt": "PyTorch", ".pth": "PyTorch", ".ckpt": "checkpoint", ".keras": "Keras", ".h5": "Keras/HDF5",
              ".skops": "skops", ".joblib": "joblib", ".pkl": "pickle", ".pickle": "pickle", ".onnx": "ONNX",
              ".safetensors": "safetensors"}


def named(name: str) -> Framework:
    """The framework ``name`` (any of its names, any case), or a plugin's; else one line naming those there are."""
    key = name.strip().lower()
    for framework in FRAMEWORKS.values():
        if key == framework.name or key in framework.aliases:
            return framework
    from blase_tui.core import plugins

    if plugins.find("frameworks", key) is not None:
        return Framework(key, (), (), (), (), "")
    raise ConfigError(f"framework {name!r} is not one of {', '.join(FRAMEWORKS)} (nor one a plugin adds:"
                      " `blase plugins list`).")


def of_file(path: Path) -> Framework | None:
    """The framework whose models are saved under ``path``'s suffix; None for a suffix no framework uses."""
    suffix = Path(path).suffix.lower()
    return next((f for f in FRAMEWORKS.values() if suffix in f.suffixes), None)


def of_object(obj: Any) -> Framework:
    """The framework ``obj`` (an estimator, module or Keras model) belongs to, told by its classes' modules."""
    mro = [c.__module__ for c in type(obj).__mro__]
    for framework in FRAMEWORKS.values():
        if any(m in framework.modules or m.split(".")[0] in framework.modules for m in mro):
            return framework
    if hasattr(obj, "get_params") and hasattr(obj, "fit"):  # a scikit-learn-style estimator of another package
        return FRAMEWORKS["sklearn"]
    raise BlaseError(f"cannot tell which framework a {type(obj).__name__} belongs to; pass framework="
                     f"{' or '.join(repr(n) for n in FRAMEWORKS)} (or the path of a saved file).")


def resolve(framework: str | None, *, path: Path | None = None, obj: Any = None) -> Framework:
    """The framework given by name, else told from the file's suffix or the object."""
    if framework:
        return named(framework)
    if path is not None:
        found = of_file(path)
        if found is None:
            raise ConfigError(f"cannot tell which framework saved {Path(path).name} (its suffix is none of"
                              f" {', '.join(SUFFIXES)}); name it: {', '.join(FRAMEWORKS)} (--framework on the"
                              " command line, framework= in Python).")
        return found
    return of_object(obj)


def open_model(path: Path, framework: str, file_name: str | None = None, device: str | None = None, *,
               allow_code: bool = True) -> Adapter:
    """The adapter holding the model saved at ``path`` (``file_name``: the name it was saved under, whose suffix
    Keras needs to know the format; a content-store object has none). ``allow_code=False`` loads only what runs
    no code from the file (``blase_tui.frameworks.formats``), else raises ``RunsCode``."""
    path = Path(path)
    file_name = file_name or path.name
    if framework == "tensorflow" and path.suffix != Path(file_name).suffix:
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory(prefix="blase-keras-") as tmp:
            named_copy = Path(tmp) / Path(file_name).name
            shutil.copyfile(path, named_copy)
            return open_model(named_copy, framework, named_copy.name, device, allow_code=allow_code)
    if framework in FRAMEWORKS:
        return FRAMEWORKS[framework].adapter().load(path, device, allow_code=allow_code)
    from blase_tui.frameworks.base import plugin_adapter

    if not allow_code:
        from blase_tui.frameworks.formats import RunsCode

        raise RunsCode(f"{path} is a {framework} model, read by a plugin: blase cannot tell that loading it runs no"
                       " code.")
    return plugin_adapter(framework).load(path, device)  # type: ignore[no-any-return]


def make_adapter(framework: str) -> Adapter:
    """A new adapter of ``framework`` (for training), a plugin's too."""
    if framework in FRAMEWORKS:
        return FRAMEWORKS[framework].adapter()()
    from blase_tui.frameworks.base import plugin_adapter

    return plugin_adapter(framework)()  # type: ignore[no-any-return]


if TYPE_CHECKING:  # each built-in adapter is an Adapter (mypy checks it in CI)
    from blase_tui.frameworks.onnx_adapter import OnnxAdapter
    from blase_tui.frameworks.sklearn_adapter import SklearnAdapter
    from blase_tui.frameworks.tensorflow_adapter import TensorFlowAdapter
    from blase_tui.frameworks.torch_adapter import TorchAdapter

    _ADAPTERS: tuple[type[Adapter], ...] = (SklearnAdapter, TorchAdapter, TensorFlowAdapter, OnnxAdapter)
