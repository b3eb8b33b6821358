"""Models get a home (issue 25): a model file trained outside blase (``joblib.dump`` of a LogisticRegression
fitted on a DataFrame) deploys by `blase deploy` and by seed 000's ``Deploy.deploy_model`` call, serves with its
columns and classes read from the model, answers the same from `blase serve`, ``models.load`` and the
registry; missing values reach models that take them and get a 422 naming the column from those that do not;
bare NaN in a JSON body (as MLflow's client writes it) is read; a headerless CSV loses no record; the
framework/suffix table exists once."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, Server, _env, make_project, request, run_blase

pytestmark = pytest.mark.timeout(300)

MAKE = '''
import os

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(0)
x = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
y = (x.a + x.b > 0).astype(int)
os.makedirs("models", exist_ok=True)
joblib.dump(LogisticRegression().fit(x, y), "models/lr.joblib")
joblib.dump(HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, y), "models/hgb.joblib")
rows = pd.DataFrame(np.random.default_rng(1).normal(size=(50, 3)), columns=["a", "b", "c"])
rows.to_csv("rows.csv", index=False)
'''

MAIN = '''
import numpy as np
import pandas as pd

from blase_tui import Deploy, Evaluate, Load, step
from blase_tui.modules.batch import Batch, BatchMeta


@step
def deploy(ctx):
    """Seed 000's own call, with a file trained elsewhere."""
    Deploy().deploy_model(model="models/lr.joblib", save_path="deployments/seed", framework="sklearn")


@step
def evaluate(ctx):
    """Evaluate's predictions for the same 50 rows."""
    rows = pd.read_csv("rows.csv")
    x = rows.to_numpy(dtype=np.float64)
    batch = Batch([str(i) for i in range(len(x))], {"features": x, "label": (x[:, 0] > 0).astype(np.int64)},
                  BatchMeta("rows", 0))
    Load().save_to_filesystem(batch, "data/rows")
    Evaluate().evaluate_live(model_path="models/hgb.joblib", test_data_dir="data/rows", task_type="classification",
                             save_preds=True)
