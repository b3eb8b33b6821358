"""The model registry (issue 12): any model registered from a step, aliases, loading by alias for predictions
that equal the in-step model's, and aliases that survive a lost index."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_project

pytestmark = pytest.mark.timeout(300)

MAIN = '''
import numpy as np

from blase_tui import Track, step


@step
def cluster(ctx, k: int = 3):
    """Fit a KMeans and register it."""
    from sklearn.cluster import KMeans

    x = np.random.default_rng(0).normal(size=(200, 4))
    km = KMeans(n_clusters=k, n_init=3, random_state=0).fit(x)
    np.save("probe.npy", x[:20])
    np.save(f"kmeans_{k}.npy", km.predict(x[:20]))
    print(ctx.log_model(km, name="clusters", input_example=x[:3]))


@step
def net(ctx):
    """A small torch classifier, registered through Track."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    x = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    with torch.no_grad():
        np.save("net_proba.npy", torch.softmax(model(torch.from_numpy(x)), dim=1).numpy())
    np.save("net_x.npy", x)
    Track().log_model(model, name="net", framework="torch")
'''


@pytest.fixture
def project(tmp_path: Path, blase) -> Path:
    root = make_project(tmp_path / "reg", main_src=MAIN, toml='[project]\nname = "reg"\n')
    for k in (3, 4):
        blase("step", "cluster", "--set", f"k={k}", cwd=root, check=True, timeout=200)
    blase("step", "net", cwd=root, check=True, timeout=200)
    return root


def test_models_registered_from_steps_load_by_alias(project: Path, blase, monkeypatch: pytest.MonkeyPatch) -> None:
    from blase_tui import ConfigError, models

    listed = {(m["name"], m["version"]): m for m in json.loads(blase("models", "list", "--json", cwd=project).stdout)}
    assert set(listed) == {("clusters", 1), ("clusters", 2), ("net", 1)}
    card = json.loads(blase("models", "show", "clusters:1", "--json", cwd=project).stdout)["card"]
    assert card["framework"] == "sklearn" and card["model"]["class"] == "KMeans"
    assert card["input"]["shape"] == [4] and len(card["input_example"]) == 3 and card["training_run"]

    assert blase("models", "alias", "clusters", "1", "champion", cwd=project).returncode == 0
    assert blase("models", "alias", "clusters", "2", "challenger", cwd=project).returncode == 0
    assert blase("models", "alias", "net", "1", "champion", cwd=project).returncode == 0
    monkeypatch.chdir(project)
    probe = np.load(project / "probe.npy")
    champion = models.load("clusters@champion")
    assert champion.version == 1 and champion.aliases == ["champion"]
    assert np.array_equal(champion.predict(probe), np.load(project / "kmeans_3.npy"))
    assert np.array_equal(models.load("clusters@challenger").predict(probe), np.load(project / "kmeans_4.npy"))

    net = models.load("net@champion")
    x = np.load(project / "net_x.npy")
    assert np.allclose(net.predict_proba(x), np.load(project / "net_proba.npy"), atol=1e-6)
    assert np.array_equal(net.predict(x), np.load(project / "net_proba.npy").argmax(axis=1))

    # an alias moves; the old version keeps its number
    assert blase("models", "alias", "clusters", "2", "champion", cwd=project).returncode == 0
    assert models.load("clusters@champion").version == 2
    shown = blase("models", "show", "clusters@champion", cwd=project).stdout
    assert "clusters v2" in shown and "aliases: challenger, champion" in shown
    with pytest.raises(ConfigError, match="has no alias 'production'"):
        models.load("clusters@production")


def test_alias_errors_are_one_line(project: Path, blase) -> None:
    proc = blase("models", "alias", "clusters", "9", "champion", cwd=project)
    assert proc.returncode == 2 and "no model 'clusters:9'" in proc.stderr
    proc = blase("models", "alias", "clusters", "1", "9lives", cwd=project)
    assert proc.returncode == 2 and "must start with a letter" in proc.stderr


def test_aliases_survive_a_lost_index(project: Path, blase, monkeypatch: pytest.MonkeyPatch) -> None:
    from blase_tui import models

    assert blase("models", "alias", "clusters", "1", "champion", cwd=project).returncode == 0
    for name in ("blase.db", "blase.db-wal", "blase.db-shm"):
        (project / "runs" / name).unlink(missing_ok=True)
    blase("runs", "reindex", cwd=project, check=True)
    monkeypatch.chdir(project)
    assert models.load("clusters@champion").version == 1
    assert np.array_equal(models.load("clusters@champion").predict(np.load(project / "probe.npy")),
                          np.load(project / "kmeans_3.npy"))


def test_a_model_file_edited_in_place_is_refused_on_load(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry's file is a content-store object that run folders link to: an edit of it in place (after a
    chmod, or as root) is named where the model is loaded, never served as if it were the registered one."""
    import os

    from blase_tui import ConfigError, models
    from blase_tui.core.project import Project
    from blase_tui.store import models as registry

    monkeypatch.chdir(project)
    path = Path(registry.get(Project.discover(project).store, "clusters:1").path)
    os.chmod(path, 0o644)
    with open(path, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ConfigError, match="model clusters v1 no longer has the content it was registered with"):
        models.load("clusters:1")
    assert models.load("clusters:2").version == 2, "the other versions still load"
    path.unlink()  # gone from the store altogether: one line, not a FileNotFoundError
    with pytest.raises(ConfigError, match="model clusters v1 is gone from the content store"):
        models.load("clusters:1")
