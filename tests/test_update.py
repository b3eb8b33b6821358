"""`Update` (issue 14): a challenger trained on the base's data plus new data becomes the champion only when it
scores better on the same held-out records; a worse one leaves the champion where it was; both decisions are
recorded; the challenger's card names its base and the data added; bad arguments are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_project, run_blase, show_json

pytestmark = pytest.mark.timeout(300)

MAIN = '''
import numpy as np

from blase_tui import Load, Train, Update, step
from blase_tui.modules.batch import Batch, BatchMeta


def table(n, seed, shuffle=False):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    if shuffle:
        y = rng.permutation(y)
    return Batch([f"{seed}-{i}" for i in range(n)], {"features": x, "label": y}, BatchMeta("t", 0))


@step
def prepare(ctx):
    """A small training split (the base learns little from it) and a test split."""
    Load().save_to_filesystem(table(40, 0), "data/prepared/train")
    Load().save_to_filesystem(table(1000, 1), "data/prepared/test")


@step
def new_data(ctx, shuffle: bool = False):
    """New records: informative, or with their labels shuffled."""
    Load().save_to_filesystem(table(3000, 2, shuffle), "data/new")


@step
def train(ctx):
    """The base model."""
    from sklearn.tree import DecisionTreeClassifier

    trainer = Train(seed=0)
    trainer.set_model(DecisionTreeClassifier(max_depth=3, random_state=0), framework="sklearn")
    trainer.train(epochs=1, data_dir="data/prepared")
    trainer.save_model("models/v1/tree.pkl")


@step
def update(ctx, mode: str = "append_only", transform: str = ""):
    """Retrain on the new data; promote only a better model."""
    Update(epochs=1).run(base_model_path="models/v1/", new_data_path="data/new", update_mode=mode,
                         transform_fn=transform or None, evaluate_after=True)
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "upd", main_src=MAIN, toml='[project]\nname = "upd"\n')
    for step in ("prepare", "train"):
        run_blase("step", step, cwd=root, check=True, timeout=120)
    run_blase("models", "alias", "tree", "1", "champion", cwd=root, check=True)
    return root


def _champion(project: Path) -> int:
    models = json.loads(run_blase("models", "list", "--json", cwd=project, check=True).stdout)
    return next(m["version"] for m in models if "champion" in m["aliases"])


def test_a_better_challenger_is_promoted(project: Path) -> None:
    run_blase("step", "new_data", cwd=project, check=True)
    proc = run_blase("step", "update", cwd=project, timeout=200)
    assert proc.returncode == 0, proc.stderr
    assert "tree v2 accuracy" in proc.stderr and "it is now tree@champion" in proc.stderr
    assert _champion(project) == 2
    run = show_json(run_blase, project, "latest")
    step = run["steps"][0]
    assert step["metrics"]["update/challenger_accuracy"] > step["metrics"]["update/champion_accuracy"]
    assert run["tags"]["update.decision"] == "promoted"
    assert "update/decision.json" in {a["name"] for a in step["artifacts"]}
    inputs = {d["path"] for d in step["datasets"] if d["role"] == "input"}
    assert "data/new" in inputs, "the data added is an input of the update"
    card = json.loads(run_blase("models", "show", "tree:2", "--json", cwd=project, check=True).stdout)["card"]
    assert card["update"]["base"] == "tree v1" and card["update"]["data_added"] == "data/new"
    assert card["update"]["mode"] == "append_only" and card["update"]["records_added"] == 3000

    from conftest import Server, request

    server = Server(project, "tree@champion", "--no-log")  # a server started after the promotion
    try:
        assert request(server.url + "/metadata")[1]["model"]["version"] == 2
    finally:
        server.stop()


def test_a_worse_challenger_leaves_the_champion(project: Path) -> None:
    run_blase("step", "new_data", "--set", "shuffle=true", cwd=project, check=True)
    proc = run_blase("step", "update", cwd=project, timeout=200)
    assert proc.returncode == 0, proc.stderr
    assert "does not beat tree v1" in proc.stderr and "champion stays as it was" in proc.stderr
    assert _champion(project) == 1
    run = show_json(run_blase, project, "latest")
    assert run["tags"]["update.decision"] == "kept the champion"
    step = run["steps"][0]
    assert step["metrics"]["update/challenger_accuracy"] <= step["metrics"]["update/champion_accuracy"]


def test_bad_arguments_are_one_line(project: Path) -> None:
    run_blase("step", "new_data", cwd=project, check=True)
    for args, expected in ((("--set", "mode=sideways"), "update_mode must be one of append_only, window, fine_tune, full"),
                           (("--set", "mode=fine_tune"), "cannot be trained further (no partial_fit)"),
                           (("--set", "transform=nowhere.clean"), "transform_fn 'nowhere.clean': cannot import nowhere")):
        proc = run_blase("step", "update", *args, cwd=project, timeout=200)
        assert proc.returncode == 1 and expected in proc.stderr, (args, proc.stderr)
    assert _champion(project) == 1
