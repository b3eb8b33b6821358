"""The module API: the one way blase's modules reach the current run.

Every module (Extract ... Evaluate, and the Deploy/Monitor/Update to come) records its work through these
functions and nothing else: never through trackers, step contexts or the store's connection. Where the work is
recorded:

- inside ``blase step NAME`` (and ``python main.py --step NAME`` with ``@step``): the running step;
- in a project script without ``blase step`` (seed 000's own ``main()``): the script's step execution, begun
  by the first call here (``core/script_step.py``);
- in a process that opened a run with ``Track`` outside any project script: that run;
- anywhere else (a notebook outside a project): nowhere; every call is a no-op or returns None, so the
  modules work there too.

=========================  ===============================================================================
what                       functions
=========================  ===============================================================================
the step                   ``step()``, ``active()``, ``log()``, ``memory_budget()``, ``resume_requested()``,
                           ``at_end()``, ``executor()``, ``is_internal()``
params of module calls     ``params(method, **values)``
inputs and outputs         ``dataset(path, role=...)``, ``files_hash()``
metrics, tags, artifacts   ``metrics()``, ``tags()``, ``artifact()``, ``artifact_dir()``, ``step_folder()``,
                           ``scratch_dir()``, ``cache_dir()``
progress, bad records      ``progress()``, ``bad_record()``, ``all_bad()``
exclusion sets             ``save_exclusions()``, ``load_exclusions()``
models                     ``log_model()``, ``register_model()``, ``run_models()``, ``last_checkpoint()``, ``training_inputs()``
previous results           ``previous_metrics()``
=========================  ===============================================================================
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blase_tui.core import script_step
from blase_tui.core.context import Progress
from blase_tui.errors import BlaseError

if TYPE_CHECKING:
    from blase_tui.core.context import StepContext
    from blase_tui.core.tracker import RunTracker
    from blase_tui.modules.batch import BadRecord
    from blase_tui.store.records import ModelVersion, ModelVersionDetail, SavedModel
    from blase_tui.store.runstore import RunStore

_CALL_PARAMS: dict[int, dict[str, str]] = {}  # step execution -> param key -> JSON of its value


# ----------------------------------------------------------------- the step
def step() -> StepContext | None:
    """The running step's context; in a project script, its step execution begins here."""
    return script_step.recording_step()  # type: ignore[no-any-return]


def _tracker() -> RunTracker | None:
    return script_step.recording_tracker()  # type: ignore[no-any-return]


def active() -> bool:
    """Whether module calls are recorded anywhere."""
    return _tracker() is not None


def _store() -> RunStore | None:
    tracker = _tracker()
    return tracker.store if tracker is not None else None


def store() -> RunStore | None:
    """The store module calls record into (None outside a step or run)."""
    return _store()


def remember_files(directory: Path, files: list[dict[str, Any]]) -> None:
    """Files a writer has just hashed (``{"name", "hash"}`` under ``directory``) go into the store's hash cache,
    so readers of them (and the writer's own dataset record) do not read them again."""
    from blase_tui.store.filehash import remember

    rows = []
    for f in files:
        path = (directory / f["name"]).resolve()
        try:
            st = path.stat()
        except OSError:  # removed meanwhile: nothing to remember
            continue
        rows.append((str(path), st.st_size, st.st_mtime_ns, f["hash"]))
    remember(_store(), rows)


def log(message: str, *args: Any) -> None:
    """A line in the step's log (and on the terminal); nothing outside a step."""
    ctx = step()
    if ctx is not None:
        ctx.log.info(message, *args)


def say(message: str, *args: Any) -> None:
    """A line the user must see: the step's log inside a step, else standard error."""
    ctx = step()
    if ctx is not None:
        ctx.log.info(message, *args)
    else:
        import sys

        print("blase: " + (message % args if args else message), file=sys.stderr)


def memory_budget() -> int:
    """The running step's memory budget (``[steps.NAME]``, else ``[project]`` of ``blase.toml``); outside a step
    (a notebook, ``python -c``), the project's that the working directory is in, so that the same call batches
    the same in both; else the one default (``core.config.DEFAULT_MEMORY_BUDGET``, docs/concepts.md)."""
    ctx = step()
    if ctx is not None:
        return int(ctx.memory_budget)
    from blase_tui.core.config import DEFAULT_MEMORY_BUDGET, find_project_root, load_config

    root = find_project_root()
    return load_config(root).memory_budget if root is not None else DEFAULT_MEMORY_BUDGET


