"""Seed 000's main.py is our public contract: copied unchanged but for its import line into a project with its own
scripts, 300 PNGs in class folders and a Keras base model, and run the seed's way (`python main.py --step etl
--start_run` ... `--step evaluate --end_run`, each a separate process), every step does what its docstring says
and one run holds six step executions with their params, inputs, outputs, per-step metrics and a code
snapshot. `blase step` on the same main.py gives the same records."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, _env, show_json
from PIL import Image

SEED = REPO / "tests" / "data" / "seed_000_api_vision.txt"  # a copy of shared/seeds/000_*
STEPS = ["etl", "inspect", "clean", "prepare", "train", "evaluate"]
ALL_STEPS = [*STEPS, "deploy", "monitor", "update"]

ENGINEER = '''
import numpy as np


def example_func(batch):
    """Scale pixels to [0, 1]."""
    return {"image": batch["image"].astype(np.float32) / 255.0, "label": batch["label"]}


def filter_bad_images(batch):
    """Blank images carry nothing: exclude them."""
    return batch["image"].reshape(len(batch), -1).max(axis=1) == 0
'''

MODEL = '''
import keras

keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input(shape=(12, 12)),
    keras.layers.Reshape((12, 12, 1)),
    keras.layers.Rescaling(1 / 255),
    keras.layers.Conv2D(4, 3, activation="relu", name="conv1"),
    keras.layers.Conv2D(4, 3, activation="relu", name="conv2"),
    keras.layers.Flatten(),
    keras.layers.Dense(3, activation="softmax", name="head"),
])
'''


def seed_main() -> str:
    """The seed's main.py, exactly as written, with only the import line changed."""
    text = SEED.read_text()
    start = text.index("```sh\n# main.py") + len("```sh\n")
    code = text[start:text.index("```", start)]
    assert code.count("from blase import ") == 1
    return code.replace("from blase import ", "from blase_tui import ")


def make_seed_project(root: Path) -> Path:
    (root / "scripts").mkdir(parents=True)
    (root / "blase.toml").write_text('[project]\nname = "seedproj"\nmemory_budget = "256MiB"\n')
    (root / "main.py").write_text(seed_main())
    (root / "scripts" / "__init__.py").write_text("")
    (root / "scripts" / "engineer.py").write_text(ENGINEER)
    (root / "scripts" / "model.py").write_text(MODEL)
    rng = np.random.default_rng(0)
    for i in range(300):
        label = i % 3
        folder = root / "data" / "raw" / "images" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 30, (12, 12)).astype(np.uint8)
        pixels[label * 4:label * 4 + 4, :] = 255  # a bright band whose place tells the class
        if i in (7, 123):
            pixels[:] = 0  # blank: the clean step excludes these two
        Image.fromarray(pixels).save(folder / f"img_{i:03d}.png")
    # the fine-tuning start point, made as the user would: the same architecture, saved as legacy HDF5
    subprocess.run([sys.executable, "-c", "from scripts.model import model; model.save('models/base_model.h5')"],
                   cwd=root, env=_env(), check=True, capture_output=True, timeout=120)
    (root / "models" / "base_model.h5").parent.mkdir(exist_ok=True)
    return root


def python_main(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "main.py", *args], cwd=project, env=_env(), capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


