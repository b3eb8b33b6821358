"""MLflow runs -> blase runs: params, every metric's full history (steps and timestamps), tags, run name,
status, start and end times, and artifacts, so that ``blase runs find --name/--param``, ``runs show``,
``runs diff`` and the TUI handle them. A run imported before (tag ``mlflow.run_id``) is not imported again;
runs that blase exported there (tag ``blase.run_id`` of this project) are not brought back.

What a tracking server says is untrusted, as a run folder is: a step name must be one plain folder name (else the
execution is named ``step``), names and values are kept with their control characters escaped (a newline in a run
name must not fake a line in ``runs show``), and artifacts are copied file by file, each name checked by the one
guard (``blase_tui.store.safepath``) and every symbolic link left out, never followed out of the run's artifact
folder."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blase_mlflow.export import client_for

STATUS = {"FINISHED": "succeeded", "FAILED": "failed", "KILLED": "interrupted", "RUNNING": "running",
          "SCHEDULED": "running"}
STEP_STATUSES = ("succeeded", "failed", "interrupted", "skipped")


@dataclass
class Imported:
    mlflow_run_id: str
    run_id: str | None
    action: str  # "imported", "already imported", "exported from here"
    left_out: tuple[str, ...] = ()  # artifacts not copied: symbolic links, names the guard refuses


def import_runs(store: Any, *, tracking_uri: str, experiment: str, with_artifacts: bool = True) -> list[Imported]:
    from blase_tui.plugin import BlaseError

    client = client_for(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = [e.name for e in client.search_experiments(max_results=20)]
        raise BlaseError(f"MLflow at {tracking_uri} has no experiment {experiment!r}; it has"
                         f" {', '.join(map(repr, names)) or 'none'}.")
    done = {v: k for k, v in _imported(store).items()}
    ours = set(store.run_ids())
    runs, token = [], None
    while True:
        page = client.search_runs([found.experiment_id], max_results=500, page_token=token,
                                  order_by=["attributes.start_time ASC"])
        runs.extend(page)
        token = page.token
        if not token:
            break
    # runs another blase project exported: a parent per blase run, a child per step execution. The children
    # come back as the steps of their parent's run, not as runs of their own (that doubled every run)
    ids = {run.info.run_id for run in runs}
    steps_of: dict[str, list[Any]] = {}
    for run in runs:
        parent = run.data.tags.get("mlflow.parentRunId")
        if run.data.tags.get("blase.kind") == "step" and parent in ids:
            steps_of.setdefault(parent, []).append(run)
    with_parent = {child.info.run_id for children in steps_of.values() for child in children}
    out = []
    for run in runs:
        rid = run.info.run_id
        if rid in with_parent:
            continue  # comes with its parent, below
        children = steps_of.get(rid, [])
        left_out: list[str] = []
        if rid in done:
            action, run_id = "already imported", done[rid]
        elif run.data.tags.get("blase.run_id") in ours:
            action, run_id = "exported from here", run.data.tags["blase.run_id"]
        else:
            action = "imported"
            run_id = _import_run(client, store, run, tracking_uri, experiment, with_artifacts, children, left_out)
        out.append(Imported(rid, run_id, action, tuple(left_out)))
        out.extend(Imported(child.info.run_id, run_id, f"{action} (a step of {run_id})") for child in children)
    return out


def _imported(store: Any) -> dict[str, str]:
    """blase run id -> MLflow run id of the runs imported before."""
    from blase_tui.plugin import tag_values

    return tag_values(store, "mlflow.run_id")


def _value(text: str) -> Any:
    """An MLflow param (always text) as blase keeps params: numbers and JSON as such, the rest as text (control
    characters escaped)."""
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    return _text(value) if isinstance(value, str) else value


def _text(value: Any) -> str:
    """``value`` as text that prints as one line: each control or invisible formatting character (a newline, an
    escape sequence, a right-to-left override) written as its escape, ``\\n``, ``\\x1b``, ``\\u202e``."""
    text = str(value)
    return text if text.isprintable() else "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _step_name(name: Any) -> str:
    """A step's name from MLflow (a tag, a run name) as blase names its folder: one plain, printable name, or
    ``step`` when it is not one."""
    from blase_tui.plugin import UnsafePath, relative_name

    try:
        plain = relative_name(name, what="step name")
    except UnsafePath:
        return "step"
    return plain if "/" not in plain else "step"


def _import_run(client: Any, store: Any, run: Any, tracking_uri: str, experiment: str, with_artifacts: bool,
                children: Sequence[Any] = (), left_out: list[str] | None = None) -> str:
    info, data = run.info, run.data
    tags = {_text(k): _text(v) for k, v in data.tags.items() if not k.startswith("mlflow.log-model")}
    tags.update({"mlflow.run_id": _text(info.run_id), "mlflow.experiment": _text(experiment),
                 "mlflow.tracking_uri": _text(tracking_uri)})
    name = info.run_name or data.tags.get("mlflow.runName")
    started = (info.start_time or 0) / 1000
    run_id = store.create_run(name=None if name is None else _text(name), tags=tags,
                              params={_text(k): _value(v) for k, v in data.params.items()}, started=started)
    left_out = [] if left_out is None else left_out
    left_out += _metrics_and_artifacts(client, store, info, data, run_id, 0, store.run_dir(run_id) / "artifacts",
                                       with_artifacts)
    for child in sorted(children, key=lambda c: (c.info.start_time or 0)):
        cinfo, cdata = child.info, child.data
        # the step's name names its folder inside the run's: one plain name, whatever the server says
        step = _step_name(cdata.tags.get("blase.step") or cinfo.run_name or "step")
        step_run_id, folder = store.begin_step(run_id, step, pid=0, pid_started=None,
                                               started=(cinfo.start_time or info.start_time or 0) / 1000)
        store.log_params(run_id, {_text(k): _value(v) for k, v in cdata.params.items()}, step_run_id)
        left_out += [f"{folder.name}/{name}" for name in _metrics_and_artifacts(
            client, store, cinfo, cdata, run_id, step_run_id, folder / "artifacts", with_artifacts)]
        cstatus = cdata.tags.get("blase.step_status")
        if cstatus not in STEP_STATUSES:
            cstatus = STATUS.get(cinfo.status, "succeeded")
        store.finish_step(step_run_id, cstatus, exit_code=0 if cstatus == "succeeded" else 1,
                          ended=(cinfo.end_time or cinfo.start_time or 0) / 1000)
    status = STATUS.get(info.status, "succeeded")
    if status != "running":
        store.close_run(run_id, status, ended=(info.end_time or info.start_time or 0) / 1000)
    store.write_run_json(run_id)
    return run_id


def _metrics_and_artifacts(client: Any, store: Any, info: Any, data: Any, run_id: str, step_run_id: int,
                           folder: Path, with_artifacts: bool) -> list[str]:
    """An MLflow run's metric histories and artifacts, into blase run ``run_id`` (its step ``step_run_id``, or
    the run itself for 0), the artifacts under ``folder``; returns the artifacts left out (``_copy_tree``)."""
    rows = []
    for key in data.metrics:
        for m in client.get_metric_history(info.run_id, key):
            rows.append((run_id, step_run_id, _text(key), float(m.value), int(m.step), m.timestamp / 1000))
    rows.sort(key=lambda r: (r[5], r[4]))
    store.log_metrics(rows)
    if not with_artifacts:
        return []
    import mlflow.artifacts as mlflow_artifacts

    from blase_tui.plugin import UnsafePath, inside

    left_out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="blase-mlflow-") as tmp:
        local: Path | None = Path(tmp) / "run"
        try:
            left_out += _download(info.artifact_uri, local,
                                  lambda: client.download_artifacts(info.run_id, "", str(local)))
        except Exception:  # a run without artifacts, or an artifact store out of reach: the rest still counts
            local = None
        for model in _logged_models(client, info):  # MLflow 3 keeps logged models apart from run artifacts
            try:  # a model's name comes from the server: the one guard checks it before it names a folder
                where = inside(Path(tmp) / "run" / "models", model.name,
                               what=f"model name of MLflow run {info.run_id}")
            except UnsafePath:
                left_out.append(f"models/{_text(model.name)}")
                continue

            def fetch(uri: str = model.artifact_location, dst: Path = where) -> None:
                mlflow_artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst))

            try:
                left_out += [f"models/{where.name}/{name}" for name in _download(model.artifact_location, where, fetch)]
            except Exception:  # an artifact store out of reach: the run still comes
                continue
            local = Path(tmp) / "run"
        if local is not None and local.is_dir() and any(local.iterdir()):
            left_out += _copy_tree(local, folder)
            items, _ = store.cas.ingest_tree(folder)
            store.add_artifacts(run_id, step_run_id, items)
    return left_out


def _local_path(uri: str | None) -> Path | None:
    """The folder an artifact URI names on this machine (a plain path or ``file:``), None for any other store."""
    from urllib.parse import unquote, urlparse

    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # a path (or a drive letter)
        return Path(uri)
    return None


def _download(uri: str | None, target: Path, fetch: Any) -> list[str]:
    """The artifacts at ``uri`` into ``target``: a folder on this machine copied by ``_copy_tree`` (MLflow's own
    copy follows symbolic links out of it), any other store by ``fetch`` (MLflow's download); returns what
    was left out."""
    source = _local_path(uri)
    if source is None:
        target.mkdir(parents=True, exist_ok=True)
        fetch()
    elif source.is_dir() and not source.is_symlink():
        return _copy_tree(source, target)
    return []


def _copy_tree(source: Path, target: Path) -> list[str]:
    """Every regular file under ``source`` to the same name under ``target``; returns what was left out: each
    symbolic link (never followed, so nothing outside ``source`` is read) and each name the one guard refuses
    (a control character, ``..``), neither of which ever names a path under ``target``."""
    from blase_tui.plugin import UnsafePath, inside

    left_out = []
    target.mkdir(parents=True, exist_ok=True)
    for top, dirs, names in os.walk(source):  # links to folders are listed in dirs, never walked into
        here = Path(top)
        for name in sorted(dirs + names):
            path = here / name
            rel = path.relative_to(source).as_posix()
            if path.is_symlink() or name in names and not path.is_file():
                left_out.append(_text(rel))
                if name in dirs:
                    dirs.remove(name)
                continue
            try:
                dest = inside(target, rel, what="artifact name")
            except UnsafePath:
                left_out.append(_text(rel))
                if name in dirs:
                    dirs.remove(name)
                continue
            if name in dirs:
                dest.mkdir(parents=True, exist_ok=True)
                continue
            try:  # O_NOFOLLOW: a file swapped for a link since it was looked at is refused, not followed
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            except OSError:
                left_out.append(_text(rel))
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(fd, "rb") as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return left_out


def _logged_models(client: Any, info: Any) -> list[Any]:
    """The models logged from run ``info`` (MLflow 3's LoggedModel entities); none with an older server."""
    try:
        return list(client.search_logged_models([info.experiment_id],
                                                filter_string=f"source_run_id = '{info.run_id}'"))
    except Exception:
        return []


# ------------------------------------------------------------------------------------------ registered models
@dataclass
class ImportedModel:
    mlflow_name: str
    mlflow_version: str
    blase: str | None  # "name vN", None when it was left out
    action: str  # "registered", "already here", "left out: <why>"
    aliases: tuple[str, ...] = ()


def import_models(store: Any, *, tracking_uri: str, runs: dict[str, str], trust: bool = False) -> list[ImportedModel]:
    """The registered model versions of MLflow whose run came into this project (``runs``: MLflow run id ->
    blase run id) become versions of blase's registry, with their aliases, so that ``blase serve NAME@ALIAS``
    and ``models.load`` find them. The model file is what the version's logged model holds (blase's own
    flavour, ``mlflow.sklearn`` or ``mlflow.pytorch``); its card says where it came from, the columns of its
    MLflow signature and its framework. Imported once: a version already brought in is left as it is. A model
    whose file runs code when loaded (a pickle: MLflow's default for scikit-learn) becomes this project's own
    only with ``trust`` (``--trust``); without it, it is left out and the line says why."""
    import mlflow

    client = client_for(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    out: list[ImportedModel] = []
    for registered in client.search_registered_models():
        by_version: dict[str, str] = {}  # MLflow version -> blase "name vN"
        for mv in client.search_model_versions(f"name = '{registered.name}'"):
            if mv.run_id not in runs:
                continue
            done = _import_version(store, registered.name, mv, runs[mv.run_id], trust)
            out.append(done)
            if done.blase is not None:
                by_version[str(mv.version)] = done.blase
        for alias, version in (getattr(registered, "aliases", None) or {}).items():
            saved = by_version.get(str(version))
            if saved is None or not _plain(alias):
                continue
            from blase_tui.plugin import registry as models

            name, _, number = saved.partition(" v")
            models.set_alias(store, name, int(number), alias)
            for item in out:
                if item.blase == saved:
                    item.aliases += (alias,)
    return out


def _plain(name: str) -> bool:
    """A name blase can keep as a model name or alias: one plain, printable name (the one guard's rule)."""
    from blase_tui.plugin import UnsafePath, relative_name

    try:
        return "/" not in relative_name(name, what="model name")
    except UnsafePath:
        return False


def _import_version(store: Any, name: str, mv: Any, run_id: str, trust: bool) -> ImportedModel:
    from blase_tui.plugin import describe_format as describe
    from blase_tui.plugin import registry as models

    source = f"mlflow:{name}/{mv.version}"
    from blase_tui.plugin import ConfigError

    try:
        models.check_name(name)
    except ConfigError:
        return ImportedModel(_text(name), str(mv.version), None,
                             "left out: its name is not one plain name (no '/', ':' or '@')")
    for known in models.list_models(store):
        if known.name == name and (models.get(store, f"{name}:{known.version}").card or {}).get("mlflow") == source:
            return ImportedModel(name, str(mv.version), f"{name} v{known.version}", "already here")
    with tempfile.TemporaryDirectory(prefix="blase-mlflow-model-") as tmp:
        folder = Path(tmp) / "model"

        def fetch(uri: str = mv.source, dst: Path = folder) -> None:
            import mlflow.artifacts as mlflow_artifacts

            mlflow_artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst))

        try:
            _download(_artifact_location(mv.source), folder, fetch)
        except Exception as exc:  # an artifact store out of reach: the run came, this version did not
            return ImportedModel(name, str(mv.version), None, f"left out: {type(exc).__name__}: {_text(exc)[:120]}")
        found = _model_file(folder)
        if found is None:
            return ImportedModel(name, str(mv.version), None, "left out: no model file blase reads in it"
                                 " (blase's flavour, mlflow.sklearn or mlflow.pytorch)")
        path, framework, card = found
        fmt = describe(path, framework)
        if fmt.runs_code and not trust:
            return ImportedModel(name, str(mv.version), None, f"left out: {path.name} is {fmt.note}, whose loading"
                                 " runs code from the file; import with --trust if you trust this MLflow store")
        card.update({"mlflow": source, "imported_from": f"MLflow {name} version {mv.version}"})
        file_hash, _ = store.cas.put_file(path)
        card_hash = store.cas.put_bytes(json.dumps(card, indent=1, default=str).encode())
        version = models.register(store, name, run_id=run_id, step_run_id=0, framework=framework,
                                  file_hash=file_hash, card_hash=card_hash, file_name=path.name,
                                  metrics=card.get("metrics") or {})
    return ImportedModel(name, str(mv.version), f"{name} v{version}", "registered")


def _artifact_location(source: str) -> str | None:
    """Where a model version's files are on this machine: a logged model's artifact location (MLflow 3's
    ``models:/m-...``), else the source itself."""
    if source.startswith("models:/m-"):
        import mlflow

        try:
            return str(mlflow.get_logged_model(source.split("/", 1)[1]).artifact_location)
        except Exception:  # noqa: BLE001 - MLflow's download finds it
            return None
    return source


def _model_file(folder: Path) -> tuple[Path, str, dict[str, Any]] | None:
    """The model file in a logged model's folder, its framework and a card from what the folder says (its
    MLmodel: flavours and signature)."""
    import yaml

    try:
        mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(mlmodel, dict):
        return None
    flavours = mlmodel.get("flavors") or {}
    card: dict[str, Any] = {"task": "classification"}
    info = folder / "artifacts" / "blase_model.json"
    if "python_function" in flavours and info.is_file():  # blase's own flavour: the file and card it exported
        blase = json.loads(info.read_text())
        card.update(blase.get("card") or {})
        files = [p for p in (folder / "artifacts").iterdir() if p.name != "blase_model.json" and p.is_file()]
        return (files[0], str(blase.get("framework")), card) if len(files) == 1 else None
    card.update(_signature_card(mlmodel.get("signature")))
    if "sklearn" in flavours:
        path = folder / str(flavours["sklearn"].get("pickled_model", "model.pkl"))
        if flavours["sklearn"].get("serialization_format") == "skops" and path.suffix != ".skops":
            named = path.with_suffix(".skops")
            path.rename(named)
            path = named
        return (path, "sklearn", card) if path.is_file() else None
    if "pytorch" in flavours:
        path = folder / str(flavours["pytorch"].get("model_data", "data")) / "model.pth"
        return (path, "torch", card) if path.is_file() else None
    return None


def _signature_card(signature: Any) -> dict[str, Any]:
    """The card fields an MLflow signature gives: the column names, or a tensor's shape and dtype."""
    if not isinstance(signature, dict) or not signature.get("inputs"):
        return {}
    try:
        inputs = json.loads(signature["inputs"])
    except (TypeError, ValueError):
        return {}
    if inputs and all(isinstance(c, dict) and c.get("name") for c in inputs):
        return {"feature_names": [_text(c["name"]) for c in inputs]}
    spec = inputs[0].get("tensor-spec") if inputs and isinstance(inputs[0], dict) else None
    if isinstance(spec, dict) and isinstance(spec.get("shape"), list):
        return {"input": {"shape": [int(d) for d in spec["shape"][1:]], "dtype": str(spec.get("dtype", "float32"))}}
    return {}
