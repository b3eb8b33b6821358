"""Issue 24, "done when": a decoy folder beside the project is byte for byte and mode for mode unchanged after every
crafted input. Here: the journal (``runs/journal.jsonl``: model versions, aliases and exclusion sets a rebuilt
index takes back) and a step's events file. Each crafted line is skipped and named by ``blase runs reindex``, the
commands that read what was rebuilt answer in one line or leave it out, never with a traceback, and no control
character a name held reaches the terminal raw (a line break or a right-to-left override would fake output).
run.json is in test_integrity.py, archives in test_deploy_archive.py, MLflow in plugins/blase-mlflow/tests."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from conftest import make_project, runs_json, show_json
from test_integrity import _snapshot

STEPS = '''
from blase_tui import models, step


@step
def fit(ctx):
    """A model, and a metric."""
    from sklearn.linear_model import LogisticRegression

    ctx.log_metric("loss", 0.25, iteration=0)
    models.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), name="clf")
'''

# what must never reach the terminal raw: an escape sequence, a right-to-left override, a NUL, a carriage return
RAW = ("\x1b", "\u202e", "\x00", "\r")


@pytest.fixture
def registry(tmp_path: Path, blase) -> tuple[Path, Path]:
    """A project with one run of `fit` (model clf v1, alias champion), and a decoy folder beside it."""
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "secret.txt").write_text("do not touch")
    (decoy / "secret.txt").chmod(0o600)
    root = make_project(tmp_path / "proj", main_src=STEPS, toml='[project]\nname = "proj"\n')
    blase("step", "fit", cwd=root, check=True)
    blase("models", "alias", "clf", "1", "champion", cwd=root, check=True)
    return root, decoy


def _append_and_reindex(path: Path, lines: list[dict], root: Path, blase) -> tuple[int, str]:
    """Append crafted JSON ``lines`` to ``path``, drop the index and rebuild it: the number of the first crafted
    line, and what `runs reindex` printed (checked for tracebacks and raw control characters)."""
    first = len(path.read_bytes().splitlines()) + 1
    with path.open("a") as fh:
        for line in lines:
            fh.write(json.dumps(line) + "\n")
    _drop_index(root)
    proc = blase("runs", "reindex", cwd=root)
    out = _clean(proc, "runs reindex")
    assert proc.returncode == 0, out
    return first, out


def _drop_index(root: Path) -> None:
    for name in ("blase.db", "blase.db-wal", "blase.db-shm"):
        (root / "runs" / name).unlink(missing_ok=True)


def _named(out: str, file: str, number: int) -> str:
    """The line of reindex's output that names line ``number`` of ``file`` (``line N:``, or ``lines A-B:``)."""
    import re

    for line in out.splitlines():
        match = re.search(re.escape(f"skipped {file} ") + r"lines? (\d+)(?:-(\d+))?: ", line)
        if match and int(match.group(1)) <= number <= int(match.group(2) or match.group(1)):
            return line
    raise AssertionError(f"{file} line {number} is not named:\n{out[:3000]}")


def _clean(proc, what: str) -> str:
    """The output of a command that must not have crashed nor printed a control character raw."""
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text, f"{what}: {text[-3000:]}"
    raw = [c for c in RAW if c in text]
    assert not raw, f"{what} printed {raw} raw: {text[:1500]!r}"
    assert not [line for line in text.splitlines() if line.lstrip().startswith("FAKED")], \
        f"{what}: a name's line break started a line of its own: {text[:1500]}"
    return text


