"""`Update` decides with evidence (issue 26): the champion and the challenger are compared record by record on
the same held-out records with a one-sided paired test (McNemar for accuracy, a paired bootstrap for RMSE), and
the challenger is promoted only when the test says it is better at `level` and its gain is above `margin`; the
test, the p-value and both scores are recorded and said. And the seed's `models/v1/`, which nobody made, is
version 1 of the project's registered model; its new images in class folders are read with their labels."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import make_project, run_blase, show_json

from blase_tui.modules.update import RESAMPLES, mcnemar, paired_bootstrap

pytestmark = pytest.mark.timeout(300)

MAIN = '''
import numpy as np

from blase_tui import Load, Train, Update, step
from blase_tui.modules.batch import Batch, BatchMeta


def table(n, seed, shuffle=False, regression=False):
    """y depends on x0 and x1, with noise (a logistic regression gets about 70% right); shuffle: y is noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    signal = x[:, 0] + 0.5 * x[:, 1]
    if regression:
        y = (2 * signal + rng.normal(size=n)).astype(np.float32)
    else:
        y = (signal + rng.normal(size=n) > 0).astype(np.int64)
    if shuffle:
        y = rng.permutation(y)
    return Batch([f"{seed}-{i}" for i in range(n)], {"features": x, "label": y}, BatchMeta("t", 0))


@step
def prepare(ctx, n: int = 1000, regression: bool = False):
    """The base's training split (n records) and a test split of 1000."""
    Load().save_to_filesystem(table(n, 0, regression=regression), "data/prepared/train")
    Load().save_to_filesystem(table(1000, 1, regression=regression), "data/prepared/test")


@step
def train(ctx, regression: bool = False):
    """The base: a linear model, saved as model v1."""
    from sklearn.linear_model import LinearRegression, LogisticRegression

    trainer = Train(seed=0)
    trainer.set_model(LinearRegression() if regression else LogisticRegression(), framework="sklearn")
    trainer.configure_training(task="regression" if regression else "classification", seed=0)
    trainer.train(epochs=1, data_dir="data/prepared")
    trainer.save_model("models/model.pkl")


@step
def update(ctx, seed: int = 2, n: int = 1000, shuffle: bool = False, regression: bool = False, level: float = 0.05,
           margin: float = 0.0):
    """New records (seed), informative or with shuffled labels; the challenger is model v1's data plus them."""
    Load().save_to_filesystem(table(n, seed, shuffle, regression), f"data/new-{seed}")
    Update(epochs=1, level=level, margin=margin).run(base_model_path="model:1", new_data_path=f"data/new-{seed}",
                                      update_mode="append_only", evaluate_after=True)



@step
def shuffled_updates(ctx, first: int = 10, count: int = 8):
    """``count`` updates in one process, each with new records whose labels are shuffled (seeds first, ...);
    every decision kept in decisions.json (one step: the suite does not pay for eight processes)."""
    import json

    decisions = []
    for seed in range(first, first + count):
        Load().save_to_filesystem(table(1000, seed, True), f"data/new-{seed}")
        decision = Update(epochs=1).run(base_model_path="model:1", new_data_path=f"data/new-{seed}",
                                        update_mode="append_only", evaluate_after=True)
        decisions.append(decision.as_dict())
    with open("decisions.json", "w") as out:
        json.dump(decisions, out)