'''

TWO = {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[2.0, 2.0, 0.0], [-2.0, -2.0, 0.0]]}}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_project(tmp_path_factory.mktemp("home") / "proj", MAIN)
    subprocess.run([sys.executable, "-c", MAKE], cwd=root, check=True, env=_env())
    return root


def _formats() -> list[tuple[str, str]]:
    rows = TWO["dataframe_split"]["data"]
    records = [dict(zip("abc", r, strict=True)) for r in rows]
    return [
        (json.dumps(TWO), "application/json"),
        (json.dumps({"dataframe_records": records}), "application/json"),
        (json.dumps({"instances": records}), "application/json"),
        (json.dumps({"instances": rows}), "application/json"),
        (json.dumps({"inputs": {c: [r[i] for r in rows] for i, c in enumerate("abc")}}), "application/json"),
        ("a,b,c\n2,2,0\n-2,-2,0\n", "text/csv"),
        ("2,2,0\n-2,-2,0\n", "text/csv"),  # no header line: both lines are records
    ]


def test_a_joblib_file_deploys_by_the_cli_only_when_trusted(home: Path) -> None:
    refused = run_blase("deploy", "models/lr.joblib", "deployments/cli", cwd=home)
    assert refused.returncode == 2, refused.stderr
    assert "models/lr.joblib is a pickle" in refused.stderr and "--trust" in refused.stderr
    assert "Traceback" not in refused.stderr and not (home / "deployments" / "cli").exists()
    done = run_blase("deploy", "models/lr.joblib", "deployments/cli", "--trust", "--archive", "zip", cwd=home)
    assert done.returncode == 0, done.stderr
    assert "registered as lr v" in done.stdout and "blase serve deployments/cli" in done.stdout
    signature = json.loads((home / "deployments" / "cli" / "signature.json").read_text())
    assert signature["inputs"]["kind"] == "columns"
    assert [c["name"] for c in signature["inputs"]["columns"]] == ["a", "b", "c"]
    assert signature["classes"] == [0, 1]
    assert (home / "deployments" / "cli.zip").is_file()
    listed = json.loads(run_blase("models", "list", "--json", cwd=home, check=True).stdout)
    lr = [m for m in listed if m["name"] == "lr"]
    assert lr and lr[0]["framework"] == "sklearn"


@pytest.mark.parametrize("how", ["cli", "seed"])
def test_the_deployment_serves_one_answer_in_every_format(home: Path, how: str) -> None:
    if how == "seed":
        ran = run_blase("step", "deploy", cwd=home)
        assert ran.returncode == 0, ran.stderr
        folder = "deployments/seed"
    else:
        run_blase("deploy", "models/lr.joblib", "deployments/cli", "--trust", cwd=home, check=True)
        folder = "deployments/cli"
    assert (home / folder / "example.json").is_file()  # the README's curl sends it
    server = Server(home, folder, "--no-log")  # a registered version: serving asks nothing
    try:
        status, meta = request(server.url + "/metadata")
        assert status == 200
        assert [c["name"] for c in meta["signature"]["inputs"]["columns"]] == ["a", "b", "c"]
        for body, kind in _formats():
            status, answer = server.post(body, content_type=kind)
            assert status == 200, (body, answer)
            assert answer["predictions"] == [1, 0], (body, answer)
        for body, words in (('{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}', "missing column(s) c"),
                            ('{"instances": [[1, 2]]}', "the model takes 3 columns"),
                            ('{"instances": [["x", 1, 2]]}', "is not a number"),
                            ("not json", "not valid JSON"),
                            ('{"nothing": 1}', "give exactly one of")):
            status, answer = server.post(body)
            assert 400 <= status < 500 and words in answer["message"], (body, status, answer)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gaps(home: Path):
    """A HistGradientBoosting deployment (takes missing values) and a LogisticRegression one (does not), both
    served, for the tests of missing values."""
    for name in ("lr", "hgb"):
        run_blase("deploy", f"models/{name}.joblib", f"deployments/{name}", "--trust", cwd=home, check=True)
    hgb, lr = Server(home, "deployments/hgb", "--no-log"), Server(home, "deployments/lr", "--no-log")
    try:
        yield hgb, lr
    finally:
        hgb.stop()
        lr.stop()


def test_missing_values_reach_models_that_take_them_and_are_named_for_the_others(gaps) -> None:
    hgb, lr = gaps
    # bare NaN, as MLflow's own client writes a table with gaps (json.dumps allows it)
    body = json.dumps({"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1.0, float("nan"), 0.5]]}})
    assert "NaN" in body
    status, answer = hgb.post(body)
    assert status == 200 and len(answer["predictions"]) == 1, answer
    status, answer = lr.post(body)
    assert status == 422, answer
    assert answer["message"].startswith("column b: record 0 holds a missing value"), answer
    status, answer = lr.post(json.dumps({"instances": [{"a": 1.0, "b": None, "c": 0.5}]}))
    assert status == 422 and "column b" in answer["message"], answer
    status, answer = lr.post(json.dumps({"instances": [[1.0, float("inf"), 0.5]]}))
    assert status == 422 and "column b: record 0 holds an infinite value" in answer["message"], answer
    status, answer = lr.post("a,b,c\n1,,0.5\n", content_type="text/csv")  # an empty CSV cell
    assert status == 422 and "column b" in answer["message"], answer


def test_mlflows_own_client_gets_answers_with_gaps(gaps) -> None:
    pytest.importorskip("mlflow", reason="MLflow's scoring client comes with the blase-mlflow plugin")
    import pandas as pd
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    hgb, lr = gaps
    frame = pd.DataFrame({"a": [1.0, -1.0], "b": [np.nan, -1.0], "c": [0.0, 0.0]})
    answer = ScoringServerClient("127.0.0.1", hgb.port).invoke(frame)
    assert len(answer.get_predictions()) == 2
    with pytest.raises(Exception, match=r"error code 422.*column b"):
        ScoringServerClient("127.0.0.1", lr.port).invoke(frame)


LOAD = '''
import json, sys
import pandas as pd
from blase_tui import models
rows = pd.read_csv("rows.csv")
m = models.load(sys.argv[1])
print(json.dumps({"labels": m.predict(rows).tolist(), "proba": m.predict_proba(rows).tolist()}))
'''


def test_the_same_rows_get_the_same_answers_from_serve_and_models_load(home: Path) -> None:
    imported = run_blase("models", "import", "models/hgb.joblib", "--name", "gaps", "--trust", cwd=home)
    assert imported.returncode == 0 and "registered models/hgb.joblib as gaps v1" in imported.stdout, imported.stderr
    shown = json.loads(run_blase("models", "show", "gaps", "--json", cwd=home, check=True).stdout)
    card = shown["card"]
    assert card["feature_names"] == ["a", "b", "c"] and card["classes"] == [0, 1]
    assert card["imported_from"] == "models/hgb.joblib" and "training_run" not in card
    said = run_blase("models", "show", "gaps", cwd=home, check=True).stdout
    assert said.splitlines()[0].endswith("sklearn  imported from models/hgb.joblib"), said
    assert "input columns a, b, c" in said and "classes 0, 1" in said and "None" not in said
    loaded = subprocess.run([sys.executable, "-c", LOAD, "gaps"], cwd=home, env=_env(), capture_output=True,
                            text=True, check=True)
    local = json.loads(loaded.stdout)
    rows = (home / "rows.csv").read_text()
    server = Server(home, "gaps", "--no-log")
    try:
        status, answer = server.post(rows, content_type="text/csv")
        assert status == 200
        status, with_proba = server.post(json.dumps({"dataframe_split": {
            "columns": ["a", "b", "c"], "data": [[float(v) for v in line.split(",")] for line in rows.split()[1:]]},
            "params": {"probabilities": True}}))
    finally:
        server.stop()
    assert len(local["labels"]) == 50 and answer["predictions"] == local["labels"]
    assert np.allclose(with_proba["probabilities"], local["proba"])
    ran = run_blase("step", "evaluate", cwd=home)
    assert ran.returncode == 0, ran.stderr
    import pyarrow.parquet as pq

    found = sorted(home.glob("runs/*/evaluate/artifacts/**/predictions.parquet"))
    assert found, "Evaluate kept its predictions"
    evaluated = pq.read_table(found[-1]).to_pydict()
    order = np.argsort([int(k) for k in evaluated["key"]])
    assert [evaluated["pred"][i] for i in order] == [str(v) for v in local["labels"]]


def test_an_untrusted_pickle_is_never_opened_by_import(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    evil = home / "models" / "evil.pkl"
    evil.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    refused = run_blase("models", "import", "models/evil.pkl", "--name", "evil", cwd=home)
    assert refused.returncode == 2 and "--trust" in refused.stderr and "Traceback" not in refused.stderr
    assert not marker.exists(), "the pickle ran"
    missing = run_blase("models", "import", "models/nope.joblib", "--name", "x", cwd=home)
    assert missing.returncode == 2 and "models/nope.joblib: no such file" in missing.stderr
    # a damaged file, a file of no known kind, a missing one, a bad method: one line each, exit 2, no run left
    (home / "models" / "cut.joblib").write_bytes((home / "models" / "lr.joblib").read_bytes()[:200])
    (home / "notes.txt").write_text("not a model")
    before = run_blase("runs", "list", "--json", cwd=home, check=True).stdout.count('"failed"')
    for args, words in ((("deploy", "models/cut.joblib", "deployments/cut", "--trust"),
                         "models/cut.joblib is not a sklearn model blase can read"),
                        (("models", "import", "notes.txt", "--name", "n"), "cannot tell which framework saved notes.txt"),
                        (("deploy", "models/gone.joblib", "deployments/gone"), "no such file, and not a model name"),
                        (("models", "import", "models/hgb.joblib", "--name", "../../x", "--trust"),
                         "model name '../../x' cannot be used: it climbs out"),
                        (("models", "import", "models/hgb.joblib", "--name", "a@b", "--trust"),
                         "model name 'a@b' must be one plain name"),
                        (("deploy", "models/lr.joblib", "deployments/k", "--method", "k8s", "--trust"),
                         "--method must be one of folder, docker, venv")):
        proc = run_blase(*args, cwd=home)
        assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
    refused = run_blase("deploy", "models/evil.pkl", "deployments/evil", cwd=home)
    assert refused.returncode == 2 and "--trust" in refused.stderr and not marker.exists()
    after = run_blase("runs", "list", "--json", cwd=home, check=True).stdout.count('"failed"')
    # only the damaged file, found when its run opened it, left a failed run
    assert after - before == 1, "a refusal found before any run opens leaves no failed run"


def test_the_framework_and_suffix_table_exists_once() -> None:
    """Tables of model file suffixes live in blase_tui/models/frameworks.py only (a second table is how two
    places came to disagree on what a .joblib file is): no other line names two of them."""
    pattern = re.compile(r"""["']\.(?:joblib|pkl|skops|pth|keras|h5)["']""")
    found = []
    for path in sorted((REPO / "blase_tui").rglob("*.py")):
        if path.relative_to(REPO).as_posix() == "blase_tui/models/frameworks.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if len(set(pattern.findall(line))) >= 2:
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


TORCHSCRIPT = '''
import torch
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
torch.jit.save(torch.jit.script(net), "models/net.ts.pt")
print(net(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])).argmax(1).tolist())
'''


def test_a_torchscript_file_made_elsewhere_imports_and_serves_anywhere_without_trust(home: Path, tmp_path: Path
                                                                                    ) -> None:
    made = subprocess.run([sys.executable, "-c", TORCHSCRIPT], cwd=home, env=_env(), capture_output=True, text=True,
                          check=True)
    expected = json.loads(made.stdout.strip().splitlines()[-1])
    imported = run_blase("models", "import", "models/net.ts.pt", "--name", "scripted", cwd=home)
    assert imported.returncode == 0, imported.stderr  # TorchScript runs no Python from the file: no --trust
    done = run_blase("deploy", "scripted", "deployments/scripted", "--archive", "zip", cwd=home)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((home / "deployments" / "scripted" / "deployment.json").read_text())
    assert manifest["model"]["format"] == {"name": "torchscript", "runs_code": False}
    elsewhere = make_project(tmp_path / "elsewhere", "")
    server = Server(elsewhere, str(home / "deployments" / "scripted.zip"), "--no-log")
    try:
        status, answer = server.post(json.dumps({"instances": [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]}))
    finally:
        server.stop()
    assert status == 200 and answer["predictions"] == expected


ONNX = '''
import json
import numpy as np
from sklearn.linear_model import LogisticRegression
from skl2onnx import to_onnx
x = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
clf = LogisticRegression().fit(x, np.where(x[:, 0] + x[:, 1] > 0, "malignant", "benign"))
open("models/clf.onnx", "wb").write(to_onnx(clf, x[:1]).SerializeToString())
rows = np.random.default_rng(1).normal(size=(20, 3)).astype(np.float32)
print(json.dumps({"rows": rows.tolist(), "labels": clf.predict(rows).tolist()}))
'''


def test_an_onnx_model_made_elsewhere_serves_with_its_class_names(home: Path, tmp_path: Path) -> None:
    pytest.importorskip("skl2onnx", reason="skl2onnx (the test extra) exports the scikit-learn model to ONNX")
    made = subprocess.run([sys.executable, "-c", ONNX], cwd=home, env=_env(), capture_output=True, text=True,
                          check=True)
    expected = json.loads(made.stdout.strip().splitlines()[-1])
    imported = run_blase("models", "import", "models/clf.onnx", "--name", "onx", cwd=home)
    assert imported.returncode == 0, imported.stderr  # an ONNX graph runs no Python from the file: no --trust
    card = json.loads(run_blase("models", "show", "onx", "--json", cwd=home, check=True).stdout)["card"]
    assert card["classes"] == ["benign", "malignant"] and card["input"] == {"shape": [3], "dtype": "float32"}
    assert run_blase("deploy", "onx", "deployments/onx", "--archive", "zip", cwd=home).returncode == 0
    assert "onnxruntime==" in (home / "deployments" / "onx" / "requirements.txt").read_text()
    elsewhere = make_project(tmp_path / "elsewhere", "")
    server = Server(elsewhere, str(home / "deployments" / "onx.zip"), "--no-log")
    try:
        status, answer = server.post(json.dumps({"instances": expected["rows"], "params": {"probabilities": True}}))
    finally:
        server.stop()
    assert status == 200 and answer["predictions"] == expected["labels"]
    assert answer["classes"] == ["benign", "malignant"] and len(answer["probabilities"]) == 20
