"""``Deploy`` (seed 000): package a trained model as a self-contained deployment folder, and archive it.

>>> deployer = Deploy()
>>> deployer.deploy_model(model="digits_cnn@champion", save_path="deployments/digits/", method="docker")
>>> deployer.archive_deployment("deployments/digits/", format="zip")

A deployment folder holds everything ``blase serve`` (or the Docker image) needs to answer predictions::

    deployment.json    what it is: model name, version, framework, training run, the run that deployed it
    model/<file>       the model file as the registry keeps it, and model/card.json
    signature.json     the input it takes (columns with dtypes, or a tensor shape and dtype), an input example,
                       the classes
    requirements.txt   the packages serving needs, pinned to the versions the model was recorded with, and
                       blase itself from wheels/ (no package index has it)
    wheels/            blase's wheel, with only what serving needs
    code/              the project's Python files, when the model's classes are defined there (a torch module
                       from scripts/model.py)
    api.py             (include_api) the HTTP app: `uvicorn api:app`, the same app as `blase serve`
    Dockerfile         (method="docker") slim Python, a non-root user, a healthcheck, `blase serve /app`
    run.sh             (method="venv") makes a virtual environment with the requirements and serves
    README.md          how to run it

``model`` may be a registry reference (``name``, ``name:3``, ``name@champion``), a model file, or a model
object. An object that ``Train`` fitted in this process is registered and deployed as it is. Any other object
is taken for what seed 000 passes: the architecture from ``scripts/model.py``, untrained in this process; the
deployment then holds the trained version of that architecture, and one line says which and why.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blase_tui.core import archive
from blase_tui.errors import BlaseError, ConfigError
from blase_tui.models import frameworks
from blase_tui.modules import recording, wheel
from blase_tui.store.safepath import UnsafePath, inside, relative_name

if TYPE_CHECKING:
    from blase_tui.store.records import ModelVersionDetail

DEPLOYMENT = "deployment.json"
SIGNATURE = "signature.json"
FORMAT = 1
METHODS = ("folder", "docker", "venv")
# what serving needs, besides the model's framework (pinned to this environment's versions)
SERVE_PACKAGES = ("numpy", "pandas", "pyarrow", "fastapi", "uvicorn", "orjson")


@dataclass
class Chosen:
    """The model version a deployment holds, and why it was chosen (one line)."""

    name: str
    version: int | None
    framework: str
    path: Path  # the model file
    file_name: str
    card: dict[str, Any]
    run_id: str | None
    why: str
    format_note: str | None = None  # why the deployment serves another format than the one preferred


class Deploy:
    def __init__(self, python: str | None = None) -> None:
        """``python``: the Python version of the Docker image (default: the one the model was recorded with)."""
        self.python = python
        self.last: Path | None = None

    # ----------------------------------------------------------------------------------------------- deploy
    def deploy_model(self, model: Any, save_path: str | Path, method: str = "folder", framework: str | None = None,
                     include_api: bool = True, *, trust: bool = True) -> Path:
        """Write the deployment of ``model`` to ``save_path`` (replacing an earlier deployment there); returns
        its folder. ``method``: ``folder``, ``docker`` (adds a Dockerfile) or ``venv`` (adds run.sh). A model
        file not in the registry is registered first (in a run), its card read from the model; ``trust``: it
        may be opened for that even where opening runs code from it (a pickle your code names); with
        ``trust=False`` (``blase deploy`` without ``--trust``) only a safe format is."""
        if method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, not {method!r}.")
        framework = frameworks.named(framework).name if framework else None
        described = model if isinstance(model, str | Path) else f"<{type(model).__name__}>"
        recording.params("deploy_model", model=str(described), save_path=str(save_path), method=method,
                         framework=framework, include_api=include_api)
        chosen = choose_model(model, framework, trusted=trust)
        target = Path(save_path)
        before = _check_replaceable(target)
        staging = target.with_name(f".tmp-deploy-{os.getpid()}-{target.name}")
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        try:
            written = write_deployment(staging, chosen, method=method, include_api=include_api, python=self.python)
            old = target.with_name(f".old-deploy-{os.getpid()}-{target.name}")
            if target.exists():
                for kept in KEPT_ON_REPLACE:  # what the served deployment logged stays with the new one
                    if (target / kept).exists():
                        os.replace(target / kept, staging / kept)
                os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        recording.say("deployed %s to %s (%s): %s%s; %s", _label(chosen), target, method, chosen.why,
                      f"; it replaced {before} there (a server already running goes on serving that until restarted)"
                      if before else "", _format_said(written, chosen))
        recording.dataset(target, role="output")
        self.last = target
        return target

    def archive_deployment(self, path: str | Path | None = None, format: str = "zip") -> Path:  # noqa: A002
        """A deterministic archive of the deployment ``path`` (same folder, same bytes) beside it, with a SHA-256
        manifest inside and ``ARCHIVE.sha256`` beside it; returns the archive's path."""
        folder = Path(path) if path is not None else self.last
        if folder is None:
            raise BlaseError("archive_deployment needs the deployment folder (deploy_model's save_path).")
        recording.params("archive_deployment", path=str(folder), format=format)
        if not (folder / DEPLOYMENT).is_file():
            raise BlaseError(f"{folder} is not a deployment (no {DEPLOYMENT}); make it with deploy_model first.")
        include, left_out = _archived_files(folder)
        out = archive.build(folder, format, include=include)
        from blase_tui.core import signing
        from blase_tui.core.config import find_project_root

        root = find_project_root(folder) or find_project_root()
        signed = signing.sign(out, root) if root is not None else None
        recording.dataset(out, role="output")
        recording.say("archived %s as %s%s (check it with `blase deploy verify %s`)%s", folder, out,
                      ", signed with the project's key" if signed else "", out,
                      f"; left out {left_out}" if left_out else "")
        return out