def records(blase, project: Path, run_id: str) -> dict[str, dict[str, object]]:
    """Per step: status, param keys and values, input and output paths, metric names."""
    run = show_json(blase, project, run_id)
    out = {}
    for s in run["steps"]:
        out[s["step"]] = {
            "status": s["status"],
            "params": s["params"],
            "inputs": sorted(d["path"] for d in s["datasets"] if d["role"] == "input"),
            "outputs": sorted(d["path"] for d in s["datasets"] if d["role"] == "output"),
            "metrics": sorted(s["metrics"]),
        }
    return out


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The seed's nine steps, run the seed's way as separate processes under one run, once for the tests
    below: etl --start_run ... evaluate, deploy; then, with the priors, live traffic and new data the seed's
    paths name (made here, as a user would), monitor and update --end_run."""
    project = make_seed_project(tmp_path_factory.mktemp("seed") / "project")
    pristine = tmp_path_factory.mktemp("pristine") / "project"
    shutil.copytree(project, pristine)
    plain = tmp_path_factory.mktemp("plain") / "project"
    shutil.copytree(project, plain)
    # the same six steps by `blase step` and as plain scripts, in their own copies, alongside (two cores)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        by_blase = pool.submit(_blase_step_chain, pristine)
        by_plain = pool.submit(_plain_script_chain, plain)
        procs = {}
        for step in STEPS + ["deploy"]:
            procs[step] = python_main(project, "--step", step, *(["--start_run"] if step == "etl" else []))
        if all(p.returncode == 0 for p in procs.values()):
            _monitor_and_update_inputs(project)
            procs["monitor"] = python_main(project, "--step", "monitor")
            procs["update"] = python_main(project, "--step", "update", "--end_run")
        return {"project": project, "pristine": pristine, "plain": plain, "procs": procs,
                "blase_procs": by_blase.result(), "plain_procs": by_plain.result()}


def _blase_step_chain(project: Path) -> dict[str, subprocess.CompletedProcess]:
    from conftest import run_blase

    out = {}
    for step in STEPS:
        args = ["step", step] + (["--start-run"] if step == "etl" else []) + (["--end-run"] if step == "evaluate" else [])
        out[step] = run_blase(*args, cwd=project, timeout=600)
        if out[step].returncode != 0:
            break
    return out


def _plain_script_chain(project: Path) -> dict[str, subprocess.CompletedProcess]:
    out = {}
    for i, step in enumerate(STEPS):
        script = f"run_{step}.py"
        (project / script).write_text(PLAIN_SCRIPT.format(step=step, first=i == 0, last=i == len(STEPS) - 1))
        out[step] = subprocess.run([sys.executable, script], cwd=project, env=_env(), capture_output=True,
                                   text=True, timeout=600)
        if out[step].returncode != 0:
            break
    return out


PLAIN_SCRIPT = """
from blase_tui import Track
from main import {step}

track = Track()
if {first}:
    track.start_run()
{step}()
if {last}:
    track.end_run()
