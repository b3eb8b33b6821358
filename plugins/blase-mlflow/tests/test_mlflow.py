"""blase-mlflow (issue 15) against a real MLflow 3 SQLite store and a real `mlflow server` on loopback: blase runs
exported with identical params and full metric histories, the model loading with mlflow.pyfunc and predicting as
blase does, a second export changing nothing; a seed-003-style MLflow experiment imported and found with
`blase runs find`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("blase_mlflow", reason="blase-mlflow is not installed: pip install -e plugins/blase-mlflow")
import mlflow  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

pytestmark = pytest.mark.timeout(300)

MAIN = '''
import numpy as np

from blase_tui import Load, Train, step
from blase_tui.modules.batch import Batch, BatchMeta


def table(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    return Batch([f"{seed}-{i}" for i in range(n)], {"features": x, "label": y}, BatchMeta("t", 0))


@step
def prepare(ctx):
    """Splits."""
    Load().save_to_filesystem(table(300, 0), "data/prepared/train")
    Load().save_to_filesystem(table(100, 1), "data/prepared/val")


@step
def train(ctx, depth: int = 3):
    """A tree, and a metric with a history."""
    from sklearn.tree import DecisionTreeClassifier

    for i in range(5):
        ctx.log_metric("warmup", 1.0 / (i + 1), iteration=i)
    trainer = Train(seed=0)
    trainer.set_model(DecisionTreeClassifier(max_depth=depth, random_state=0), framework="sklearn")
    trainer.train(epochs=1, data_dir="data/prepared")
    trainer.save_model("models/tree.pkl")
'''


def blase(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "blase_tui", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240, stdin=subprocess.DEVNULL)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("mlflow") / "proj"
    root.mkdir()
    (root / "blase.toml").write_text('[project]\nname = "proj"\n')
    (root / "main.py").write_text(MAIN)
    blase("step", "prepare", cwd=root)
    blase("step", "train", "--set", "depth=4", cwd=root)
    uri = f"sqlite:///{root.parent / 'mlflow.db'}"
    proc = blase("mlflow", "export", "--all", "--tracking-uri", uri, cwd=root)
    assert proc.stdout.count("(created:") == 2, proc.stdout
    return root, uri


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _blase_runs(root: Path) -> list[dict]:
    return json.loads(blase("runs", "list", "--json", "--limit", "0", cwd=root).stdout)


def test_runs_arrive_with_identical_params_and_full_metric_histories(exported: tuple[Path, str]) -> None:
    root, uri = exported
    client = MlflowClient(uri)
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["proj"], filter_string="tags.`blase.kind` = 'step'",
                              output_format="list")
    by_step = {r.data.tags["blase.step"]: r for r in runs}
    assert set(by_step) == {"prepare", "train"}
    train_run = next(r for r in _blase_runs(root) if r["steps"][0]["step"] == "train")
    shown = json.loads(blase("runs", "show", train_run["id"], "--json", cwd=root).stdout)
    step = shown["steps"][0]
    child = by_step["train"]
    assert child.data.params == {k: v if isinstance(v, str) else json.dumps(v) for k, v in step["params"].items()}
    assert child.data.params["depth"] == "4"
    assert child.data.tags["mlflow.parentRunId"] and child.info.status == "FINISHED"
    history = client.get_metric_history(child.info.run_id, "warmup")
    assert [(m.step, m.value) for m in history] == [(i, 1.0 / (i + 1)) for i in range(5)]
    assert {m.timestamp for m in history} and all(m.timestamp > 1.7e12 for m in history)
    assert child.data.metrics["accuracy"] == pytest.approx(step["metrics"]["accuracy"])
    artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
    assert "log.txt" in artifacts
    parent = client.get_run(child.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["blase.run_id"] == train_run["id"] and parent.info.run_name == train_run["id"]


def test_the_model_loads_with_pyfunc_and_predicts_as_blase(exported: tuple[Path, str]) -> None:
    root, uri = exported
    script = (
        "import json, sys, mlflow, numpy as np\n"
        "from blase_tui import models\n"
        f"mlflow.set_tracking_uri({uri!r})\n"
        "x = np.random.default_rng(3).normal(size=(50, 4)).astype(np.float32)\n"
        "theirs = mlflow.pyfunc.load_model('models:/tree/1').predict(x)\n"
        "ours = models.load('tree:1').predict(x)\n"
        "print(json.dumps({'same': bool(np.array_equal(np.asarray(theirs), ours)), 'n': len(ours)}))\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"same": True, "n": 50}
    version = MlflowClient(uri).get_model_version("tree", "1")
    assert version.tags["blase.version"] == "1" and version.tags["blase.framework"] == "sklearn"


NATIVE = """
import json, sys
import numpy as np, mlflow
try:
    import blase_tui.models  # noqa: F401
    print(json.dumps({"blase": True}))
    sys.exit(0)
