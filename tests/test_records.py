"""The store's typed records: run.json and `runs show --json` keep their exact shape, a description reads back
from its JSON unchanged, records cannot be changed in place, and callers outside the store never index one by a
column name."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REPO

from blase_tui.store import procs
from blase_tui.store.records import Artifact, Dataset, RunDescription, StepRun
from blase_tui.store.runstore import CODE_IMPORTED, CODE_LOADED, RunStore

T0 = 1_800_000_000.25


def _recorded(root: Path) -> tuple[RunStore, str, int, int]:
    """A store with one run holding every kind of record: run-level params, tags, metrics, artifacts and
    datasets, git and environment, and two step executions, the second reusing the first."""
    store = RunStore(root)
    run_id = store.create_run(name="full", explicit=True, owner_pid=4321, owner_started=T0 - 1,
                              tags={"team": "vision"}, params={"lr": 0.1, "layers": [2, 3]}, started=T0)
    assert run_id is not None
    git = SimpleNamespace(commit="c0ffee", dirty=True, patch="diff\n")
    store.record_environment(run_id, {"python": "3.12"}, git)
    store.log_metrics([(run_id, 0, "outside", 1.5, None, T0 + 1)])
    store.add_artifacts(run_id, 0, [("code/main.py", "a" * 64, 10)])
    store.add_dataset(run_id, 0, role="input", name="raw", path="data/raw", digest="xxh3:1", fingerprint="f1",
                      records=3, size=30)
    first, _ = store.begin_step(run_id, "train", pid=1234, pid_started=T0 + 1.5, started=T0 + 2)
    store.set_step_signature(first, SimpleNamespace(code_hash="ch", func_hash="fh", params_hash="ph",
                                                    env_hash="eh"), "digest", SimpleNamespace(commit="c0ffee",
                                                                                              patch_hash="p1"))
    store.set_step_code(first, {"main.py::train": "h1"})
    store.set_step_code(first, {"helpers.py": "h2"}, how=CODE_IMPORTED)
    store.set_step_code(first, {"loaded.py": "h3"}, how=CODE_LOADED)
    store.log_params(run_id, {"epochs": 3, "opt": {"name": "adam"}}, first)
    store.log_metrics([(run_id, first, "loss", 0.5, 0, T0 + 3), (run_id, first, "loss", 0.25, 1, T0 + 4)])
    store.add_artifacts(run_id, first, [("model/m.pt", "b" * 64, 99)])
    store.add_dataset(run_id, first, role="output", name="model", path="models/m.pt", digest="xxh3:2",
                      fingerprint="f2", records=None, size=99)
    store.finish_step(first, "succeeded", exit_code=0, peak_rss=1 << 20, cpu_seconds=0.5, ended=T0 + 5)
    second, _ = store.begin_step(run_id, "train", pid=1235, pid_started=None, started=T0 + 6)
    store.finish_step(second, "failed", exit_code=1, error="boom", skipped_from=first, ended=T0 + 7)
    return store, run_id, first, second


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_run_json_keeps_its_exact_shape(tmp_path: Path) -> None:
    """Every key of run.json, in the order `runs show --json` prints them, with the values as recorded."""
    store, run_id, first, second = _recorded(tmp_path)
    host = procs.hostname()
    step = {
        "id": first, "step": "train", "folder": "train", "status": "succeeded", "started": T0 + 2, "ended": T0 + 5,
        "exit_code": 0, "error": None, "pid": 1234, "host": host, "peak_rss": 1 << 20, "cpu_seconds": 0.5,
        "skipped_from": None, "reused_from_run": None,
        "signature": {"digest": "digest", "code_hash": "ch", "func_hash": "fh", "params_hash": "ph",
                      "env_hash": "eh", "git_commit": "c0ffee", "git_patch_hash": "p1"},
        "code": {"helpers.py": "h2", "main.py::train": "h1"}, "code_imported": ["helpers.py"],
        "code_loaded": {"loaded.py": "h3"}, "params": {"epochs": 3, "opt": {"name": "adam"}},
        "metrics": {"loss": 0.25}, "artifacts": [{"name": "model/m.pt", "hash": "b" * 64, "size": 99}],
        "datasets": [{"role": "output", "name": "model", "path": "models/m.pt", "hash": "xxh3:2",
                      "fingerprint": "f2", "records": None, "bytes": 99}],
    }
    reused = {
        **step, "id": second, "folder": "train-2", "status": "failed", "started": T0 + 6, "ended": T0 + 7,
        "exit_code": 1, "error": "boom", "pid": 1235, "peak_rss": None, "cpu_seconds": None, "skipped_from": first,
        "reused_from_run": run_id,
        "signature": {k: None for k in step["signature"]}, "code": {}, "code_imported": [], "code_loaded": {},
        "params": {}, "metrics": {}, "artifacts": [], "datasets": [],
    }
    expected = {
        "format": 1, "id": run_id, "name": "full", "status": "running", "explicit": True, "started": T0,
        "ended": None, "owner": {"pid": 4321, "host": host, "started": T0 - 1}, "note": None,
        "git": {"commit": "c0ffee", "dirty": True, "patch_hash": _sha(b"diff\n")},
        "env_hash": _sha(json.dumps({"python": "3.12"}, sort_keys=True).encode()),
        "tags": {"team": "vision"}, "params": {"layers": [2, 3], "lr": 0.1}, "metrics": {"outside": 1.5},
        "artifacts": [{"name": "code/main.py", "hash": "a" * 64, "size": 10}],
        "datasets": [{"role": "input", "name": "raw", "path": "data/raw", "hash": "xxh3:1", "fingerprint": "f1",
                      "records": 3, "bytes": 30}],
        "steps": [step, reused],
    }
    desc = store.describe_run(run_id)
    # compared as printed (indent 2, insertion order), so a key moved or renamed shows
    assert json.dumps(desc.to_json(), indent=2) == json.dumps(expected, indent=2)
    store.write_run_json(run_id)
    assert json.loads((store.run_dir(run_id) / "run.json").read_text()) == expected
    store.close()


def test_a_description_reads_back_from_its_json_unchanged(tmp_path: Path) -> None:
    store, run_id, _, _ = _recorded(tmp_path)
    desc = store.describe_run(run_id)
    again = RunDescription.from_json(json.loads(json.dumps(desc.to_json())))
    assert again == desc
    assert again.to_json() == desc.to_json()
    assert isinstance(again.steps, tuple) and isinstance(again.steps[0].artifacts[0], Artifact)
    store.close()


def test_from_json_reads_a_run_json_without_trusting_it() -> None:
    """What reindex relies on: a missing required key is a KeyError naming it, a mapping of the wrong kind a
    TypeError, crafted code fields are dropped, an artifact that is no mapping has no name or hash."""
    base = {"id": "r", "status": "succeeded", "started": 1.0,
            "steps": [{"step": "s", "folder": "s", "status": "succeeded", "code": ["main.py"],
                       "code_imported": "main.py", "artifacts": ["x"]}]}
    desc = RunDescription.from_json(base)
    step = desc.steps[0]
    assert (step.code, step.code_imported, step.id) == ({}, (), None)
    assert step.artifacts == (Artifact(name=None, hash=None, size=None),)  # type: ignore[arg-type]
    assert desc.run.explicit is False and desc.run.git_dirty is None and desc.tags == {}
    with pytest.raises(KeyError, match="status"):
        RunDescription.from_json({"id": "r", "started": 1.0})
    with pytest.raises(TypeError):
        RunDescription.from_json({**base, "tags": [["a", "b"]]})
    with pytest.raises(KeyError, match="role"):
        Dataset.from_json({"name": "x"})


def test_records_cannot_be_changed_in_place(tmp_path: Path) -> None:
    store, run_id, first, _ = _recorded(tmp_path)
    desc = store.describe_run(run_id)
    with pytest.raises(dataclasses.FrozenInstanceError):
        desc.run.status = "succeeded"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        desc.steps[0].status = "failed"  # type: ignore[misc]
    step_run = store.step_run(first)
    assert isinstance(step_run, StepRun) and step_run.pid_started == T0 + 1.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        step_run.status = "failed"  # type: ignore[misc]
    assert store.producer(store.step_runs(run_id)[1]) == step_run
    store.close()


def test_closing_a_run_writes_its_end_into_run_json_first(tmp_path: Path) -> None:
    store, run_id, _, _ = _recorded(tmp_path)
    store.close_run(run_id, "failed", ended=T0 + 9)
    on_disk = json.loads((store.run_dir(run_id) / "run.json").read_text())
    assert (on_disk["status"], on_disk["ended"], on_disk["owner"]) == ("failed", T0 + 9,
                                                                      {"pid": None, "host": None, "started": None})
    assert on_disk == store.describe_run(run_id).to_json()
    store.close()


def test_runs_show_json_prints_to_json(tmp_path: Path, project: Path, blase) -> None:
    """`blase runs show --json` of a real step's run is the description's to_json, byte for byte, and the run
    folder's run.json holds the same."""
    blase("step", "a", cwd=project, check=True)
    store = RunStore(project)
    try:
        run_id = store.resolve_run("latest")
        desc = store.describe_run(run_id)
        shown = blase("runs", "show", run_id, "--json", cwd=project, check=True).stdout
        assert shown == json.dumps(desc.to_json(), indent=2, default=str) + "\n"
        assert json.loads((project / "runs" / run_id / "run.json").read_text()) == desc.to_json()
        assert desc.steps[0].artifacts[0].name == "a.txt" and desc.steps[0].metrics["loss"] == 1 / 3
    finally:
        store.close()