"""


TRANSFORMING = '''
import numpy as np


def clean_features(batch):
    """New images as the base trained on them: uint8 pixels, blank images left out."""
    keep = batch["image"].reshape(len(batch), -1).max(axis=1) > 0
    return {"image": batch["image"][keep].astype(np.uint8), "label": batch["label"][keep]}
'''


def _monitor_and_update_inputs(project: Path) -> None:
    """What a user brings to the seed's monitor and update steps, and nothing blase should make itself: live
    traffic to the served deployment (half of it brightened: drift), new images in raw_data/ and
    scripts/transforming.py. No priors/ folder and no models/v1/: the priors are those the train step recorded
    for trained_model v1, and models/v1/ names that version."""
    from conftest import Server

    rng = np.random.default_rng(0)
    images = np.stack([np.asarray(Image.open(p)) for p in sorted((project / "data" / "raw" / "images").rglob("*.png"))])
    server = Server(project, "deployments/my_model_v2")
    try:
        live = images[rng.choice(len(images), 200)]
        live[100:] = np.clip(live[100:].astype(int) + 120, 0, 255).astype(np.uint8)
        for chunk in np.array_split(live, 10):
            assert server.post({"instances": chunk.tolist()})[0] == 200
    finally:
        server.stop()
    for i in range(150):
        label = i % 3
        folder = project / "raw_data" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 30, (12, 12)).astype(np.uint8)
        pixels[label * 4:label * 4 + 4, :] = 255
        Image.fromarray(pixels).save(folder / f"new_{i:03d}.png")
    (project / "scripts" / "transforming.py").write_text(TRANSFORMING)
    assert not (project / "priors").exists() and not (project / "models" / "v1").exists()


def test_seed_main_runs_as_written(seed_run: dict, blase) -> None:
    project: Path = seed_run["project"]
    procs = seed_run["procs"]
    for step in ALL_STEPS:
        assert step in procs, f"{step} did not run: an earlier step failed"
        assert procs[step].returncode == 0, f"{step}:\n{procs[step].stdout}\n{procs[step].stderr}"

    # each step's params hash covers the params its module calls recorded: steps whose params differ differ
    shown = json.loads(blase("runs", "show", "latest", "--json", cwd=project, check=True).stdout)
    hashes = {s["step"]: s["signature"]["params_hash"] for s in shown["steps"]}
    assert len(set(hashes.values())) == len(hashes) == len(ALL_STEPS), hashes
    # etl: every image transformed and saved
    processed = json.loads((project / "data" / "interim" / "processed_images" / "_manifest.json").read_text())
    assert processed["records"] == 300
    # clean saved its set under the seed's name; prepare found it and left the two blank images out
    prepared = json.loads((project / "data" / "prepared" / "_manifest.json").read_text())
    assert prepared["exclusion_sets"] == ["cleaned_v1"] and prepared["excluded"] == 2
    assert sum(prepared["counts"].values()) == 298
    # train wrote exactly the file asked for, in the format its suffix names (legacy Keras HDF5)
    model = project / "models" / "trained_model.h5"
    assert model.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    assert not (project / "models" / "trained_model.keras").exists()
    assert json.loads((project / "logs" / "train_run_001.json").read_text())["mode"] == "fine_tune"
    # evaluate: the seed names models/my_model.h5, which nobody wrote; it says which model it used instead
    assert "models/my_model.h5 does not exist; evaluating models/trained_model.h5" in procs["evaluate"].stderr
    evaluation = json.loads((project / "logs" / "eval_run_001.json").read_text())
    assert evaluation["model"] == "models/trained_model.h5" and evaluation["records"] == prepared["counts"]["test"]
    assert 0 <= evaluation["accuracy"] <= 1 and evaluation["classes"] == ["0", "1", "2"]
    # fine-tuning started from the base model's weights and kept conv1 and conv2 frozen; the head learned
    compare = (
        "import json, keras, numpy as np\n"
        "base = keras.models.load_model('models/base_model.h5', compile=False)\n"
        "new = keras.models.load_model('models/trained_model.h5', compile=False)\n"
        "print(json.dumps({l.name: all(np.array_equal(a, b) for a, b in zip(l.get_weights(),"
        " new.get_layer(l.name).get_weights())) for l in base.layers if l.get_weights()}))\n"
    )
    same = json.loads(subprocess.run([sys.executable, "-c", compare], cwd=project, env=_env(), check=True,
                                     capture_output=True, text=True, timeout=120).stdout)
    assert same == {"conv1": True, "conv2": True, "head": False}
    # the seed trains on every raw image, the test split included: evaluate says so and scores all the same
    assert f"{evaluation['records']} of the {evaluation['records']} test records were used for training" in \
        procs["evaluate"].stderr

    runs = json.loads(blase("runs", "list", "--json", cwd=project, check=True).stdout)
    assert len(runs) == 1, "the nine processes made one run"
    run = show_json(blase, project, runs[0]["id"])
    assert run["status"] == "succeeded" and run["explicit"]
    assert [s["step"] for s in run["steps"]] == ALL_STEPS
    assert all(s["status"] == "succeeded" and s["exit_code"] == 0 for s in run["steps"])
    assert all(s["signature"]["code_hash"] and s["peak_rss"] for s in run["steps"])
    by_step = {s["step"]: s for s in run["steps"]}

    train = by_step["train"]
    assert train["params"]["epochs"] == 10 and train["params"]["data_dir"] == "data/raw/images"
    assert train["params"]["optimizer"] == "adam" and train["params"]["loss_fn"] == "categorical_crossentropy"
    assert train["params"]["mode"] == "fine_tune" and train["params"]["checkpoint_path"] == "models/base_model.h5"
    assert train["params"]["freeze_layers"] == ["conv1", "conv2"] and train["params"]["framework"] == "tensorflow"
    inputs = {d["path"] for d in train["datasets"] if d["role"] == "input"}
    outputs = {d["path"] for d in train["datasets"] if d["role"] == "output"}
    assert {"models/base_model.h5", "data/raw/images"} <= inputs
    assert {"models/trained_model.h5", "logs/train_run_001.json"} <= outputs
    assert {"loss", "accuracy"} <= set(train["metrics"])
    assert "froze" in (project / "runs" / run["id"] / "train" / "log.txt").read_text()

    prep = by_step["prepare"]
    assert {k: prep["params"][k] for k in ("train", "val", "test", "seed")} == {"train": 0.7, "val": 0.2, "test": 0.1,
                                                                                "seed": 42}
    assert prep["params"]["output_format"] == "npy" and prep["params"]["exclusion_keys"] == "cleaned_v1"
    assert "data/prepared" in [d["path"] for d in prep["datasets"] if d["role"] == "output"]
    evaluate = by_step["evaluate"]
    assert {"data/prepared/test", "models/trained_model.h5"} <= {d["path"] for d in evaluate["datasets"]
                                                                  if d["role"] == "input"}
    assert "logs/eval_run_001.json" in {d["path"] for d in evaluate["datasets"] if d["role"] == "output"}
    assert "accuracy" in evaluate["metrics"] and "accuracy" in train["metrics"]
    assert {"summary.json"} <= {a["name"] for a in by_step["inspect"]["artifacts"]}

    # metrics keep the step that logged them in the run's list: train's accuracy and evaluate's side by side
    listed = json.loads(blase("runs", "list", "--json", cwd=project, check=True).stdout)[0]
    assert listed["metrics"]["train/accuracy"] == train["metrics"]["accuracy"]
    assert listed["metrics"]["evaluate/accuracy"] == evaluate["metrics"]["accuracy"]

    # --end_run kept the scripts with the run
    code = {a["name"]: a["hash"] for a in run["artifacts"]}
    assert {"code/main.py", "code/scripts/engineer.py", "code/scripts/model.py"} <= set(code)
    assert (project / "runs" / run["id"] / "artifacts" / "code" / "main.py").read_text() == (project / "main.py").read_text()

    found = blase("runs", "find", "--step", "train", "--latest", "--path", cwd=project, check=True)
    assert found.stdout.strip() == str(project / "runs" / run["id"])


def test_blase_step_gives_the_same_records(seed_run: dict, blase) -> None:
    """`blase step NAME` on the seed's main.py (no @step: its plain functions are the steps) records what the
    seed's own main() recorded."""
    seed_project: Path = seed_run["project"]
    project: Path = seed_run["pristine"]
    for step in STEPS:
        proc = seed_run["blase_procs"].get(step)
        assert proc is not None and proc.returncode == 0, f"{step}: {proc.stderr if proc else 'did not run'}"
    ours = records(blase, project, "latest")
    seeds = records(blase, seed_project, "latest")
    assert list(ours) == STEPS and list(seeds) == ALL_STEPS
    for step in STEPS:
        assert ours[step]["status"] == seeds[step]["status"] == "succeeded"
        assert ours[step]["params"] == seeds[step]["params"], step
        assert ours[step]["inputs"] == seeds[step]["inputs"], step
        assert ours[step]["outputs"] == seeds[step]["outputs"], step
        assert ours[step]["metrics"] == seeds[step]["metrics"], step




