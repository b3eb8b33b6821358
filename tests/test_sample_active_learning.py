"""The sample project's active-learning flavour, as a user runs it: `blase step etl` writes the alert pool, a
round is labelled (here by an oracle that reads the hidden truth, through the same session the labelling
screen uses), `blase step al_train` retrains, and the next round is ordered by that model."""

from __future__ import annotations

import csv
import io
import shutil
import sys
from pathlib import Path

import pytest
from conftest import REPO, show_json

from blase_tui.labelling import LabellingSession
from blase_tui.store import labels as label_store

pytestmark = pytest.mark.timeout(300)
KEYS = {"real": "r", "bogus": "b", "varstar": "v"}


def oracle_round(root: Path) -> tuple[int, str, str | None, list[str]]:
    sys.path.insert(0, str(root))
    try:
        from scripts.alerts import read_truth
    finally:
        sys.path.remove(str(root))
    truth = read_truth(root / "data" / "alerts" / "truth.csv")
    shown = []
    with LabellingSession(root, labeller="oracle") as session:
        while not session.done:
            record = session.current()
            shown.append(record.key)
            session.label(KEYS[truth[record.key]])
        return session.round.number, session.round.strategy, session.round.model, shown


def test_label_train_label_again(tmp_path: Path, blase) -> None:
    root = tmp_path / "sample"
    shutil.copytree(REPO / "sample_project", root, ignore=shutil.ignore_patterns("runs", "data", ".blase", "models"))
    blase("step", "etl", "--set", "alerts=600", cwd=root, check=True)
    assert len(list((root / "data" / "alerts" / "pool").glob("*.parquet"))) == 3

    number, strategy, model, first = oracle_round(root)
    assert (number, strategy, model) == (1, "random", None)  # no model yet: a random first round
    assert len(first) >= 20

    blase("step", "al_train", cwd=root, check=True)
    run = show_json(blase, root, "latest")
    step = run["steps"][-1]
    assert step["step"] == "al_train" and step["status"] == "succeeded"
    assert 0.5 < step["metrics"]["pool_accuracy"] <= 1.0
    assert run["tags"]["round"] == "1"
    ids = next(a for a in step["artifacts"] if a["name"].endswith("training_ids.csv"))
    assert ids

    number, strategy, model, second = oracle_round(root)
    assert (number, strategy, model) == (2, "least_confidence", "vra:1")
    assert not set(first) & set(second), "round 2 offered a record labelled in round 1"

    out = blase("label", "export", cwd=root, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["candid", "objectId", "label", "timestamp"]
    from blase_tui.store.runstore import RunStore

    store = RunStore(root)
    try:
        assert len(rows) == len(label_store.current_labels(store)) == len(set(first) | set(second))
    finally:
        store.close()


def test_reindex_rebuilds_labels_models_and_exclusion_sets(tmp_path: Path, blase) -> None:
    """Deleting runs/blase.db after a labelling round, a training and a clean loses nothing that reindex cannot
    rebuild from the project's files."""
    from blase_tui.core.project import Project
    from blase_tui.store import exclusions, models

    root = tmp_path / "sample"
    shutil.copytree(REPO / "sample_project", root, ignore=shutil.ignore_patterns("runs", "data", ".blase", "models"))
    blase("step", "etl", "--set", "alerts=600", cwd=root, check=True)
    oracle_round(root)
    blase("step", "al_train", cwd=root, check=True)
    blase("step", "clean", cwd=root, check=True)

    def snapshot() -> dict:
        store = Project.at(root).store
        try:
            rounds = label_store.rounds(store)
            return {
                "labels": [(lab.key, lab.label, lab.target, lab.round, lab.ts) for lab in label_store.current_labels(store)],
                "history": sorted((lab.key, lab.action, lab.ts) for lab in label_store.history_all(store)),
                "rounds": [(r.number, r.status, r.strategy, r.target, r.model_run) for r in rounds],
                "queue": [(q.position, q.key, q.score) for q in label_store.queue(store, rounds[0].number)],
                "models": [(m.name, m.version, m.run_id, m.file_hash, m.card_hash, m.metrics)
                           for m in models.list_models(store)],
                "model_steps": [store.step_run(m.step_run_id).step for m in models.list_models(store)],
                "exclusions": exclusions.load(store, "cleaned_v1"),
            }
        finally:
            store.close()

    before = snapshot()
    assert before["labels"] and before["models"] and before["exclusions"] and before["queue"]
    for name in ("blase.db", "blase.db-wal", "blase.db-shm"):
        (root / "runs" / name).unlink(missing_ok=True)
    proc = blase("runs", "reindex", cwd=root, check=True)
    assert "rebuilt from runs/journal.jsonl" in proc.stdout
    assert snapshot() == before
    again = blase("runs", "reindex", cwd=root, check=True)
    assert "rebuilt from" not in again.stdout and snapshot() == before, "a second reindex changes nothing"
