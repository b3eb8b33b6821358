"""`blase runs restore` (issue 12): a run's outputs come back from the content store byte-identical, a changed
file is left alone without --force, and what is not stored is said, never guessed."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from conftest import make_project, show_json

MAIN = '''
import numpy as np

from blase_tui import Load, Train, step
from blase_tui.modules.batch import Batch, BatchMeta


@step
def fit(ctx):
    """Train a small classifier; keep its model, logs, a program and a folder of shards."""
    from sklearn.linear_model import LogisticRegression

    ctx.log_dataset("blase.toml", role="input")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    Load().save_to_filesystem(Batch([f"r{i}" for i in range(60)], {"features": x, "label": y}, BatchMeta("t", 0)),
                              "data/prepared/train")
    trainer = Train()
    trainer.set_model(LogisticRegression(), framework="sklearn")
    trainer.train(epochs=1, data_dir="data/prepared")
    trainer.save_model("models/clf.pkl")
    trainer.save_logs("logs/fit.json")
    program = ctx.artifact_dir / "run.sh"
    program.write_text("#!/bin/sh\\necho hi\\n")
    program.chmod(0o755)
'''


@pytest.fixture
def project(tmp_path: Path, blase) -> Path:
    root = make_project(tmp_path / "p", main_src=MAIN, toml='[project]\nname = "restore"\n')
    blase("step", "fit", cwd=root, check=True, timeout=200)
    return root


def test_restore_puts_outputs_back_byte_identical(project: Path, blase, tmp_path: Path) -> None:
    run = show_json(blase, project, "latest")
    model, logs = (project / "models" / "clf.pkl").read_bytes(), (project / "logs" / "fit.json").read_bytes()
    prepared = project / "data" / "prepared"
    shards = {p.relative_to(prepared): p.read_bytes() for p in prepared.rglob("*") if p.is_file()}
    assert len(shards) >= 2, "a manifest and at least one shard"
    shutil.rmtree(prepared)
    (project / "models" / "clf.pkl").unlink()
    (project / "logs" / "fit.json").unlink()
    artifact = project / "runs" / run["id"] / "fit" / "artifacts" / "run.sh"
    artifact.unlink()
    proc = blase("runs", "restore", run["id"], cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {p.relative_to(prepared): p.read_bytes() for p in prepared.rglob("*") if p.is_file()} == shards
    assert (project / "models" / "clf.pkl").read_bytes() == model
    assert (project / "logs" / "fit.json").read_bytes() == logs
    assert artifact.read_text().startswith("#!/bin/sh") and artifact.stat().st_mode & stat.S_IXUSR
    assert "restored   models/clf.pkl" in proc.stdout and "restored   logs/fit.json" in proc.stdout
    assert "restored   data/prepared/train" in proc.stdout

    (project / "models" / "clf.pkl").write_bytes(b"changed by hand")
    proc = blase("runs", "restore", run["id"], "--step", "fit", cwd=project)
    assert "changed    models/clf.pkl: differs from the run's; left alone" in proc.stdout
    assert (project / "models" / "clf.pkl").read_bytes() == b"changed by hand"
    blase("runs", "restore", run["id"], "--force", cwd=project)
    assert (project / "models" / "clf.pkl").read_bytes() == model
    assert "unchanged  logs/fit.json" in blase("runs", "restore", run["id"], cwd=project).stdout

    elsewhere = tmp_path / "elsewhere"
    blase("runs", "restore", run["id"], "--to", str(elsewhere), cwd=project)
    assert (elsewhere / "models" / "clf.pkl").read_bytes() == model
    restored_program = elsewhere / "runs" / run["id"] / "fit" / "artifacts" / "run.sh"
    assert restored_program.stat().st_mode & stat.S_IXUSR, "artifacts keep their file mode"


def test_restore_of_an_unknown_step_is_a_usage_error(project: Path, blase) -> None:
    proc = blase("runs", "restore", "latest", "--step", "nope", cwd=project)
    assert proc.returncode == 2 and "has no step `nope`; its steps: fit" in proc.stderr


def test_an_output_over_keep_outputs_is_named_not_guessed(tmp_path: Path, blase) -> None:
    root = make_project(tmp_path / "small", main_src=MAIN,
                        toml='[project]\nname = "restore"\nkeep_outputs = "100B"\n')
    step = blase("step", "fit", cwd=root, check=True, timeout=200)
    assert "output data/prepared/train is recorded by its hash only" in step.stderr
    run = show_json(blase, root, "latest")
    shutil.rmtree(root / "data" / "prepared")
    proc = blase("runs", "restore", run["id"], cwd=root)
    assert proc.returncode == 1, "the shards folder cannot come back, and it says so"
    assert "not stored data/prepared/train" in proc.stdout and "cannot be restored" in proc.stdout
    assert not (root / "data" / "prepared").exists(), "nothing is guessed"


def test_a_changed_kept_folder_is_left_alone_without_force(project: Path, blase) -> None:
    run = show_json(blase, project, "latest")
    shard = next(p for p in (project / "data" / "prepared").rglob("*") if p.is_file() and p.suffix != ".json")
    original = shard.read_bytes()
    shard.write_bytes(b"edited")
    proc = blase("runs", "restore", run["id"], cwd=project)
    assert "changed    data/prepared/train" in proc.stdout and shard.read_bytes() == b"edited"
    blase("runs", "restore", run["id"], "--force", cwd=project, check=True)
    assert shard.read_bytes() == original