def at_end(fn: Callable[[], Any], *, first: bool = False) -> bool:
    """Call ``fn`` when the running step ends (its files in ``artifact_dir`` still become artifacts); ``first``:
    before what was asked earlier (the executor's close). False outside a step."""
    ctx = step()
    if ctx is None:
        return False
    ctx.at_end(fn, first=first)
    return True


def executor() -> Any:
    """The executor the running step's data work runs on (``blase step --executor dask``, else ``[executor]
    name``; a plugin's, docs/scaling.md), started on first use and closed when the step ends; None: this
    process (outside a step, or none asked for)."""
    ctx = step()
    if ctx is None:
        return None
    if ctx.executor is not None:
        return ctx.executor
    settings = {**ctx.project.config.executor, **ctx.executor_request}
    name = settings.pop("name", None)
    if not name or name in ("local", "none"):
        return None
    from blase_tui.core import plugins

    factory = plugins.load("executors", name, what=f"executor {name!r}")
    ctx.executor = factory(settings, memory_budget=ctx.memory_budget)
    ctx.at_end(ctx.executor.close)
    say("%s executor: %s", name, ctx.executor.describe())
    return ctx.executor


def resume_requested() -> bool:
    """``blase step NAME --resume``."""
    ctx = step()
    return bool(ctx is not None and ctx.resume)


# ------------------------------------------------------------------ params
def _plain(value: Any) -> Any:
    """A param value as JSON-able data: paths as strings, functions by name, objects by their class."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Path):
        return value.as_posix()
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()  # numpy scalars
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if callable(value) and hasattr(value, "__qualname__") and not isinstance(value, type):
        if value.__name__ == "<lambda>" and (text := _lambda_text(value)):
            return text  # `lambda b: filter_bad_images(b, min_ink)` says what it does; `main.clean.<locals>.<lambda>` not
        module = getattr(value, "__module__", None) or ""
        return f"{module}.{value.__qualname__}" if module not in ("", "__main__", "builtins") else value.__qualname__
    kind = type(value)
    return f"{kind.__module__.split('.')[0]}.{kind.__qualname__}"


def _lambda_text(fn: Any) -> str | None:
    """A lambda's own source text (``lambda b: b["ink"] > 0.2``, one line), or None when it cannot be found
    (no source file, two lambdas alike on one line, a statement that does not parse on its own)."""
    import ast
    import inspect
    import textwrap

    try:
        lines, first = inspect.getsourcelines(fn)
        text = textwrap.dedent("".join(lines))
        tree = ast.parse(text)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    code = fn.__code__
    args = list(code.co_varnames[:code.co_argcount + code.co_kwonlyargcount])
    line = code.co_firstlineno - max(first, 1) + 1
    found = {" ".join((ast.get_source_segment(text, node) or "").split())
             for node in ast.walk(tree)
             if isinstance(node, ast.Lambda) and node.lineno == line
             and [a.arg for a in (*node.args.args, *node.args.kwonlyargs)] == args}
    return found.pop() if len(found) == 1 and "" not in found else None


_INTERNAL = [0]  # > 0 while a module calls another for its own purposes


@contextmanager
def internal() -> Iterator[None]:
    """``with recording.internal():`` around a module's own use of another module (Prepare writing its
    splits with Load): those calls' arguments are not the user's, so they are not recorded as params."""
    _INTERNAL[0] += 1
    try:
        yield
    finally:
        _INTERNAL[0] -= 1


def is_internal() -> bool:
    """True inside ``internal()``: a module's own use of another module."""
    return bool(_INTERNAL[0])