def test_a_crafted_journal_reaches_nothing_outside_the_project(registry, blase) -> None:
    """Model versions, aliases and exclusion sets whose names climb out, are paths, hold control characters, whose
    hash is a path: a rebuilt index skips each and names its line; `models list/show`, `models.load` and
    `runs restore` never touch the decoy (a Keras model's file name names the file it is copied to before
    loading: one that climbs out would name the decoy's secret)."""
    from blase_tui import models
    from blase_tui.errors import BlaseError

    root, decoy = registry
    before = _snapshot(decoy)
    journal = root / "runs" / "journal.jsonl"
    good = next(json.loads(line)["row"] for line in journal.read_text().splitlines()
                if json.loads(line)["table"] == "models")
    # the folder a Keras model is copied to before loading: blase-keras-XXXX in the temporary folder
    keras_tmp = Path(tempfile.gettempdir()) / "blase-keras-x"
    into_decoy = os.path.relpath(decoy / "secret.txt", keras_tmp)
    assert into_decoy.startswith("../")

    def model(**row) -> dict:
        return {"table": "models", "row": {**good, **row}}

    crafted = [  # (line, what reindex says about it)
        (model(version=2, file_name="../../../../decoy/secret.txt"),
         "models.file_name '../../../../decoy/secret.txt' cannot be used: it climbs out with '..'"),
        (model(name="kerasclf", version=1, framework="tensorflow", file_name=into_decoy),
         f"models.file_name {into_decoy!r} cannot be used: it climbs out with '..'"),
        (model(version=3, file_hash="../../../../decoy/secret.txt"), "models.file_hash is not a content hash"),
        (model(name="../../decoy/evil", version=1), "models.name '../../decoy/evil' cannot be used: it climbs out"),
        (model(name="/etc/passwd", version=1), "models.name '/etc/passwd' cannot be used: it is an absolute path"),
        (model(name="x\nFAKED line", version=1), "it holds the control character U+000A"),
        (model(name="rtl\u202etxt.exe", version=1), "it holds the control character U+202E"),
        (model(version=4, run_id="r\nFAKED \x1b[31mred"), "models.run_id 'r\\nFAKED \\x1b[31mred' cannot be used"),
        (model(version=5, metrics=json.dumps({"acc\nFAKED": 1.0})), "models.metrics is not a JSON object of printable"),
        ({"table": "model_aliases", "row": {"name": "clf", "alias": "../prod", "version": 1, "set_at": 1.0}},
         "model_aliases.alias '../prod' cannot be used: it climbs out"),
        ({"table": "model_aliases", "row": {"name": "clf", "alias": "a/b", "version": 1, "set_at": 1.0}},
         "model_aliases.alias 'a/b' is not one plain name"),
        ({"table": "exclusions", "row": {"name": "../../decoy/x", "version": 1, "key": "k", "created": 1.0}},
         "exclusions.name '../../decoy/x' cannot be used: it climbs out"),
    ]
    first, out = _append_and_reindex(journal, [line for line, _ in crafted], root, blase)
    for number, (_, why) in enumerate(crafted[:10], start=first):  # the first ten of a file, then how many more
        assert why in _named(out, "runs/journal.jsonl", number), (number, why, out)
    assert "skipped 2 more entries of runs/journal.jsonl" in out
    assert "rebuilt from runs/journal.jsonl: 1 model versions, 1 model aliases" in out
    assert _snapshot(decoy) == before

    listed = blase("models", "list", "--json", cwd=root)
    assert listed.returncode == 0, listed.stderr
    assert [(m["name"], m["version"], m["aliases"]) for m in json.loads(listed.stdout)] == [("clf", 1, ["champion"])]
    assert "clf" in _clean(blase("models", "list", cwd=root), "models list")
    assert "clf v1" in _clean(blase("models", "show", "clf@champion", cwd=root), "models show")
    for ref in ("kerasclf", "../../decoy/evil", "x\nFAKED line", "rtl\u202etxt.exe", "/etc/passwd", "clf:2",
                "clf@../prod", "clf@a/b", "clf:../../decoy"):
        shown = blase("models", "show", ref, cwd=root)
        text = _clean(shown, f"models show {ref!r}")
        assert shown.returncode != 0 and text.startswith("blase: ") and len(text.strip().splitlines()) == 1, text
        with pytest.raises(BlaseError):
            models.load(ref, project=root)
    assert models.load("clf@champion", project=root).predict([[1.0]]).tolist() == [1]

    run_id = runs_json(blase, root)[0]["id"]
    restored = blase("runs", "restore", run_id, "--force", cwd=root)
    assert restored.returncode == 0, _clean(restored, "runs restore")
    assert _snapshot(decoy) == before, "nothing outside the project changed"


def test_a_crafted_events_file_reaches_nothing_outside_the_project(registry, blase) -> None:
    """Metric keys that are paths out of the project, hold a NUL, a line break, an escape sequence or a
    right-to-left override, values too large for a float, an iteration too large for the index, and lines that
    name an artifact or a dataset out of the project: reindex indexes the good metrics, names every other line,
    and `runs show` and `runs list` print no control character raw; nothing outside the project changes."""
    root, decoy = registry
    before = _snapshot(decoy)
    run_id = runs_json(blase, root)[0]["id"]
    events = root / "runs" / run_id / "fit" / "events.jsonl"
    t = json.loads(events.read_text().splitlines()[0])["t"]
    crafted = [  # (line, what reindex says about it: None for a line it takes or leaves alone)
        ({"t": t, "type": "metric", "key": "../../../../decoy/secret.txt", "value": 1.0}, None),  # a name, no path
        ({"t": t, "type": "metric", "key": "nul\x00key", "value": 1.0}, "a metric whose key is not a short line"),
        ({"t": t, "type": "metric", "key": "x\nFAKED line", "value": 1.0}, "a metric whose key is not a short line"),
        ({"t": t, "type": "metric", "key": "rtl\u202etxt.exe", "value": 1.0}, "a metric whose key is not a short"),
        ({"t": t, "type": "metric", "key": "esc\x1b[2J", "value": 1.0}, "a metric whose key is not a short line"),
        ({"t": t, "type": "metric", "key": "k" * 100_000, "value": 1.0}, "a metric whose key is not a short line"),
        ({"t": t, "type": "metric", "key": "big", "value": 1e308}, None),
        ({"t": t, "type": "metric", "key": "huge", "value": 10**400}, "metric 'huge' without a number"),
        ({"t": t, "type": "metric", "key": "it", "value": 1.0, "iteration": 10**30}, "metric 'it' with an iteration"),
        ({"t": t, "type": "artifact", "name": "../../../../decoy/secret.txt", "hash": "ab" * 32}, None),
        ({"t": t, "type": "dataset", "role": "output", "name": "../../../../decoy/secret.txt",
          "path": "../../../../decoy/secret.txt", "hash": "ab" * 32}, None),
        ({"t": t, "type": "log", "level": "INFO", "message": "x\nFAKED \x1b[31m\u202e"}, None),
    ]
    first, out = _append_and_reindex(events, [line for line, _ in crafted], root, blase)
    name = f"runs/{run_id}/fit/events.jsonl"
    for number, (_, why) in enumerate(crafted, start=first):
        if why is not None:
            assert why in _named(out, name, number), (number, why, out)
    assert _snapshot(decoy) == before

    metrics = show_json(blase, root, run_id)["steps"][0]["metrics"]
    assert set(metrics) == {"loss", "../../../../decoy/secret.txt", "big"}, metrics
    for args in (("runs", "show", run_id), ("runs", "list"), ("runs", "show", run_id, "--json")):
        shown = blase(*args, cwd=root)
        assert shown.returncode == 0, _clean(shown, " ".join(args))
        _clean(shown, " ".join(args))
    restored = blase("runs", "restore", run_id, "--force", cwd=root)
    assert restored.returncode == 0, _clean(restored, "runs restore")
    assert _snapshot(decoy) == before, "nothing outside the project changed"