'''

TOML = '''[project]
name = "evidence"
'''


def _project(root: Path, *prepare: str, regression: bool = False) -> Path:
    make_project(root, main_src=MAIN, toml=TOML)
    extra = ("--set", "regression=true") if regression else ()
    run_blase("step", "prepare", *prepare, *extra, cwd=root, check=True, timeout=120)
    run_blase("step", "train", *extra, cwd=root, check=True, timeout=120)
    return root


def _update(project: Path, *args: str) -> tuple[dict, dict, str]:
    """`blase step update ARGS`: its decision.json, its step's metrics, and what it said."""
    proc = run_blase("step", "update", *args, cwd=project, timeout=200)
    assert proc.returncode == 0, proc.stderr
    run = show_json(run_blase, project, "latest")
    decision = json.loads((project / "runs" / run["id"] / "update" / "artifacts" / "update" / "decision.json")
                          .read_text())
    return decision, run["steps"][0]["metrics"], proc.stderr


def _champion(project: Path, name: str = "model") -> int | None:
    models = json.loads(run_blase("models", "list", "--json", cwd=project, check=True).stdout)
    return next((m["version"] for m in models if m["name"] == name and "champion" in m["aliases"]), None)


# ------------------------------------------------------------------------------------- through a real project
@pytest.mark.timeout(600)  # 8 updates, each its own `blase step update`
def test_a_challenger_trained_on_shuffled_labels_is_never_promoted(tmp_path: Path) -> None:
    """8 seeds of new data whose labels are shuffled, appended to the base's 1000 clean records: the challenger
    is a logistic regression barely moved by the noise, a near tie on the same ~1200 held-out records. The old
    rule (promote when the challenger's accuracy is higher) promotes it in 2 of the 8 (by 0.08 and 0.49 points,
    16 vs 10 discordant records at best, p = 0.16; three more are exact ties); the paired test in none,
    and the recorded p-value is McNemar's exact one-sided p of the recorded discordant counts."""
    from scipy.stats import binom

    project = _project(tmp_path / "shuffled")
    proc = run_blase("step", "shuffled_updates", cwd=project, timeout=500)
    assert proc.returncode == 0, proc.stderr
    said = proc.stderr
    decisions = json.loads((project / "decisions.json").read_text())
    metrics = show_json(run_blase, project, "latest")["steps"][0]["metrics"]  # the last update's
    assert len(decisions) == 8
    plain = promoted = 0
    for seed, decision in zip(range(10, 18), decisions, strict=True):
        assert decision["test"] == "mcnemar" and decision["level"] == 0.05 and decision["champion"] == "model v1"
        wins, losses = decision["evidence"]["challenger_only_right"], decision["evidence"]["champion_only_right"]
        assert decision["p_value"] == pytest.approx(binom.sf(wins - 1, wins + losses, 0.5) if wins + losses else 1.0)
        assert decision["p_value"] >= 0.05
        # both models answered the same records: the accuracies differ by exactly the discordant records
        gap = decision["challenger_score"] - decision["champion_score"]
        assert gap == pytest.approx((wins - losses) / decision["records"])
        assert re.search(rf"model v{seed - 8} accuracy \d\.\d+ does not beat model v1's \d\.\d+ \(McNemar p = \S+,"
                         rf" not below 0\.05, {wins} vs {losses} discordant records\): model v1 stays \(no version is"
                         rf" model@champion yet\)", said)
        plain += decision["challenger_score"] > decision["champion_score"]  # the old rule, margin 0.0
        promoted += decision["promoted"]
    assert metrics["update/p_value"] == pytest.approx(decisions[-1]["p_value"])
    assert metrics["update/promoted"] == 0.0
    assert plain == 2, "the old plain comparison promoted a no-better challenger in 2 of the 8 seeds"
    assert promoted == 0
    assert _champion(project) is None  # nothing ever got the alias


def test_a_clearly_better_challenger_is_promoted_with_its_evidence_recorded(tmp_path: Path) -> None:
    """The base learned from 40 records, the challenger from 40 + ~2400: promoted, with McNemar's p below the
    level in decision.json, the metrics and the line said; the same challenger at level 1e-30 is not, nor with a
    margin larger than its gain (significant, but too small)."""
    project = _project(tmp_path / "better", "--set", "n=40")
    decision, metrics, said = _update(project, "--set", "n=3000", "--set", "level=1e-30")
    assert not decision["promoted"] and decision["level"] == 1e-30 and 1e-30 <= decision["p_value"] < 0.05
    assert decision["challenger_score"] > decision["champion_score"]  # better, but not at that level
    assert "not below 1e-30" in said and _champion(project) is None
    decision, metrics, said = _update(project, "--set", "n=3000", "--set", "margin=0.5")
    assert not decision["promoted"] and decision["p_value"] < 0.05 and metrics["update/promoted"] == 0.0
    assert re.search(r"model v3 accuracy \d\.\d+ does not beat model v1's \d\.\d+ by more than the margin 0\.5"
                     r" \(McNemar p = \S+ < 0\.05, \d+ vs \d+ discordant records\): model v1 stays \(no version is"
                     r" model@champion yet\)", said), said
    assert _champion(project) is None

    decision, metrics, said = _update(project, "--set", "n=3000", "--set", "seed=3")
    assert decision["promoted"] and decision["test"] == "mcnemar" and decision["level"] == 0.05
    assert decision["p_value"] < 0.05 and metrics["update/p_value"] == pytest.approx(decision["p_value"])
    assert metrics["update/promoted"] == 1.0
    assert metrics["update/challenger_accuracy"] == pytest.approx(decision["challenger_score"])
    assert metrics["update/champion_accuracy"] == pytest.approx(decision["champion_score"])
    wins, losses = decision["evidence"]["challenger_only_right"], decision["evidence"]["champion_only_right"]
    assert wins > losses
    line = re.search(r"model v4 accuracy (\d\.\d+) beats model v1's (\d\.\d+) \(McNemar p = (\S+) < 0\.05,"
                     r" (\d+) vs (\d+) discordant records\): it is now model@champion", said)
    assert line, said
    assert float(line[1]) == pytest.approx(decision["challenger_score"], abs=1e-4)
    assert float(line[2]) == pytest.approx(decision["champion_score"], abs=1e-4)
    assert float(line[3]) == pytest.approx(decision["p_value"], rel=0.05)
    assert (int(line[4]), int(line[5])) == (wins, losses)
    assert decision["why"] == line[0]
    assert _champion(project) == 4


def test_regression_is_decided_by_a_paired_bootstrap(tmp_path: Path) -> None:
    """A linear regression from 8 records against one from 8 + ~1600: the challenger's RMSE is lower in every
    one of the 2000 resamples, so p = 1/2001; decided, recorded and said as a paired bootstrap."""
    project = _project(tmp_path / "regression", "--set", "n=8", regression=True)
    decision, metrics, said = _update(project, "--set", "n=2000", "--set", "regression=true")
    assert decision["metric"] == "rmse" and decision["test"] == "paired_bootstrap"
    assert decision["challenger_score"] < decision["champion_score"]
    assert decision["p_value"] == pytest.approx(1 / (RESAMPLES + 1)) and decision["evidence"] == {"resamples": RESAMPLES}
    assert decision["promoted"] and metrics["update/p_value"] == pytest.approx(decision["p_value"])
    assert metrics["update/challenger_rmse"] == pytest.approx(decision["challenger_score"])
    records = decision["records"]
    assert records > 1000  # the base's test split and the held-out new records
    assert re.search(rf"model v2 rmse \d\.\d+ beats model v1's \d\.\d+ \(paired bootstrap p = 0\.0005 < 0\.05,"
                     rf" {RESAMPLES} resamples of {records} records\): it is now model@champion", said), said
    assert _champion(project) == 2


# ------------------------------------------------------------------------------------------ the tests alone
def test_a_level_outside_0_and_1_is_one_line() -> None:
    from blase_tui.errors import BlaseError
    from blase_tui.modules.update import Update

    for level in (0, 1, 5, -0.05):
        with pytest.raises(BlaseError, match=r"^level must be a significance level between 0 and 1 \(such as 0\.05\)"):
            Update(level=level)
    assert Update(level=0.01).level == 0.01
    for margin in (-1, -0.01, float("nan")):
        with pytest.raises(BlaseError, match=r"^margin must be 0 or more"):
            Update(margin=margin)


def test_mcnemar_is_the_exact_one_sided_binomial_on_the_discordant_records() -> None:
    champion = np.array([True] * 100 + [False] * 41 + [True] * 12 + [False] * 7)
    challenger = np.array([True] * 100 + [True] * 41 + [False] * 12 + [False] * 7)
    p, wins, losses = mcnemar(champion, challenger)
    assert (wins, losses) == (41, 12)
    assert p == pytest.approx(sum(math.comb(53, k) for k in range(41, 54)) / 2**53)
    # one-sided: the other way round is no evidence at all; records both got right or wrong do not count
    assert mcnemar(challenger, champion)[0] > 0.99
    assert mcnemar(champion[:100], challenger[:100]) == (1.0, 0, 0)


def test_the_bootstrap_is_paired_and_does_not_promote_a_noisy_copy() -> None:
    rng = np.random.default_rng(0)
    errors = rng.exponential(size=(8, 1500))
    # a noisy copy of the champion, no better: the plain "lower RMSE" wins 3 of the 8 seeds, the test none
    plain = significant = 0
    for seed, champion in enumerate(errors):
        challenger = champion * (1 + np.random.default_rng(seed + 100).normal(0, 0.1, champion.shape))
        plain += np.sqrt(challenger.mean()) < np.sqrt(champion.mean())
        significant += paired_bootstrap(champion, challenger, seed=0) < 0.05
    assert plain == 3 and significant == 0
    # 1% lower on every record: invisible to two independent resamples (the spread between records is far
    # larger), certain to a paired one, which draws the same records for both
    champion = errors[0]
    assert paired_bootstrap(champion, champion * 0.99) == pytest.approx(1 / (RESAMPLES + 1))
    unpaired_gain = [np.sqrt(champion[rng.integers(0, 1500, 1500)].mean())
                     - np.sqrt((champion * 0.99)[rng.integers(0, 1500, 1500)].mean()) for _ in range(200)]
    assert np.mean(np.array(unpaired_gain) <= 0) > 0.3
    # fixed seed: the same p every time; no difference: p = 1
    assert paired_bootstrap(champion, champion * 1.001, seed=4) == paired_bootstrap(champion, champion * 1.001, seed=4)
    assert paired_bootstrap(champion, champion) == 1.0


# --------------------------------------------------------------------------------------- the seed's update path
SEED_MAIN = '''
from pathlib import Path