def _format_said(manifest: dict[str, Any], chosen: Chosen) -> str:
    """The deployment's model format in a few words, for the line deploy_model says."""
    model = manifest["model"]
    fmt = model["format"]
    said = f"it serves {model['file']} ({fmt['name']}, "
    if not fmt["runs_code"]:
        said += "loading it runs no code)"
    elif chosen.version is not None:
        said += "loading it runs code: this project's own, so serving it asks nothing)"
    else:
        said += "loading it runs code, and it is not a registered model: `blase serve` asks you to trust it first)"
    return said + (f"; {chosen.format_note}" if chosen.format_note else "")


def _label(chosen: Chosen) -> str:
    return f"{chosen.name} v{chosen.version}" if chosen.version is not None else chosen.name


# ----------------------------------------------------------------------------------------- choosing a model
def choose_model(model: Any, framework: str | None = None, *, trusted: bool = True) -> Chosen:
    """The model version ``model`` stands for (see the module's docstring)."""
    if isinstance(model, str | Path):
        path = Path(model)
        if path.is_file():
            return _from_file(path, framework, trusted)
        if isinstance(model, Path) or "/" in str(model) or frameworks.of_file(path) is not None:
            raise ConfigError(f"model {model}: no such file, and not a model name; give a registered model"
                             " (`blase models list`), as name, name:3 or name@alias, or a model file.")
        row = recording.model_version(str(model))
        return _chosen(row, f"named by the reference {model!r}")
    return _from_object(model, framework)


def _chosen(row: ModelVersionDetail, why: str) -> Chosen:
    card = row.card or {}
    return Chosen(name=row.name, version=int(row.version), framework=row.framework, path=Path(row.path),
                  file_name=row.file_name, card=card,
                  # a file imported from elsewhere was registered by a run that did not train it
                  run_id=None if card.get("imported_from") else row.run_id or card.get("training_run"), why=why)


def _from_file(path: Path, framework: str | None, trusted: bool = True) -> Chosen:
    """A model file: the registered version with its content, else the file registered now (in a run) as the
    next version of its stem, its card read from the model (columns, classes, input); outside any run, the file
    itself with that card. ``trusted``: the file may be opened even where that runs code from it (a pickle
    named in the user's own code); else only a safe format is."""
    from blase_tui.store.hashing import hash_file

    digest = hash_file(path)
    for known in reversed(recording.model_versions()):
        if known.file_hash == digest:
            return _chosen(recording.model_version(f"{known.name}:{known.version}"),
                           f"the file {path} is that registered version")
    fw = frameworks.resolve(framework, path=path)
    card_file = path.with_name(path.name + ".card.json")
    sidecar = json.loads(card_file.read_text()) if card_file.is_file() else None
    if recording.active():
        saved = recording.log_model(path, path.stem, framework=fw.name, imported=sidecar is None, trusted=trusted,
                                    task=(sidecar or {}).get("task", "classification"), known=sidecar,
                                    metrics=(sidecar or {}).get("metrics"))
        name, _, version = saved.partition(" v")
        return _chosen(recording.model_version(f"{name}:{version}"),
                       f"the file {path}, not in the registry until now: registered as {saved}")
    from blase_tui.models import card as card_mod
    from blase_tui.models.registry import read_model

    card = sidecar or card_mod.build(read_model(path, fw.name, trusted), fw.name)
    return Chosen(name=path.stem, version=None, framework=fw.name, path=path, file_name=path.name, card=card,
                  run_id=card.get("training_run"),
                  why=f"the file {path}, which is not in the registry (outside any run: no version to register)")