def params(method: str, /, **values: Any) -> None:
    """Record the arguments a module method was given as params of the step execution
    (``train(epochs=10)`` -> ``epochs = 10``). A key another call of the same execution already set to
    another value is kept as ``method.key``, so neither hides the other."""
    if _INTERNAL[0]:
        return
    tracker = _tracker()
    if tracker is None:
        return
    from blase_tui.store.hashing import canonical_json

    seen = _CALL_PARAMS.setdefault(tracker.step_run_id or id(tracker), {})
    out: dict[str, Any] = {}
    for key, value in values.items():
        plain = _plain(value)
        text = canonical_json(plain)
        qualified = key if key.startswith(method + ".") else f"{method}.{key}"
        name = key if seen.get(key, text) == text else qualified
        if seen.get(name) == text:
            continue  # already recorded (a method called once per batch writes once)
        seen[name] = text
        out[name] = plain
    if out:
        tracker.log_params(out)


# ---------------------------------------------------------- inputs, outputs
def progress(stage: str, total: int | None, unit: str = "records") -> Progress:
    ctx = step()
    return Progress(ctx.events if ctx is not None else None, stage, total, unit)


def bad_record(bad: BadRecord) -> None:
    """Add a skipped record to the step report (``bad_records.jsonl`` in the step folder) and the events."""
    ctx = step()
    if ctx is None:
        return
    with open(ctx.folder / "bad_records.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(bad.as_dict()) + "\n")
    ctx.events.emit("bad_record", **bad.as_dict())


def all_bad(what: str, count: int, first: BadRecord) -> None:
    """Say in one line that every record of ``what`` (``load_csv data/x.csv``) was bad: a warning in the step's
    log (and on the terminal), else on standard error. A file read as nothing must not pass for an empty one
    while its records pile up, unseen, in ``bad_records.jsonl``."""
    why = first.reason if len(first.reason) <= 160 else first.reason[:157] + "..."
    if count == 1:
        message = f"{what}: its only record was bad ({first.record} — {why})"
    else:
        message = f"{what}: all {count} records were bad (first: {first.record} — {why})"
    ctx = step()
    if ctx is None:
        import sys

        print(f"blase: {message}; Extract().bad_records lists them", file=sys.stderr)
        return
    listed = ctx.folder / "bad_records.jsonl"
    if listed.is_relative_to(ctx.project.root):
        listed = listed.relative_to(ctx.project.root)
    ctx.log.warning("%s; see %s", message, listed)


def files_hash(files: Iterable[Path], root: Path | None = None) -> tuple[str, int, int]:
    """Content hash of a set of files, cached in the current project's store when there is one."""
    from blase_tui.store.filehash import files_hash as store_files_hash

    return store_files_hash(_store(), files, root)


def dataset(path: Path | str, *, role: str, records: int | None = None, digest: str | None = None,
            name: str | None = None) -> str | None:
    """Record a file or folder the step read (``role="input"``) or wrote (``"output"``); returns its hash: the
    whole file or folder's (``filehash.dataset_hash``), unless the writer gives it (``digest``)."""
    tracker = _tracker()
    if tracker is None:
        return None
    from blase_tui.store import remote

    if remote.is_url(str(path)):  # a URL (a reader's RemoteRoot): hashed by its objects' ETags or versions
        return tracker.log_dataset(str(path), role=role, name=name, digest=digest, records=records)
    path = Path(path)
    if digest is None:
        from blase_tui.store.filehash import dataset_hash

        # the whole file or folder, not only the files this reader picked: one hash per dataset, whoever reads
        # or writes it, so the reader's record matches the writer's (lineage) and any change is seen (reuse)
        digest = dataset_hash(tracker.store, path)
    return tracker.log_dataset(path, role=role, name=name, digest=digest, records=records)


# ------------------------------------------------------- metrics, artifacts
def metrics(values: dict[str, float], iteration: int | None = None) -> None:
    tracker = _tracker()
    if tracker is not None:
        tracker.log_metrics(values, iteration)


def tags(values: dict[str, Any]) -> None:
    """Tags of the run being recorded."""
    tracker = _tracker()
    if tracker is not None:
        tracker.set_tags(values)


def step_folder() -> Path | None:
    """The folder of the step execution being recorded (of the run, for a ``Track`` run); None outside."""
    tracker = _tracker()
    return tracker.folder if tracker is not None else None


def artifact(path: Path | str, name: str | None = None) -> list[tuple[str, str, int]]:
    """Keep a file or folder with the step (in the content store); returns ``(name, hash, size)`` items."""
    tracker = _tracker()
    return tracker.log_artifact(path, name) if tracker is not None else []


def artifact_dir() -> Path | None:
    """The step's ``artifacts/`` folder (files written there are kept when the step ends); None outside."""
    ctx = step()
    return ctx.artifact_dir if ctx is not None else None


def scratch_dir(name: str, prefix: str = "blase-") -> Path:
    """A folder of the step for files it keeps (``checkpoints``); outside any run a temporary folder."""
    tracker = _tracker()
    if tracker is not None:
        path = tracker.folder / name
    else:
        path = Path(tempfile.mkdtemp(prefix=prefix))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(name: str) -> Path:
    """A folder of the project's cache (``.blase/cache/<name>``) for data blase derives and can derive again;
    outside any project a temporary folder."""
    store = _store()
    if store is None:
        try:
            from blase_tui.core.project import Project

            store = Project.discover().store
        except Exception:  # noqa: BLE001 - no project (or an unreadable one): a temporary cache will do
            return Path(tempfile.mkdtemp(prefix=f"blase-{name}-"))
    path = store.root / ".blase" / "cache" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def where() -> dict[str, Any]:
    """The run and step execution being recorded (for model cards): ``run_id``, ``step_run_id``."""
    tracker = _tracker()
    if tracker is None:
        return {"run_id": None, "step_run_id": None}
    return {"run_id": tracker.run_id, "step_run_id": tracker.step_run_id}


# ---------------------------------------------------------- exclusion sets
def _project_store() -> RunStore:
    """The current run's store, else the store of the project the working directory belongs to."""
    store = _store()
    if store is not None:
        return store
    from blase_tui.core.project import Project

    return Project.discover().store


def save_exclusions(name: str, reasons: dict[str, str]) -> str:
    """Save an exclusion set as the next version of ``name`` in the project (also outside any run);
    returns ``name_vN``."""
    from blase_tui.store import exclusions

    tracker = _tracker()
    saved = exclusions.save(_project_store(), name, reasons, run_id=tracker.run_id if tracker else None,
                            step_run_id=(tracker.step_run_id or None) if tracker else None)
    if tracker is not None:
        tracker.log_exclusion_set(saved, saved, exclusions.content_hash(reasons), role="output", records=len(reasons))
    return saved


def project_labels() -> dict[str, str]:
    """The project's current labels (``blase label``): record key -> label."""
    from blase_tui.store import labels

    return {label.key: label.label for label in labels.current_labels(_project_store()) if label.label is not None}


def load_exclusions(ref: str) -> dict[str, str]:
    """The keys and reasons of exclusion set ``ref`` (``cleaned_v1``, or ``cleaned`` for the newest)."""
    from blase_tui.store import exclusions

    resolved, reasons = exclusions.resolve(_project_store(), ref)
    tracker = _tracker()
    if tracker is not None:  # an input of the step: a new version of `cleaned` runs it again
        tracker.log_exclusion_set(ref, resolved, exclusions.content_hash(reasons), role="input", records=len(reasons))
    return reasons


# ------------------------------------------------------------------ models
def register_model(name: str, path: Path, card_path: Path, *, framework: str, metrics: dict[str, Any],
                   record_output: bool = True) -> str | None:
    """Keep a saved model and its card with the step and register them as the next version of ``name``;
    returns ``"name vN"`` (None outside any run). ``record_output``: the file is one of the step's outputs
    (False for a model saved to a temporary file, kept only in the content store)."""
    from blase_tui.models import registry

    return registry.register(_tracker(), name, path, card_path, framework=framework, metrics=metrics,
                             record_output=record_output)


def log_model(model: Any, name: str, *, framework: str | None = None, input_example: Any = None,
              metrics: dict[str, Any] | None = None, task: str = "classification", imported: bool = False,
              trusted: bool = True, known: dict[str, Any] | None = None) -> str:
    """Register ``model`` (an object, or a saved model file) as the next version of ``name`` in the current run,
    with its card (``blase_tui.models.registry.log``); returns ``"name vN"``."""
    from blase_tui.models import registry

    return registry.log(_tracker(), model, name, framework=framework, input_example=input_example,
                        metrics=metrics, task=task, imported=imported, trusted=trusted, known=known)


def model_version(ref: str) -> ModelVersionDetail:
    """A registered model version (``name``, ``name:3``, ``name@champion``) with its card and the ``path`` of
    its file in the content store; from the current run's project, else the working directory's."""
    from blase_tui.store import models

    return models.get(_project_store(), ref, intact=True)


def model_versions() -> list[ModelVersion]:
    """Every registered model version (without cards), oldest first."""
    from blase_tui.store import models

    return models.list_models(_project_store())


def set_model_alias(name: str, version: int, alias: str) -> None:
    """Point ``name@alias`` at ``version`` (``Update`` promoting a challenger)."""
    from blase_tui.store import models

    models.set_alias(_project_store(), name, version, alias)


def model_artifact(row: ModelVersion, name: str) -> Path | None:
    """An artifact kept by the step execution that saved model version ``row`` (``priors/features.json``)."""
    from blase_tui.store import models

    return models.step_artifact(_project_store(), row, name)


def evaluated_artifact(row: ModelVersion, name: str) -> Path | None:
    """Artifact ``name`` of the newest evaluation of model version ``row`` (``priors/predictions.json``)."""
    from blase_tui.store import models

    return models.evaluation_artifact(_project_store(), row.name, int(row.version), name)


def registered_version(path: Path) -> tuple[str, int] | None:
    """``(name, version)`` of the registered model whose file has the content of ``path``, else None."""
    from blase_tui.store import models
    from blase_tui.store.hashing import hash_file

    try:
        store = _project_store()
    except BlaseError:  # outside a project
        return None
    found = models.by_file_hash(store, hash_file(path))
    return found


def launch_step(name: str) -> Any:
    """Start ``blase step NAME`` of the current project as a child process, as the TUI's Launch does (the step
    takes its own lock); returns the launched step (``core.launch.LaunchedStep``)."""
    from blase_tui.core.launch import LaunchedStep

    return LaunchedStep(project_root(), name).start()


def project_config_section(name: str, default: Any = None) -> Any:
    """A section of the project's blase.toml (``monitor``), checked when the project was loaded: the running
    step's (already read), else the working directory's project's."""
    ctx = step()
    if ctx is not None:
        return getattr(ctx.project.config, name, default)
    from blase_tui.core.config import load_config

    return getattr(load_config(_project_store().root), name, default)


def project_root() -> Path:
    """The root of the current run's project, else of the project the working directory belongs to."""
    return _project_store().root


def run_models() -> list[SavedModel]:
    """The model versions saved in the current run so far, newest first, each with ``path`` (where the step
    wrote it, when that file still holds the same content) and ``name``, ``version``, ``step``."""
    tracker = _tracker()
    if tracker is None:
        return []
    from blase_tui.store import models

    return models.in_run(tracker.store, tracker.run_id)


def last_checkpoint(file_name: str) -> Path | None:
    """``checkpoints/<file_name>`` of the newest earlier execution of the running step that left a checkpoint
    (``--resume``): the one whose params the engine compared with this execution's (``core/resume.py``)."""
    ctx = step()
    if ctx is None:
        return None
    from blase_tui.core.resume import checkpointed

    source = checkpointed(ctx.tracker.store, ctx.step, ctx.step_run_id)
    path = source.folder / file_name if source is not None else None
    return path if path is not None and path.exists() else None


def training_inputs(run_id: str, step_run_id: int | None) -> list[Path]:
    """The folders the execution that trained a model read (to check a test split against them)."""
    from blase_tui.store.exclusions import is_exclusion_set

    store = _store() or _project_store()
    from blase_tui.store.remote import is_url

    return [store.root / d.path for d in store.step_datasets(run_id, step_run_id or 0, role="input")
            if d.path and not is_exclusion_set(d.path) and not is_url(d.path)]


def previous_metrics(keys: list[str]) -> dict[str, Any] | None:
    """The same metrics of the previous succeeded execution of the running step: ``{"run_id", "metrics"}``."""
    ctx = step()
    if ctx is None or not keys:
        return None
    store = ctx.tracker.store
    rows = store.previous_step_runs(ctx.step, ctx.step_run_id, status="succeeded")
    if not rows:
        return None
    return {"run_id": rows[0].run_id, "metrics": store.step_metrics(rows[0].id, keys)}