def test_plain_scripts_with_track_give_the_same_records(seed_run: dict, blase) -> None:
    """The same steps as plain scripts (`python run_etl.py`: the seed's functions and Track, no argparse, no
    `--step`): each script is a step execution named after its file, in one run. (A script named inspect.py
    would hide Python's own `inspect` module, hence the prefix.)"""
    project: Path = seed_run["plain"]
    for step in STEPS:
        proc = seed_run["plain_procs"].get(step)
        assert proc is not None and proc.returncode == 0, f"{step}: {proc.stderr if proc else 'did not run'}"
    ours = records(blase, project, "latest")
    seeds = records(blase, seed_run["project"], "latest")
    assert list(ours) == [f"run_{step}" for step in STEPS]
    for step in STEPS:
        assert ours[f"run_{step}"] == seeds[step], step


def test_a_second_start_run_is_refused_in_one_line(seed_run: dict, blase) -> None:
    project: Path = seed_run["pristine"]
    first = python_main(project, "--step", "inspect", "--start_run")
    assert first.returncode == 0, first.stderr
    second = python_main(project, "--step", "inspect", "--start_run")
    assert second.returncode == 2
    assert second.stderr.strip().splitlines()[-1].startswith("blase: run ") and "is still open" in second.stderr
    assert "Traceback" not in second.stderr
    run = show_json(blase, project, "latest")
    assert [s["step"] for s in run["steps"]] == ["inspect"] and run["status"] == "running", \
        "the refused start left the open run as it was"
    assert blase("runs", "close", run["id"], cwd=project).returncode == 0
    assert show_json(blase, project, run["id"])["status"] == "succeeded"