def _architecture(obj: Any, framework: str) -> tuple[str, Any]:
    """What identifies an architecture: the class and the shapes of its weights (params for scikit-learn)."""
    if framework == "torch":
        return type(obj).__name__, [(k, tuple(v.shape)) for k, v in obj.state_dict().items()]
    if framework == "tensorflow":
        return type(obj).__name__, [tuple(w.shape) for w in obj.get_weights()]
    return type(obj).__name__, {k: repr(v) for k, v in obj.get_params().items()}


def _same_weights(a: Any, b: Any, framework: str) -> bool:
    if framework == "torch":
        sa, sb = a.state_dict(), b.state_dict()
        return sa.keys() == sb.keys() and all(sa[k].cpu().equal(sb[k].cpu()) for k in sa)
    if framework == "tensorflow":
        wa, wb = a.get_weights(), b.get_weights()
        return len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb, strict=True))
    import pickle

    return pickle.dumps(a) == pickle.dumps(b)


def _load(row: ModelVersionDetail) -> Any:
    return frameworks.open_model(Path(row.path), row.framework, row.file_name, "cpu").model


def _from_object(obj: Any, framework: str | None) -> Chosen:
    from blase_tui.modules.train import trained_in_this_process

    framework = framework or frameworks.of_object(obj).name
    if trained_in_this_process(obj):
        return _register(obj, framework, "the object passed was trained in this process; registered it first")
    arch = _architecture(obj, framework)
    in_run = [(m.name, m.version) for m in recording.run_models()]
    candidates = sorted((m for m in recording.model_versions() if m.framework == framework),
                        key=lambda m: ((m.name, m.version) in in_run, m.created or 0), reverse=True)
    same_arch: list[ModelVersionDetail] = []
    for m in candidates:
        row = recording.model_version(m.ref)
        card_class = ((row.card or {}).get("model") or {}).get("class")
        if card_class is not None and card_class != arch[0]:
            continue
        try:
            loaded = _load(row)
        except Exception:  # noqa: BLE001 - a version that no longer loads is simply not a candidate
            continue
        if _architecture(loaded, framework) != arch:
            continue
        if _same_weights(obj, loaded, framework):
            return _chosen(row, "the object passed holds exactly that version's weights")
        same_arch.append(row)
        if len(same_arch) >= 1 and len(candidates) > 20:
            break
    if same_arch:
        row = same_arch[0]
        where = ("the version of that architecture saved in this run"
                 if (row.name, row.version) in in_run else "the newest registered version of that architecture")
        return _chosen(row, f"the {arch[0]} passed was not trained in this process (it is the architecture, as"
                            f" from scripts/model.py), so this is {where}, trained in run {row.run_id}")
    if framework == "sklearn" and _fitted(obj):
        return _register(obj, framework, "a fitted estimator not in the registry; registered it first")
    raise BlaseError(f"no trained {arch[0]} of this architecture is registered, and the object passed was not trained"
                     " in this process: run the train step first (Train.save_model or ctx.log_model), or pass a"
                     " registered model such as \"name@champion\".")


def _fitted(obj: Any) -> bool:
    try:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(obj)
        return True
    except Exception:  # noqa: BLE001
        return False


def _register(obj: Any, framework: str, why: str) -> Chosen:
    if not recording.active():
        raise BlaseError("deploying a model object that is not registered needs a run (a step, or"
                         " Track().start_run()) to register it in; or pass a registered model's name.")
    saved = recording.log_model(obj, type(obj).__name__.lower(), framework=framework)
    name, _, version = saved.partition(" v")
    return _chosen(recording.model_version(f"{name}:{version}"), why)