import numpy as np
from PIL import Image

from blase_tui import Train, Update, step


def images(folder, n, seed, prefix):
    """8x8 grey images in class folders 0 and 1: class 0 bright on top, class 1 bright at the bottom."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        label = i % 2
        pixels = rng.integers(0, 60, (8, 8)).astype(np.uint8)
        pixels[label * 4:label * 4 + 4, :] = 200
        target = Path(folder) / str(label)
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(target / f"{prefix}_{i:03d}.png")


@step
def make_images(ctx):
    """The base's images, and the new ones in raw_data/ (class folders, as the seed has them)."""
    images("data/raw/images", 40, 0, "base")
    images("raw_data", 100, 1, "new")


@step
def train(ctx, name: str = "trained_model"):
    """The seed's train step saves models/trained_model.<suffix>: registered as trained_model v1, no models/v1/."""
    from sklearn.linear_model import LogisticRegression

    trainer = Train(seed=0)
    trainer.set_model(LogisticRegression(), framework="sklearn")
    trainer.train(epochs=1, data_dir="data/raw/images")
    trainer.save_model(f"models/{name}.pkl")


@step
def update(ctx, base: str = "models/v1/"):
    """Seed 000's update step, as written."""
    Update().run(base_model_path=base, new_data_path="raw_data/", update_mode="append_only",
                 transform_fn="transforming.clean_features", evaluate_after=True)