# ------------------------------------------------------------------------ no column names outside the store
_RETURNS_RECORD = {"describe_run", "get_run", "open_explicit_run", "step_run", "find_reusable", "producer",
                   "step_run_of_process"}
_RETURNS_RECORDS = {"step_runs", "previous_step_runs", "running_step_runs", "step_datasets", "metric_series",
                    "step_runs_of_process"}


def _record_call(node: ast.AST | None, names: set[str]) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in names


_SCOPES = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _in_scope(scope: ast.AST) -> list[ast.AST]:
    """The nodes of one function (or module, class, lambda), not of the functions nested in it."""
    out, todo = [], list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        out.append(node)
        if not isinstance(node, _SCOPES):
            todo.extend(ast.iter_child_nodes(node))
    return out


def indexed_records(source: str) -> list[int]:
    """Lines where a store record (the result of ``describe_run``, ``get_run``, ``step_runs``... or a name bound
    to one in the same function) is indexed by a string, as a row or dict would be."""
    return sorted(line for scope in ast.walk(ast.parse(source)) if isinstance(scope, _SCOPES)
                  for line in _indexed_in(_in_scope(scope)))


def _indexed_in(nodes: list[ast.AST]) -> list[int]:
    bound: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Assign | ast.NamedExpr) and _record_call(node.value, _RETURNS_RECORD):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.For | ast.comprehension) and _record_call(node.iter, _RETURNS_RECORDS):
            if isinstance(node.target, ast.Name):
                bound.add(node.target.id)
        elif isinstance(node, ast.Assign) and _record_call(node.value, _RETURNS_RECORDS):
            # rows = store.step_runs(...); rows[0]["id"]
            bound.update(f"{t.id}[]" for t in node.targets if isinstance(t, ast.Name))
    found = []
    for node in nodes:
        if not (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, str)):
            continue
        value = node.value
        if _record_call(value, _RETURNS_RECORD) or isinstance(value, ast.Name) and value.id in bound or (
                isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name)
                and f"{value.value.id}[]" in bound):
            found.append(node.lineno)
    return found


def test_the_check_finds_a_record_indexed_by_a_column() -> None:
    bad = ('def f(store):\n    desc = store.describe_run("x")\n    run = store.get_run("x")\n'
           '    rows = store.step_runs("x")\n    a = [s for s in store.step_runs("x") if s["step"]]\n'
           '    return desc["steps"], run["status"], rows[0]["id"], store.get_run("y")["name"]\n')
    assert indexed_records(bad) == [5, 6, 6, 6, 6]
    elsewhere = 'def f(store):\n    r = store.get_run("x")\n\n\ndef g(r):\n    return r["a"], (lambda r: r["b"])\n'
    assert indexed_records(elsewhere) == []
    assert indexed_records('def f(store):\n    return store.describe_run("x").steps[0].status\n') == []


def test_no_caller_outside_the_store_indexes_a_record_by_column() -> None:
    package = REPO / "blase_tui"
    sources = [p for p in package.rglob("*.py") if "store" not in p.relative_to(package).parts]
    sources += list((REPO / "plugins").glob("*/blase_*/**/*.py"))
    offenders = [f"{p.relative_to(REPO)}:{line}" for p in sources for line in indexed_records(p.read_text())]
    assert offenders == []