# ------------------------------------------------------------------------------------------------- writing
def write_deployment(folder: Path, chosen: Chosen, *, method: str = "folder", include_api: bool = True,
                     python: str | None = None) -> dict[str, Any]:
    """Write the deployment of ``chosen`` into the (empty) ``folder``; returns its ``deployment.json``."""
    (folder / "model").mkdir(parents=True, exist_ok=True)
    served, fmt, kept_as = _write_model(folder, chosen)
    card = dict(chosen.card)
    card["format"] = fmt.card()
    (folder / "model" / "card.json").write_text(json.dumps(card, indent=1, sort_keys=True, default=str) + "\n")
    code = _code_needed(chosen, folder)
    signature = _signature(chosen)
    # one line per key: readable, and the input example (an image: 1,024 values) stays on its line
    (folder / SIGNATURE).write_text("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v, default=_plain)}"
                                                      for k, v in signature.items()) + "\n}\n")
    example = signature.get("input_example")
    if example is not None:  # a request body that works as it is: the README's curl sends it
        body = {"dataframe_split": example} if isinstance(example, dict) else {"instances": example}
        (folder / "example.json").write_text(json.dumps(body, default=_plain) + "\n")
    packages = _packages(chosen)
    bundled = wheel.write(folder)  # blase itself, which no package index has: installed from the folder
    (folder / "requirements.txt").write_text(_requirements(packages, bundled.relative_to(folder).as_posix()))
    where = recording.where()
    py = python or (card.get("python") or f"{sys.version_info.major}.{sys.version_info.minor}")
    manifest = {
        "format": FORMAT,
        "model": {"name": chosen.name, "version": chosen.version, "framework": chosen.framework,
                  "file": served, "card": "model/card.json", "training_run": chosen.run_id,
                  "task": card.get("task", "classification"), "format": fmt.card(),
                  **({"original": kept_as} if kept_as else {})},
        "chosen_because": chosen.why,
        "deployed_by_run": where.get("run_id"),
        "method": method,
        "python": py,
        "code": code,
        "packages": packages,
    }
    if include_api:
        (folder / "api.py").write_text(API_PY)
    if method == "docker":
        (folder / "Dockerfile").write_text(dockerfile(py, trust=fmt.runs_code))
        (folder / ".dockerignore").write_text("predictions/\n__pycache__/\n")
    if method == "venv":
        run = folder / "run.sh"
        run.write_text(RUN_SH)
        os.chmod(run, 0o755)
    (folder / "README.md").write_text(_readme(chosen, method, include_api, py, served, fmt, kept_as))
    # written last, with the files it wrote, so that deploying there again replaces only them (and refuses to
    # delete others)
    manifest["files"] = sorted({p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
                               | {DEPLOYMENT})
    (folder / DEPLOYMENT).write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str) + "\n")
    if fmt.runs_code and chosen.version is not None:
        # a registered version is this project's own model: what this deployment runs when it loads (the model
        # file, with code/) is recorded as produced here, so that serving it, or an archive of it, asks nothing
        from blase_tui.core import trust

        trust.record(trust.identity(served, trust.folder_digests(folder, served)), by="deploy",
                     what=f"{_label(chosen)} ({served}, {fmt.name})", root=recording.project_root())
    return manifest


def _write_model(folder: Path, chosen: Chosen) -> tuple[str, Any, str | None]:
    """Copy the model file into ``folder/model/``; a registered scikit-learn pickle is also written as skops,
    which is what the deployment serves (loading it runs no code). Returns the served file's name inside
    ``folder``, its format (``frameworks.formats.ModelFormat``) and the name of the file kept beside it."""
    from blase_tui.frameworks.formats import describe, is_skops

    copied = folder / "model" / chosen.file_name
    shutil.copyfile(chosen.path, copied)
    os.chmod(copied, 0o644)
    served = f"model/{chosen.file_name}"
    kept: str | None = None
    chosen.format_note = None
    if chosen.framework == "sklearn" and chosen.version is not None and not is_skops(copied):
        target = copied.with_name(f"{Path(chosen.file_name).stem}.skops")
        try:
            import skops.io as sio

            from blase_tui.frameworks.sklearn_adapter import SklearnAdapter

            # a registered version: the project's own pickle, loaded to be written again without pickle
            sio.dump(SklearnAdapter.load(chosen.path).model, target)
            os.chmod(target, 0o644)
            served, kept = f"model/{target.name}", served
        except ImportError:
            chosen.format_note = "skops is not installed (pip install skops), so it is served as the pickle"
        except Exception as exc:  # noqa: BLE001 - skops cannot write every object; the pickle still serves
            target.unlink(missing_ok=True)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            chosen.format_note = f"skops cannot write it ({first[:120]}), so it is served as the pickle"
    return served, describe(folder / served, chosen.framework), kept


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _code_needed(chosen: Chosen, folder: Path) -> bool:
    """Copy the project's Python files into ``code/`` when the pickled model refers to classes defined in the
    project (a torch module or scikit-learn transformer from ``scripts/``); returns whether it did."""
    if chosen.framework == "tensorflow":
        return False
    modules = _pickled_modules(chosen.path)
    roots = {m.split(".")[0] for m in modules}
    ours = {r for r in roots if r not in sys.builtin_module_names and r not in _THIRD_PARTY and not _installed(r)}
    if not ours:
        return False
    from blase_tui.core.signature import project_code_files

    root = recording.project_root()
    from blase_tui.core.config import load_config

    config = load_config(root)
    for f in project_code_files(root, config.entry, config.scripts):
        rel = f.relative_to(root)
        if rel.parts[0] in ours or f"{rel.with_suffix('').as_posix().replace('/', '.')}" in modules:
            dest = folder / "code" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
    return (folder / "code").is_dir()