def test_a_version_a_skipped_journal_line_named_is_never_handed_out_again(tmp_path: Path) -> None:
    """`journal.highest` with ``where``: the largest version the journal names for one model or exclusion set,
    skipped lines included (a rebuilt index lacks them, so MAX + 1 from the index alone would hand their number
    out again, and an alias the journal kept would then name another model); a number too large to add 1 to is
    not taken."""
    from blase_tui.store import journal

    runs = tmp_path / "runs"
    runs.mkdir()
    row = {"run_id": "r", "step_run_id": 1, "framework": "sklearn", "file_hash": "ab" * 32, "card_hash": "cd" * 32,
           "file_name": "clf.pkl", "metrics": "{}", "created": 1.0}
    lines = [{"table": "models", "row": {**row, "name": "clf", "version": 1}},
             {"table": "models", "row": {**row, "name": "clf", "version": 2, "file_name": "../x.pkl"}},  # skipped
             {"table": "models", "row": {**row, "name": "other", "version": 7}},
             {"table": "models", "row": {**row, "name": "clf", "version": 2**63 - 1}},
             {"table": "exclusions", "row": {"name": "cleaned", "version": 3, "key": "k", "created": 1.0}},
             {"table": "exclusions", "row": {"name": "cleaned", "version": 4, "key": "k\nx", "created": "late"}}]
    journal.path_of(runs).write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert journal.highest(runs, {"models": "version"}, where={"name": "clf"}) == 2
    assert journal.highest(runs, {"models": "version"}, where={"name": "other"}) == 7
    assert journal.highest(runs, {"models": "version"}, where={"name": "none"}) == 0
    assert journal.highest(runs, {"exclusions": "version"}, where={"name": "cleaned"}) == 4
    assert journal.highest(runs, {"models": "version"}) == 7


def test_a_new_version_after_a_rebuild_never_takes_a_number_the_journal_named(tmp_path: Path) -> None:
    """The registry and the exclusion sets number a new version past the journal's highest, not the index's: a
    line a rebuild skipped (version 2 of clf, a file name that climbs out) keeps its number."""
    from blase_tui.core.project import Project
    from blase_tui.store import exclusions
    from blase_tui.store import models as registry

    root = make_project(tmp_path / "proj", "")
    store = Project.discover(root).store
    run_id = store.create_run(name="r", tags={}, params={})
    digest = store.cas.put_bytes(b"model")
    assert registry.register(store, "clf", run_id=run_id, step_run_id=0, framework="sklearn", file_hash=digest,
                             card_hash=digest, file_name="clf.skops", metrics={}) == 1
    assert exclusions.save(store, "cleaned", {"k": "bad"}) == "cleaned_v1"
    row = {"run_id": run_id, "step_run_id": 0, "framework": "sklearn", "file_hash": digest, "card_hash": digest,
           "file_name": "../x.pkl", "metrics": "{}", "created": 1.0, "name": "clf", "version": 2}
    with open(root / "runs" / "journal.jsonl", "a") as fh:
        fh.write(json.dumps({"table": "models", "row": row}) + "\n")
        fh.write(json.dumps({"table": "exclusions", "row": {"name": "cleaned", "version": 5, "key": "k\nx",
                                                           "created": "late"}}) + "\n")
    assert registry.register(store, "clf", run_id=run_id, step_run_id=0, framework="sklearn", file_hash=digest,
                             card_hash=digest, file_name="clf.skops", metrics={}) == 3
    assert exclusions.save(store, "cleaned", {"k": "worse"}) == "cleaned_v6"