except ImportError:
    pass
mlflow.set_tracking_uri(sys.argv[1])
experiments = [e.experiment_id for e in mlflow.MlflowClient().search_experiments()]
found = mlflow.search_logged_models(experiment_ids=experiments, filter_string="name = 'tree-v1-sklearn'",
                                    output_format="list")
model = mlflow.sklearn.load_model(found[0].model_uri)
x = np.random.default_rng(3).normal(size=(50, 4)).astype(np.float32)
print(json.dumps({"blase": False, "labels": np.asarray(model.predict(x)).tolist()}))
"""


def test_the_export_runs_where_blase_is_not(exported: tuple[Path, str], tmp_path: Path) -> None:
    """The blase flavour lists the framework it needs and has a signature; the native scikit-learn flavour
    logged beside it loads in an environment with MLflow and scikit-learn but no blase, answering as blase."""
    import sysconfig

    import numpy as np

    root, uri = exported
    client = MlflowClient(uri)
    version = client.get_model_version("tree", "1")
    mlflow.set_tracking_uri(uri)  # a registered version's source is a logged model (models:/m-...) of this store
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=str(tmp_path / "dl")))
    requirements = (local / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements and "numpy==" in requirements
    assert mlflow.models.Model.load(str(local)).signature is not None
    venv = tmp_path / "no-blase"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    theirs = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    # the third-party packages of this environment, without the editable install that makes blase importable
    Path(theirs, "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([str(python), "-c", NATIVE, uri], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer["blase"] is False, "blase was importable: the check proves nothing"
    x = np.random.default_rng(3).normal(size=(50, 4)).astype(np.float32)
    ours = subprocess.run([sys.executable, "-c", "import json, sys, numpy as np; from blase_tui import models;"
                           " x = np.random.default_rng(3).normal(size=(50, 4)).astype(np.float32);"
                           " print(json.dumps(models.load('tree:1').predict(x).tolist()))"],
                          cwd=root, capture_output=True, text=True, check=True, timeout=120)
    assert answer["labels"] == json.loads(ours.stdout) and len(x) == 50


def test_a_second_export_changes_nothing(exported: tuple[Path, str]) -> None:
    root, uri = exported
    client = MlflowClient(uri)

    def state() -> tuple:
        exp = client.get_experiment_by_name("proj").experiment_id
        runs = client.search_runs([exp], max_results=100)
        points = sorted((r.info.run_id, k, len(client.get_metric_history(r.info.run_id, k)))
                        for r in runs for k in r.data.metrics)
        return len(runs), points, len(client.search_model_versions("name = 'tree'"))

    before = state()
    proc = blase("mlflow", "export", "--all", "--tracking-uri", uri, cwd=root)
    assert proc.stdout.count("(updated:") == 2 and "0 new metric point(s)" in proc.stdout
    assert state() == before


def test_runs_another_blase_project_exported_come_back_as_runs_with_their_steps(exported: tuple[Path, str],
                                                                                 tmp_path: Path) -> None:
    """Imported into another project, each exported run is one blase run again, its steps the children's
    executions (params, metric histories, status), not a run per parent and a run per step."""
    root, uri = exported
    other = tmp_path / "other"
    other.mkdir()
    (other / "blase.toml").write_text('[project]\nname = "other"\n')
    (other / "main.py").write_text("")
    proc = blase("mlflow", "import", "--experiment", "proj", "--tracking-uri", uri, cwd=other)
    theirs, ours = _blase_runs(root), _blase_runs(other)
    assert len(ours) == len(theirs) == 2, proc.stdout
    assert sorted(tuple(s["step"] for s in r["steps"]) for r in ours) == \
        sorted(tuple(s["step"] for s in r["steps"]) for r in theirs)
    original = next(r for r in theirs if [s["step"] for s in r["steps"]] == ["train"])
    copy = next(r for r in ours if [s["step"] for s in r["steps"]] == ["train"])
    shown = json.loads(blase("runs", "show", copy["id"], "--json", cwd=other).stdout)
    step = shown["steps"][0]
    assert step["status"] == "succeeded" and step["params"]["depth"] == 4
    assert step["metrics"]["warmup"] == pytest.approx(0.2) and "accuracy" in step["metrics"]
    found = blase("runs", "find", "--step", "train", "--param", "depth=4", cwd=other).stdout.strip()
    assert found == copy["id"] and copy["status"] == original["status"] == "succeeded"
    again = blase("mlflow", "import", "--experiment", "proj", "--tracking-uri", uri, cwd=other)
    assert len(_blase_runs(other)) == 2 and "(imported)" not in again.stdout


def test_a_real_mlflow_server_lists_them(exported: tuple[Path, str], tmp_path: Path) -> None:
    root, uri = exported
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host",
                               "127.0.0.1", "--port", str(port), "--workers", "1"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}/api/2.0/mlflow"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/experiments/get-by-name?experiment_name=proj", timeout=5) as r:
                    experiment = json.loads(r.read())["experiment"]["experiment_id"]
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the MLflow server did not start"
                time.sleep(0.5)
        body = json.dumps({"experiment_ids": [experiment], "filter": "tags.`blase.kind` = 'run'"}).encode()
        request = urllib.request.Request(f"{base}/runs/search", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as r:
            found = json.loads(r.read())["runs"]
        ids = {next(t["value"] for t in run["data"]["tags"] if t["key"] == "blase.run_id") for run in found}
        assert ids == {r["id"] for r in _blase_runs(root)}
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def test_a_seed_003_experiment_is_imported_and_found(tmp_path: Path) -> None:
    """Seed 003's user: runs with params, metric histories and a logged scikit-learn model in MLflow."""
    uri = f"sqlite:///{tmp_path / 'theirs.db'}"
    script = (
        "import mlflow, numpy as np\n"
        "from sklearn.linear_model import LogisticRegression\n"
        f"mlflow.set_tracking_uri({uri!r})\n"
        "mlflow.set_experiment('galaxy-morphology')\n"
        "x = np.random.default_rng(0).normal(size=(60, 3)); y = (x[:, 0] > 0).astype(int)\n"
        "for lr in (0.01, 0.1):\n"
        "    with mlflow.start_run(run_name=f'cnn_lr{lr}'):\n"
        "        mlflow.log_params({'learning_rate': lr, 'optimizer': 'adam'})\n"
        "        for epoch in range(5):\n"
        "            mlflow.log_metric('loss', 1.0 / (epoch + 1) + lr, step=epoch)\n"
        # pip_requirements: MLflow would otherwise spend ~10 s a model inferring them in a subprocess
        "        mlflow.sklearn.log_model(LogisticRegression().fit(x, y), name='model',"
        " pip_requirements=['scikit-learn'])\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    root = tmp_path / "proj"
    root.mkdir()
    (root / "blase.toml").write_text('[project]\nname = "proj"\n\n[plugins]\nenabled = ["mlflow"]\n\n'
                                     f'[plugins.mlflow]\ntracking_uri = "{uri}"\n')
    first = blase("mlflow", "import", "--experiment", "galaxy-morphology", cwd=root)
    assert "2 imported, 0 already here." in first.stdout
    again = blase("mlflow", "import", "--experiment", "galaxy-morphology", cwd=root)
    assert "0 imported, 2 already here." in again.stdout
    found = json.loads(blase("runs", "find", "--name", "cnn_lr0.01", "--param", "learning_rate=0.01", "--json",
                             cwd=root).stdout)
    assert len(found) == 1 and found[0]["params"]["optimizer"] == "adam"
    run = json.loads(blase("runs", "show", found[0]["id"], "--json", cwd=root).stdout)
    assert run["status"] == "succeeded" and run["metrics"]["loss"] == pytest.approx(0.2 + 0.01)
    assert run["tags"]["mlflow.experiment"] == "galaxy-morphology"
    assert any(a["name"].endswith("MLmodel") for a in run["artifacts"]), run["artifacts"]
    from blase_tui.core.project import Project

    store = Project.discover(root).store
    series = store.metric_series(found[0]["id"], 0, "loss")
    assert [(p.iteration, p.value) for p in series] == [(e, 1.0 / (e + 1) + 0.01) for e in range(5)]
    missing = blase("mlflow", "import", "--experiment", "nope", cwd=root, check=False)
    assert missing.returncode == 1 and "has no experiment 'nope'" in missing.stderr
    nothing = blase("mlflow", "export", cwd=root, check=False)
    assert nothing.returncode == 1 and nothing.stderr.strip() == "blase: name the runs to export, or --all (not both)."
    (root / "blase.toml").write_text('[project]\nname = "proj"\n')
    nowhere = blase("mlflow", "export", "--all", cwd=root, check=False)
    assert nowhere.returncode == 1 and "give --tracking-uri" in nowhere.stderr


def test_registered_models_and_aliases_come_across_and_serve(tmp_path: Path) -> None:
    """An MLflow registered model with an alias, imported with its run: `blase serve NAME@ALIAS` serves it,
    answering as the estimator does; an unknown name says so."""
    uri = f"sqlite:///{tmp_path / 'theirs.db'}"
    script = (
        "import mlflow, numpy as np, pandas as pd\n"
        "from mlflow.models import infer_signature\n"
        "from sklearn.linear_model import LogisticRegression\n"
        f"mlflow.set_tracking_uri({uri!r})\n"
        "mlflow.set_experiment('gnostic')\n"
        "x = pd.DataFrame(np.random.default_rng(0).normal(size=(80, 3)), columns=['a', 'b', 'c'])\n"
        "clf = LogisticRegression().fit(x, np.where(x.a + x.b > 0, 'malignant', 'benign'))\n"
        "with mlflow.start_run(run_name='fit'):\n"
        "    info = mlflow.sklearn.log_model(clf, name='model', signature=infer_signature(x, clf.predict(x)),"
        " pip_requirements=['scikit-learn'], registered_model_name='Production_Gnostic_Classifier',"
        " serialization_format='cloudpickle')\n"
        "mlflow.MlflowClient().set_registered_model_alias('Production_Gnostic_Classifier', 'champion', 1)\n"
        "print(clf.predict(pd.DataFrame([[2, 2, 0], [-2, -2, 0]], columns=['a', 'b', 'c'])).tolist())\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "'malignant', 'benign'" in proc.stdout
    root = tmp_path / "proj"
    root.mkdir()
    (root / "blase.toml").write_text('[project]\nname = "proj"\n')
    careful = blase("mlflow", "import", "--experiment", "gnostic", "--tracking-uri", uri, cwd=root)
    assert "left out: model.pkl is a pickle" in careful.stdout and "--trust" in careful.stdout, careful.stdout
    first = blase("mlflow", "import", "--experiment", "gnostic", "--tracking-uri", uri, "--trust", cwd=root)
    assert "MLflow model Production_Gnostic_Classifier version 1 as Production_Gnostic_Classifier v1" \
        " (registered, aliases champion)" in first.stdout, first.stdout
    again = blase("mlflow", "import", "--experiment", "gnostic", "--tracking-uri", uri, "--trust", cwd=root)
    assert "(already here" in again.stdout and "registered" not in again.stdout.split("already here.")[-1]
    shown = json.loads(blase("models", "show", "Production_Gnostic_Classifier@champion", "--json", cwd=root).stdout)
    assert shown["card"]["feature_names"] == ["a", "b", "c"] and shown["framework"] == "sklearn"
    unknown = blase("serve", "Nope@champion", cwd=root, check=False)
    assert unknown.returncode == 2 and "no model 'Nope'" in unknown.stderr
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "blase_tui", "serve", "Production_Gnostic_Classifier@champion",
                               "--port", str(port), "--no-log"], cwd=root, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        body = json.dumps({"dataframe_split": {"columns": ["a", "b", "c"], "data": [[2, 2, 0], [-2, -2, 0]]}})
        answer = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None and answer is None:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body.encode(),
                                             headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=30) as resp:
                    answer = json.loads(resp.read())
            except OSError:
                time.sleep(0.2)
        assert answer == {"predictions": ["malignant", "benign"]}, server.stderr.read() if server.poll() else answer
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_mirror_exports_each_run_as_it_closes_and_a_dead_server_never_fails_the_step(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "main.py").write_text(MAIN)
    uri = f"sqlite:///{tmp_path / 'mirror.db'}"
    (root / "blase.toml").write_text('[project]\nname = "proj"\n\n[plugins]\nenabled = ["mlflow"]\n\n'
                                     f'[plugins.mlflow]\ntracking_uri = "{uri}"\nmirror = true\n')
    blase("step", "prepare", cwd=root)
    run_id = _blase_runs(root)[0]["id"]

    def tag() -> str | None:
        shown = json.loads(blase("runs", "show", run_id, "--json", cwd=root).stdout)
        return shown["tags"].get("mlflow.mirror")

    deadline = time.monotonic() + 120
    while tag() is None:
        assert time.monotonic() < deadline, (root / ".blase" / "plugins.log").read_text()
        time.sleep(0.5)
    assert tag().startswith(f"{uri} run ")
    mlflow.set_tracking_uri(uri)
    found = mlflow.search_runs(experiment_names=["proj"], filter_string=f"tags.`blase.run_id` = '{run_id}'",
                               output_format="list")
    assert {r.data.tags["blase.kind"] for r in found} == {"run", "step"}

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    (root / "blase.toml").write_text('[project]\nname = "proj"\n\n[plugins]\nenabled = ["mlflow"]\n\n'
                                     f'[plugins.mlflow]\ntracking_uri = "http://127.0.0.1:{dead}"\nmirror = true\n')
    started = time.monotonic()
    proc = blase("step", "prepare", "--force", cwd=root)
    assert time.monotonic() - started < 30 and "mlflow" not in proc.stderr.lower()
    run_id = _blase_runs(root)[0]["id"]
    deadline = time.monotonic() + 120
    while tag() is None:
        assert time.monotonic() < deadline, (root / ".blase" / "plugins.log").read_text()
        time.sleep(0.5)
    assert tag().startswith("failed: ")
    lines = [line for line in (root / ".blase" / "plugins.log").read_text().splitlines() if run_id in line]
    assert len(lines) == 1 and f"not exported to MLflow at http://127.0.0.1:{dead}" in lines[0]