_THIRD_PARTY = {"torch", "sklearn", "numpy", "scipy", "collections", "builtins", "copyreg", "_codecs",
                "__builtin__", "functools", "joblib", "pandas"}


def _installed(top: str) -> bool:
    """A module importable from outside the project (an installed package or the standard library)."""
    import importlib.util

    if top in sys.stdlib_module_names:
        return True
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None or spec.origin is None:
        return spec is not None and not spec.submodule_search_locations
    try:
        root = recording.project_root().resolve()
    except Exception:  # noqa: BLE001
        return True
    return not Path(spec.origin).resolve().is_relative_to(root)


def _pickled_modules(path: Path) -> set[str]:
    """The modules a pickle (or torch's zip of one) names its classes from, read without unpickling."""
    import pickletools
    import zipfile

    blobs = []
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            blobs = [zf.read(n) for n in zf.namelist() if n.endswith(".pkl")]
    else:
        blobs = [path.read_bytes()]
    found: set[str] = set()
    for blob in blobs:
        strings: list[str] = []
        try:
            for op, arg, _pos in pickletools.genops(blob):
                if op.name in ("GLOBAL", "INST") and isinstance(arg, str):
                    found.add(arg.split(" ")[0])
                elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                    strings.append(str(arg))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.add(strings[-2])
        except Exception:  # noqa: BLE001 - not a pickle we can walk: nothing to add
            continue
    return found


def _signature(chosen: Chosen) -> dict[str, Any]:
    """The input the model takes, from its card: named columns (a scikit-learn model fitted on a DataFrame) or a
    tensor of a shape and dtype; with an input example and the classes."""
    card = chosen.card
    given = card.get("input") or {}
    features = card.get("feature_names")
    example = card.get("input_example")
    if features:
        inputs: dict[str, Any] = {"kind": "columns",
                                  "columns": [{"name": f, "dtype": given.get("dtype", "float64")} for f in features]}
    else:
        shape = given.get("shape")
        inputs = {"kind": "tensor", "shape": shape, "dtype": given.get("dtype", "float32")}
        if given.get("column"):
            inputs["column"] = given["column"]
    synthetic = False
    if example is None:
        example = _example_from_training(chosen, inputs)
    if example is None and inputs.get("shape") is not None:
        example = np.zeros([1, *inputs["shape"]], dtype=inputs.get("dtype") or "float32").tolist()
        synthetic = True
    if example is None and features and all(c["dtype"] != "object" for c in inputs["columns"]):
        example = [[0.0] * len(features)]  # a request that works as it is, for the README's curl
        synthetic = True
    if example is not None and features:
        example = {"columns": features, "data": np.asarray(example).tolist()}
    return {"inputs": inputs, "input_example": example, "input_example_synthetic": synthetic,
            "task": card.get("task", "classification"), "classes": card.get("classes"),
            "framework": chosen.framework}