def test_the_seeds_deploy_step_serves_the_trained_model(seed_run: dict, blase) -> None:
    """`python main.py --step deploy` as the seed wrote it: `model` is the architecture object from
    scripts/model.py, untrained in that process; the deployment holds the model the train step trained, says
    so in one line, is archived, and `blase serve` answers with the trained model's predictions."""
    from conftest import Server

    project: Path = seed_run["project"]
    proc = seed_run["procs"]["deploy"]
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"deployed trained_model v1 to deployments/my_model_v2/? \(docker\): the Sequential passed was"
                     r" not trained in this process", proc.stderr), proc.stderr
    folder = project / "deployments" / "my_model_v2"
    manifest = json.loads((folder / "deployment.json").read_text())
    seed_run_record = show_json(blase, project, "latest")  # the one run of the nine steps
    assert manifest["model"]["name"] == "trained_model" and manifest["model"]["framework"] == "tensorflow"
    assert manifest["deployed_by_run"] == seed_run_record["id"]
    assert (folder / "Dockerfile").is_file() and (folder / "api.py").is_file()
    # the trained weights, not the untrained architecture the step passed
    assert (folder / "model" / "trained_model.h5").read_bytes() == (project / "models" / "trained_model.h5").read_bytes()
    archive = project / "deployments" / "my_model_v2.zip"
    assert blase("deploy", "verify", str(archive), cwd=project).returncode == 0
    deploy_step = next(s for s in seed_run_record["steps"] if s["step"] == "deploy")
    assert {"deployments/my_model_v2", "deployments/my_model_v2.zip"} <= {
        d["path"] for d in deploy_step["datasets"] if d["role"] == "output"}

    images = np.stack([np.asarray(Image.open(p)) for p in sorted((project / "data" / "raw" / "images").rglob("*.png"))[:12]])
    expected = json.loads(subprocess.run(
        [sys.executable, "-c", "import json, sys, numpy as np\nfrom blase_tui import models\n"
         "m = models.load('trained_model:1')  # the trained model, fed as blase feeds it in train and evaluate\n"
         "x = np.asarray(json.load(sys.stdin), dtype=np.uint8)\n"
         "print(json.dumps(m.predict_proba(x).tolist()))"],
        input=json.dumps(images.tolist()), cwd=project, env=_env(), check=True, capture_output=True, text=True,
        timeout=120).stdout)
    server = Server(project, "deployments/my_model_v2", "--no-log")
    try:
        status, body = server.post({"instances": images.tolist(), "params": {"probabilities": True}})
    finally:
        server.stop()
    assert status == 200, body
    assert np.allclose(body["probabilities"], expected, atol=1e-5)
    assert body["predictions"] == [str(i) for i in np.argmax(expected, axis=1)]



def test_monitor_and_update_run_as_written(seed_run: dict, blase) -> None:
    """The seed's monitor step over the served model's traffic flags the brightened half and says "Retraining
    condition met!"; its update step trains trained_model v2 from models/v1/ and the new images and decides."""
    project: Path = seed_run["project"]
    procs = seed_run["procs"]
    assert "monitor" in procs and "update" in procs, "an earlier step failed"
    monitor, update = procs["monitor"], procs["update"]
    assert monitor.returncode == 0, monitor.stderr
    assert "Retraining condition met!" in monitor.stdout + monitor.stderr
    assert update.returncode == 0, update.stderr
    trained = re.search(r"trained trained_model v2 from trained_model v1 \(append_only\) with (\d+) new records \((\d+)"
                        r" more held out to judge it\)", update.stderr)
    assert trained and int(trained.group(1)) + int(trained.group(2)) == 150, update.stderr
    assert re.search(r"trained_model v2 accuracy \d\.\d+ (beats|does not beat) trained_model v1", update.stderr)
    run = show_json(blase, project, "latest")
    by_step = {s["step"]: s for s in run["steps"]}
    # the image priors the train step recorded stand in for the missing priors/ files, and flag the brightening
    assert "priors/features.json does not exist; using the features priors trained_model v1 recorded" in monitor.stderr
    assert "priors/predictions.json does not exist; using the predictions priors trained_model v1 recorded" in \
        monitor.stderr
    metrics = by_step["monitor"]["metrics"]
    assert metrics["drift/share"] > 0
    assert metrics["drift/image.brightness/p"] < 1e-6, "the brightened half moved the brightness descriptor"
    assert "drift/embedding/mmd" in metrics, "the model's embedding was tested"
    # update: models/v1/ names trained_model v1, and its McNemar test decides
    assert "models/v1/ does not exist; using trained_model v1, the project's registered model" in update.stderr
    assert "update/challenger_accuracy" in by_step["update"]["metrics"]
    assert "update/p_value" in by_step["update"]["metrics"]
    assert "raw_data" in {d["path"] for d in by_step["update"]["datasets"] if d["role"] == "input"}