'''

TRANSFORMING = '''
import numpy as np


def clean_features(batch):
    """New images as the base trained on them: uint8 pixels, blank images left out."""
    keep = batch["image"].reshape(len(batch), -1).max(axis=1) > 0
    return {"image": batch["image"][keep].astype(np.uint8), "label": batch["label"][keep]}
'''


def test_the_seeds_models_v1_is_the_registered_model_and_its_new_images_are_read_with_their_labels(
        tmp_path: Path) -> None:
    """Nobody made models/v1/: it is trained_model v1 (said in one line); the new images in raw_data/0 and
    raw_data/1 are read as images labelled by their folders (the challenger learns from them: right on the
    held-out ones). A version that does not exist, and several model names, are one line each."""
    project = make_project(tmp_path / "seed", main_src=SEED_MAIN, toml=TOML)
    (project / "scripts").mkdir()
    (project / "scripts" / "transforming.py").write_text(TRANSFORMING)
    for step in ("make_images", "train"):
        run_blase("step", step, cwd=project, check=True, timeout=120)
    assert not (project / "models" / "v1").exists()

    decision, metrics, said = _update(project)
    assert "models/v1/ does not exist; using trained_model v1, the project's registered model" in said
    assert re.search(r"trained_model v2 accuracy \d\.\d+ (beats|does not beat) trained_model v1", said), said
    assert decision["base"] == "trained_model v1" and decision["test"] == "mcnemar"
    card = json.loads(run_blase("models", "show", "trained_model:2", "--json", cwd=project, check=True).stdout)["card"]
    assert card["update"]["base"] == "trained_model v1" and card["update"]["data_added"] == "raw_data"
    assert card["update"]["records_added"] + card["update"]["records_held_out"] == 100  # every new image
    assert card["classes"] == ["0", "1"]  # the folders' names, for the base's images and the new ones alike
    # the held-out new images (the base had no test split), labelled by their folders: both models get them right
    assert decision["records"] == card["update"]["records_held_out"] > 0
    assert decision["challenger_score"] == decision["champion_score"] == 1.0
    assert decision["p_value"] == 1.0 and not decision["promoted"]
    run = show_json(run_blase, project, "latest")
    assert "raw_data" in {d["path"] for d in run["steps"][0]["datasets"] if d["role"] == "input"}

    proc = run_blase("step", "update", "--set", "base=models/v3/", cwd=project, timeout=200)
    assert proc.returncode == 1
    assert ("models/v3/ does not exist and trained_model, the project's registered model, has no version 3 (it has"
            " v1, v2); give one of those, such as \"models/v2/\" or \"trained_model:2\"") in proc.stderr, proc.stderr
    run_blase("step", "train", "--set", "name=other", cwd=project, check=True, timeout=120)
    # (--force: the same code, params and inputs as the first update; the registry is not an input)
    proc = run_blase("step", "update", "--force", cwd=project, timeout=200)
    assert proc.returncode == 1
    assert ("models/v1/ does not exist and the project has several registered models (other, trained_model); give"
            " base_model_path as name:1, such as \"other:1\"") in proc.stderr, proc.stderr