def _example_from_training(chosen: Chosen, inputs: dict[str, Any]) -> Any:
    """A record of the data the model was trained on (the first of its training split), when still there."""
    if chosen.run_id is None:
        return None
    try:
        from blase_tui.modules.shards import open_split

        for path in recording.training_inputs(chosen.run_id, chosen.card.get("training_step_run")):
            if not (path / "_manifest.json").is_file():
                continue
            split = open_split(path)
            column = inputs.get("column") or split.input_column(None)
            for _, cols in split.batches(2, columns=[column]):
                return np.asarray(cols[column][:2]).tolist()
    except Exception:  # noqa: BLE001 - an example is a courtesy; the signature stands without it
        return None
    return None


def _packages(chosen: Chosen) -> dict[str, str]:
    """Pinned versions of what serving the model needs: the framework as the model was recorded with, the
    server's packages as this environment has them, and blase."""
    from importlib import metadata

    import blase_tui

    recorded = dict(chosen.card.get("packages") or {})
    out: dict[str, str] = {}
    for pkg in (*frameworks.named(chosen.framework).packages, *SERVE_PACKAGES):
        version = recorded.get(pkg)
        if version is None:
            try:
                version = metadata.version(pkg)
            except metadata.PackageNotFoundError:
                continue
        out[pkg] = version
    if chosen.framework == "tensorflow" and "tensorflow-cpu" in out:
        out.pop("tensorflow", None)
    out["blase-tui"] = recorded.get("blase-tui", blase_tui.__version__)
    return dict(sorted(out.items()))


def _requirements(packages: dict[str, str], bundled: str) -> str:
    """requirements.txt: blase's wheel from the folder (``bundled``, relative to it: install from the folder),
    then every package pinned, the model's framework as it was recorded with."""
    lines = ["# pinned to the versions the model was recorded with (blase deploy); install from this folder:",
             "#   pip install -r requirements.txt", f"./{bundled}"]
    for pkg, version in {**wheel.requirements(), **packages}.items():
        if pkg == "blase-tui":
            continue
        base = version.split("+")[0]  # a local build tag (torch's +cpu) is not on the package index
        lines.append(f"{pkg}=={base}")
    return "\n".join(lines) + "\n"


API_PY = '''"""The deployment's HTTP app, the same one `blase serve` runs: `uvicorn api:app --port 5000` from this folder.
Routes: POST /invocations, GET /ping, /health, /version, /metadata (see blase's docs/deploy.md)."""

from pathlib import Path

from blase_tui.serve.app import create_app

# trust=True: this file is Python from the deployment folder, and running it already trusts that folder, the
# model included (`blase serve FOLDER` asks first when the model's format runs code as it loads)
app = create_app(Path(__file__).resolve().parent, trust=True)
'''

RUN_SH = '''#!/bin/sh
# Make a virtual environment with the pinned requirements (once), then serve the model on port ${PORT:-5000}.
set -eu
cd "$(dirname "$0")"
if [ ! -x .venv/bin/blase ]; then
    python3 -m venv .venv
    .venv/bin/pip install -r requirements.txt
fi
exec .venv/bin/blase serve . --host "${HOST:-127.0.0.1}" --port "${PORT:-5000}"
'''


def serve_command(host: str = "0.0.0.0", port: int = 5000, trust: bool = False) -> list[str]:  # noqa: S104
    """The command the Dockerfile runs (the test runs exactly it, outside Docker); ``--trust`` when the model's
    format runs code as it loads (there is no project in the image to have produced it)."""
    return ["blase", "serve", "/app", "--host", host, "--port", str(port), *(["--trust"] if trust else [])]


def dockerfile(python: str, trust: bool = False) -> str:
    cmd = json.dumps(serve_command(trust=trust))
    why = ("# --trust: loading this model runs code from its file (see deployment.json's model.format); building\n"
           "# this image from the folder is trusting it, as running its Dockerfile is.\n") if trust else ""
    return f'''# The deployment as an image: `docker build -t model . && docker run -p 5000:5000 model`
{why}FROM python:{python}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 blase
WORKDIR /app
COPY requirements.txt .
COPY wheels/ wheels/
RUN pip install -r requirements.txt
COPY --chown=blase:blase . .
USER blase
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \\
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:5000/ping', timeout=4).status != 200)"]
CMD {cmd}
'''


def _readme(chosen: Chosen, method: str, include_api: bool, python: str, served: str, fmt: Any,
            kept: str | None) -> str:
    run = {
        "folder": "    pip install -r requirements.txt\n    blase serve . --port 5000\n",
        "docker": "    docker build -t model .\n    docker run -p 5000:5000 model\n",
        "venv": "    ./run.sh            # HOST and PORT may be set; 127.0.0.1:5000 by default\n",
    }[method]
    api = "\n`api.py` is the same app for any ASGI server: `uvicorn api:app --port 5000`.\n" if include_api else ""
    return f"""# {_label(chosen)}

A {chosen.framework} model deployed by blase ({chosen.why}).
Trained in run {chosen.run_id or "-"}; see `deployment.json` and `model/card.json`.

The model served is `{served}` ({fmt.name}: {"loading it runs code from the file, so `blase serve` asks"
" whether you trust it unless this project made it" if fmt.runs_code else "loading it runs no code from the file"}).
{f"`{kept}` is the same model as the registry keeps it (a pickle: load it only if you trust it)." if kept else ""}

## Run it

{run}{api}
## Ask it

    curl -s localhost:5000/ping
    curl -s localhost:5000/metadata
    curl -s -H 'Content-Type: application/json' -d @example.json localhost:5000/invocations

`/invocations` takes MLflow's JSON formats (`dataframe_split`, `dataframe_records`, `instances`, `inputs`)
and CSV, and answers `{{"predictions": [...]}}` (`?probabilities=true` adds the class probabilities).
`signature.json` says what input the model takes; `example.json` is a request that works as it is. Python {python}.
"""


KEPT_ON_REPLACE = ("predictions",)  # written into a deployment by `blase serve` outside a project


def _archived_files(folder: Path) -> tuple[list[str], str]:
    """The files an archive of the deployment ``folder`` holds: those ``deployment.json`` lists as written by
    the deployment (never ``predictions/``, every input served, nor a file someone added); and what was left
    out, in a few words (empty when nothing was)."""
    try:
        manifest = json.loads((folder / DEPLOYMENT).read_text())
    except (OSError, ValueError) as exc:
        raise BlaseError(f"{folder / DEPLOYMENT} cannot be read ({exc}); deploy it again.") from None
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    present = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink())
    if isinstance(listed, list):
        include = []
        for name in listed:
            try:
                rel = relative_name(name, what=f"a file listed in {folder / DEPLOYMENT}")
            except UnsafePath as exc:
                raise BlaseError(f"{exc} Deploy it again.") from None
            if not (folder / rel).is_file():
                raise BlaseError(f"{folder / DEPLOYMENT} lists {rel}, which is missing; deploy it again.")
            include.append(rel)
    else:  # written before deployments listed their files: everything but what serving added
        include = [rel for rel in present if rel.split("/")[0] not in (*KEPT_ON_REPLACE, "__pycache__")
                   and "__pycache__" not in rel.split("/")]
    chosen = set(include) | {archive.MANIFEST}
    others = [rel for rel in present if rel not in chosen]
    groups: dict[str, int] = {}
    loose: list[str] = []
    for rel in others:
        top = rel.split("/")[0]
        if top in (*KEPT_ON_REPLACE, "__pycache__") or "__pycache__" in rel.split("/"):
            key = f"{top}/" if top in (*KEPT_ON_REPLACE, "__pycache__") else "__pycache__/"
            groups[key] = groups.get(key, 0) + 1
        else:
            loose.append(rel)
    parts = [f"{key} ({n} file{'s' if n != 1 else ''}{': the prediction log' if key == 'predictions/' else ''})"
             for key, n in sorted(groups.items())]
    if loose:
        parts.append(f"{', '.join(loose[:3])}{f' and {len(loose) - 3} more' if len(loose) > 3 else ''} (not written"
                     " by the deployment)")
    return include, ", ".join(parts)


def _check_replaceable(target: Path) -> str | None:
    """``target`` may be written: missing, empty, or a deployment blase wrote whose files are all its own (and
    the prediction logs `blase serve` added). Anything else is refused, naming what would be lost: a
    ``deployment.json`` alone does not make a folder blase's to delete. Returns the model deployed there."""
    if not target.exists():
        return None
    if not target.is_dir():
        raise BlaseError(f"{target} exists and is not a folder; choose another save_path or remove it.")
    if not any(target.iterdir()):
        return None
    try:
        manifest = json.loads((target / DEPLOYMENT).read_text())
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or "model" not in manifest:
        raise BlaseError(f"{target} exists and is not a deployment blase wrote; choose another save_path or remove"
                         " it.")
    if "files" in manifest:
        ours = set(manifest["files"])
        extra = sorted(p.relative_to(target).as_posix() for p in target.rglob("*")
                       if p.is_file() and p.relative_to(target).parts[0] not in (*KEPT_ON_REPLACE, "__pycache__")
                       and p.relative_to(target).as_posix() not in ours)
        if extra:
            raise BlaseError(f"{target} holds files the deployment did not write ({', '.join(extra[:3])}"
                             f"{', ...' if len(extra) > 3 else ''}); deploying there would delete them: move them"
                             " out, or choose another save_path.")
    model = manifest["model"]
    return f"{model.get('name')} v{model.get('version')}" if model.get("version") is not None else str(model.get("name"))


# -------------------------------------------------------------------------------------------------- trusting
@dataclass(frozen=True)
class Identity:
    """What loading a deployment's model runs: the model file (inside the deployment) and the one hash the
    trust list keeps for it (``core.trust.identity``: the file's, or the file's with ``code/``'s)."""

    model: str
    digest: str
    label: str  # the model as deployment.json names it ("tab v1")


def deployment_identity(target: Path) -> Identity:
    """The identity of the model a deployment folder or archive (verified first) would load."""
    from blase_tui.core import trust

    target = Path(target)
    if target.is_dir():
        manifest = read_deployment(target)
        rel = manifest["model_file"]
        digests = trust.folder_digests(target, rel)
    elif target.is_file():
        if not target.name.endswith((".zip", ".tar.gz", ".tgz")):
            raise ConfigError(f"{target} is neither a deployment folder nor an archive of one (.zip, .tar.gz).")
        report = archive.verify(target, keep={DEPLOYMENT})
        if not report.ok:
            raise ConfigError(f"{target.name} does not verify ({report.all_problems[0]}); nothing was trusted.")
        try:
            manifest = json.loads(report.kept[DEPLOYMENT])
            rel = relative_name(manifest["model"]["file"], what=f"the model file named in {DEPLOYMENT}")
        except (KeyError, TypeError, ValueError, UnsafePath) as exc:
            raise ConfigError(f"{target.name} holds no readable {DEPLOYMENT} naming its model file ({exc});"
                              " nothing was trusted.") from None
        if rel not in report.manifest:
            raise ConfigError(f"{target.name}: its model file {rel} is not in the archive; nothing was trusted.")
        digests = {name: d for name, d in report.manifest.items() if name == rel or name.startswith("code/")}
    else:
        raise ConfigError(f"{target} does not exist; give a deployment folder or an archive of one.")
    model = manifest.get("model") or {}
    label = f"{model.get('name')} v{model['version']}" if model.get("version") is not None else str(model.get("name"))
    return Identity(rel, trust.identity(rel, digests), label)


# -------------------------------------------------------------------------------------------------- reading
def read_deployment(folder: Path) -> dict[str, Any]:
    """A deployment's ``deployment.json`` and ``signature.json``, checked; a one-line error otherwise."""
    folder = Path(folder)
    manifest_path = folder / DEPLOYMENT
    if not manifest_path.is_file():
        raise ConfigError(f"{folder} is not a deployment (no {DEPLOYMENT}); make one with Deploy().deploy_model.")
    try:
        manifest = json.loads(manifest_path.read_text())
        signature = json.loads((folder / SIGNATURE).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{folder}: {DEPLOYMENT} or {SIGNATURE} cannot be read ({exc}); deploy it again.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ConfigError(f"{folder}: deployment format {manifest.get('format') if isinstance(manifest, dict) else None!r}"
                          f" is not {FORMAT}; deploy it again with this version of blase.")
    model = manifest.get("model")
    if not isinstance(model, dict) or not all(isinstance(model.get(k), str) for k in ("name", "framework", "file")) \
            or not isinstance(signature, dict):
        raise ConfigError(f"{folder}: {DEPLOYMENT} does not name the model's name, framework and file (or"
                          f" {SIGNATURE} is not an object); deploy it again.")
    # a name read from disk (an archive made elsewhere): relative, inside the folder, printable
    try:
        rel = relative_name(model["file"], what=f"the model file named in {folder / DEPLOYMENT}")
        model_file = inside(folder, rel, what=f"the model file named in {folder / DEPLOYMENT}")
    except UnsafePath as exc:
        raise ConfigError(str(exc)) from None
    if not model_file.is_file():
        raise ConfigError(f"{folder}: the model file {rel} is missing; deploy it again.")
    manifest["model_file"] = rel
    manifest["signature"] = signature
    return manifest
