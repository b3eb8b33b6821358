"""`Deploy` and `blase serve` (issue 13), with real servers on free loopback ports: a scikit-learn, a torch and a
Keras model registered from a step, deployed by a step, served from a folder, an archive and a registry
reference; predictions equal the in-step model's in every input format; bad payloads get a 4xx naming the
problem and the server goes on; the prediction log keeps complete files through a `kill -9`; the Dockerfile's
own command serves the deployment outside Docker."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import Server, _env, free_port, make_project, request, run_blase, wait_for

pytestmark = pytest.mark.timeout(300)

MAIN = '''
from pathlib import Path

import numpy as np
import pandas as pd

from blase_tui import Deploy, step

FEATURES = ["age", "income", "score"]


def table(n, seed):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)) * [10, 1000, 1] + [40, 5000, 0], columns=FEATURES)
    label = (frame["score"] + (frame["age"] - 40) / 10 > 0).astype(int) + (frame["income"] > 5800).astype(int)
    return frame, label.to_numpy()


@step
def tabular(ctx):
    """A HistGradientBoosting classifier on named columns, registered."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = table(400, 0)
    clf = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(x, y)
    probe, _ = table(40, 1)
    Path("expected").mkdir(exist_ok=True)
    probe.to_csv("expected/tab_probe.csv", index=False)
    np.save("expected/tab_pred.npy", clf.predict(probe))
    np.save("expected/tab_proba.npy", clf.predict_proba(probe))
    ctx.log_model(clf, name="tab", input_example=x.head(3))


@step
def net(ctx):
    """A small torch classifier on 4x4 inputs, registered."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    x = np.random.default_rng(2).normal(size=(30, 4, 4)).astype(np.float32)
    with torch.no_grad():
        proba = torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()
    Path("expected").mkdir(exist_ok=True)
    np.save("expected/net_x.npy", x)
    np.save("expected/net_proba.npy", proba)
    ctx.log_model(model, name="net", framework="torch", input_example=x[:2])


@step
def keras_model(ctx):
    """A tiny Keras classifier, registered."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(6, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    x = np.random.default_rng(3).normal(size=(20, 5)).astype(np.float32)
    Path("expected").mkdir(exist_ok=True)
    np.save("expected/keras_x.npy", x)
    np.save("expected/keras_proba.npy", model.predict(x, verbose=0))
    ctx.log_model(model, name="kmodel", input_example=x[:2])


@step
def deploy(ctx, model: str = "tab", method: str = "folder", archive: str = ""):
    """Deploy a registered model (and archive it)."""
    deployer = Deploy()
    folder = deployer.deploy_model(model, save_path=f"deployments/{model}", method=method)
    if archive:
        deployer.archive_deployment(folder, format=archive)
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = make_project(tmp_path_factory.mktemp("serve") / "p", main_src=MAIN, toml='[project]\nname = "serve"\n')
    for step in ("tabular", "net", "keras_model"):
        run_blase("step", step, cwd=root, check=True, timeout=240)
    run_blase("step", "deploy", cwd=root, check=True, timeout=120)
    run_blase("step", "deploy", "--set", "model=net", "--set", "archive=zip", cwd=root, check=True, timeout=120)
    return root


def test_sklearn_in_every_format_equals_the_in_step_model(project: Path) -> None:
    import pandas as pd

    deployment = project / "deployments" / "tab"
    manifest = json.loads((deployment / "deployment.json").read_text())
    assert manifest["model"]["name"] == "tab" and manifest["model"]["version"] == 1
    assert manifest["model"]["training_run"] and manifest["deployed_by_run"]
    assert "scikit-learn==" in (deployment / "requirements.txt").read_text()
    probe = pd.read_csv(project / "expected" / "tab_probe.csv")
    expected = np.load(project / "expected" / "tab_pred.npy")
    proba = np.load(project / "expected" / "tab_proba.npy")
    server = Server(project, "deployments/tab", "--max-rows", "50", "--max-body", "20000")
    try:
        formats = {
            "dataframe_split": {"dataframe_split": json.loads(probe.to_json(orient="split", index=False))},
            "dataframe_records": {"dataframe_records": probe.to_dict(orient="records")},
            "instances": {"instances": probe.to_dict(orient="records")},
            "inputs": {"inputs": probe.to_dict(orient="list")},
            "rows in column order": {"instances": probe.to_numpy().tolist()},
        }
        for name, payload in formats.items():
            status, body = server.post(payload)
            assert status == 200, (name, body)
            assert np.array_equal(np.asarray(body["predictions"]), expected), name
        status, body = server.post(probe.to_csv(index=False), content_type="text/csv")
        assert status == 200 and np.array_equal(np.asarray(body["predictions"]), expected)
        status, body = server.post({"dataframe_records": probe.to_dict(orient="records"),
                                    "params": {"probabilities": True}})
        assert status == 200 and np.allclose(body["probabilities"], proba, atol=1e-9) and body["classes"] == [0, 1, 2]
        records = {"dataframe_records": probe.to_dict(orient="records")}
        assert "probabilities" in server.post(records, path="/invocations?probabilities=yes")[1]
        assert "probabilities" not in server.post(records, path="/invocations?probabilities=0")[1]
        status, body = server.post(records, path="/invocations?probabilities=maybe")
        assert status == 400 and "?probabilities must be true or false, not 'maybe'" in body["message"]

        bad = {
            "not JSON": ("{nope", "application/json", 400, "not valid JSON"),
            "no format": ({"rows": []}, "application/json", 400, "give exactly one of dataframe_split"),
            "missing column": ({"dataframe_records": [{"age": 1, "income": 2}]}, "application/json", 422,
                               "missing column(s) score"),
            "unknown column": ({"dataframe_records": [{"age": 1, "income": 2, "score": 3, "zip": 4}]},
                               "application/json", 422, "unknown column(s) zip"),
            "wrong dtype": ({"dataframe_records": [{"age": "old", "income": 2, "score": 3}]}, "application/json",
                            422, "column age: 'old' in record 0 is not a number"),
            "wrong width": ({"instances": [[1, 2]]}, "application/json", 422, "record 0 has 2 values"),
            "too many rows": ({"instances": [[1, 2, 3]] * 51}, "application/json", 422, "51 records, more than the 50"),
            "too large": ({"instances": [[1.123456789, 2.123456789, 3.123456789]] * 49, "pad": "x" * 20000},
                          "application/json", 413, "more than the 20000"),
            "bad CSV": ("age,income\n1,2,3,4\n\"", "text/csv", 400, "CSV body cannot be read"),
            "wrong type": ("<xml/>", "application/xml", 415, "is not supported"),
            "null body": ("null", "application/json", 400, "must be an object with one of the keys"),
            "unclear flag": ({"instances": [[1, 2, 3]], "params": {"probabilities": "maybe"}}, "application/json",
                             400, "params.probabilities must be true or false, not 'maybe'"),
        }
        for name, (payload, content_type, code, words) in bad.items():
            status, body = server.post(payload, content_type=content_type)
            assert status == code, (name, status, body)
            assert words in body["message"], (name, body)
            assert request(server.url + "/ping")[0] == 200, f"the server died on {name}"
        status, health = request(server.url + "/health")
        assert health["client_errors"] == len(bad) + 1 and health["server_errors"] == 0  # + ?probabilities=maybe
        assert health["worker"] == server.proc.pid  # the counts are this process's
        predicted = health["records"]
        assert predicted == 40 * 9
        log = wait_for(lambda: request(server.url + "/health")[1]["prediction_log"]["rows_written"] == predicted,
                       what="the prediction log to be written")
        assert log
        status, meta = request(server.url + "/metadata")
        assert meta["model"]["name"] == "tab" and meta["signature"]["inputs"]["kind"] == "columns"
        assert request(server.url + "/version")[1].strip() == __import__("blase_tui").__version__
    finally:
        server.stop()
    from blase_tui.serve.predlog import read_log

    table = read_log(project / "predictions" / "tab").to_pandas()
    assert len(table) == 40 * 9, "one row per predicted record"
    assert {"request_id", "record", "time", "latency_ms", "prediction", "probabilities", "input.age"} <= set(table)
    first = table[table.request_id == table.request_id.iloc[0]].sort_values("record")
    assert np.array_equal(first["prediction"].to_numpy(), expected)
    assert np.allclose(first["input.income"].to_numpy(), probe["income"].to_numpy())


def test_torch_from_an_archive(project: Path) -> None:
    archive = project / "deployments" / "net.zip"
    assert archive.is_file() and Path(f"{archive}.sha256").is_file()
    x = np.load(project / "expected" / "net_x.npy")
    proba = np.load(project / "expected" / "net_proba.npy")
    server = Server(project, str(archive))
    try:
        for payload in ({"instances": x.tolist()}, {"inputs": x.tolist()},
                        {"dataframe_split": {"data": x.reshape(len(x), -1).tolist()}}):
            status, body = server.post({**payload, "params": {"probabilities": True}})
            assert status == 200, body
            assert np.array_equal(np.asarray(body["predictions"]), proba.argmax(axis=1))
            assert np.allclose(body["probabilities"], proba, atol=1e-6)
        for payload, words in (({"instances": [[[1.0] * 4] * 3]}, "has the shape [3, 4]; the model takes [4, 4]"),
                               ({"instances": [[[1.0] * 4] * 4, [[1.0] * 4] * 3]}, "do not all have the same shape"),
                               ({"instances": [[["a"] * 4] * 4]}, "not numbers"),
                               ({"instances": [[[None] * 4] * 4]}, "missing values"),
                               ({"instances": []}, "holds no records"),
                               ({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0] * 16]}},
                                "name the columns a, b; the model takes one input"),
                               ({"instances": [[[1e300] * 4] * 4]}, "the model takes float32 values (at most")):
            status, body = server.post(payload)
            assert status == 422 and words in body["message"], body
        assert request(server.url + "/ping")[0] == 200
    finally:
        server.stop()


def test_a_tensor_models_input_is_named_as_its_card_names_it() -> None:
    """A model trained by Train on an `image` column takes records {"image": ...}; another name is a 422 naming
    both, not silently served (a model logged without a column name takes any one name)."""
    from blase_tui.serve.payload import PayloadError, parse, to_input

    spec = {"inputs": {"kind": "tensor", "shape": [2, 2], "dtype": "uint8", "column": "image"}}
    good = parse(json.dumps({"dataframe_records": [{"image": [[1, 2], [3, 4]]}]}).encode(), "application/json")
    array, n = to_input(good, spec, max_rows=10)
    assert n == 1 and array.tolist() == [[[1, 2], [3, 4]]] and array.dtype == np.uint8
    bad = parse(json.dumps({"dataframe_records": [{"img": [[1, 2], [3, 4]]}]}).encode(), "application/json")
    with pytest.raises(PayloadError, match="name the columns img; the model takes one input `image`"):
        to_input(bad, spec, max_rows=10)
    flat = parse(json.dumps({"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [[1, 2, 3, 4]]}}).encode(),
                 "application/json")
    assert to_input(flat, spec, max_rows=10)[0].tolist() == [[[1, 2], [3, 4]]]  # one name per value: positional
    headless = parse(b"1,2,3,4\n5,6,7,8\n", "text/csv")  # no header line: both lines are records, none lost
    array, n = to_input(headless, spec, max_rows=10)
    assert n == 2 and array.tolist() == [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]
    anonymous = {"inputs": {"kind": "tensor", "shape": [2, 2], "dtype": "uint8"}}
    assert to_input(bad, anonymous, max_rows=10)[1] == 1


def test_keras_from_the_registry(project: Path) -> None:
    x = np.load(project / "expected" / "keras_x.npy")
    proba = np.load(project / "expected" / "keras_proba.npy")
    server = Server(project, "kmodel:1", "--no-log")
    try:
        status, body = server.post({"instances": x.tolist(), "params": {"probabilities": True}})
        assert status == 200, body
        assert np.allclose(body["probabilities"], proba, atol=1e-5)
        assert np.array_equal(np.asarray(body["predictions"]), proba.argmax(axis=1))
        assert request(server.url + "/health")[1].get("prediction_log") is None, "--no-log"
    finally:
        err = server.stop()
    assert "serving kmodel v1 (tensorflow" in err and "prediction log off" in err


def test_the_prediction_log_keeps_complete_files_through_kill_9(project: Path, tmp_path: Path) -> None:
    from blase_tui.serve.predlog import TMP_PREFIX, read_log

    log_dir = tmp_path / "log"
    server = Server(project, "deployments/tab", "--log-dir", str(log_dir))
    payload = {"instances": [[40.0, 5000.0, 0.1]] * 5}
    answered: list[str] = []
    for _ in range(20):
        assert server.post(payload)[0] == 200
    wait_for(lambda: request(server.url + "/health")[1]["prediction_log"]["rows_written"] == 100, what="100 rows")
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                status, _ = server.post(payload)
                if status == 200:
                    answered.append("ok")
            except OSError:
                return

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)  # mid-load, past at least one flush
    server.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    files = list(log_dir.rglob("*.parquet"))
    assert files and all(not f.name.startswith(TMP_PREFIX) for f in files if f.suffix == ".parquet" and
                         not f.name.startswith("."))
    table = read_log(log_dir).to_pandas()  # every visible file reads whole
    per_request = table.groupby("request_id").size()
    assert (per_request == 5).all(), "a request's records are logged together or not at all"
    assert not table.duplicated(["request_id", "record"]).any()
    assert len(table) >= 100, "everything flushed before the kill is there"
    assert len(table) <= 100 + 5 * len(answered)


def test_the_dockerfile_command_serves_the_deployment_outside_docker(project: Path) -> None:
    run_blase("step", "deploy", "--set", "method=docker", cwd=project, check=True, timeout=120)
    folder = project / "deployments" / "tab"
    dockerfile = (folder / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", dockerfile, re.M)
    assert "USER blase" in dockerfile and "HEALTHCHECK" in dockerfile
    command = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    assert command[:3] == ["blase", "serve", "/app"]
    # the HistGradientBoosting model is skops naming TreePredictor, which skops does not trust: an image has no
    # project that produced it, so its command trusts it, and the file says why
    assert command[-1] == "--trust" and "# --trust: loading this model runs code from its file" in dockerfile
    port = free_port()
    exact = [sys.executable, "-m", "blase_tui", *command[1:]]
    exact[exact.index("/app")] = str(folder)
    exact[exact.index("--port") + 1] = str(port)
    server = Server(folder, command=exact, port=port)
    try:
        status, body = server.post({"instances": [[40.0, 5000.0, 0.1]]})
        assert status == 200 and len(body["predictions"]) == 1
    finally:
        err = server.stop()
    assert "other machines can reach this server" in err, "a non-loopback address is said out loud"


def test_serve_refuses_what_it_cannot_serve(project: Path, tmp_path: Path) -> None:
    proc = run_blase("serve", "nosuchmodel", cwd=project)
    assert proc.returncode == 2 and "nor a registered model" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    proc = run_blase("serve", str(tmp_path / "empty"), cwd=project)
    assert proc.returncode == 2 and "not a deployment" in proc.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = run_blase("serve", "deployments/tab", "--port", str(taken.getsockname()[1]), cwd=project)
    assert proc.returncode == 2 and "cannot listen on 127.0.0.1" in proc.stderr
    for args, said in ((("deployments/tabz",), "deployments/tabz does not exist; give a deployment folder"),
                       (("deployments/tab", "--port", "99999"), "99999 is not in the range 0<=x<=65535")):
        proc = run_blase("serve", *args, cwd=project)
        assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_port_0_serves_on_a_free_port_and_says_which(project: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "blase_tui", "serve", "deployments/tab", "--port", "0",
                             "--no-log"], cwd=project, env=_env(), stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        line = proc.stderr.readline()
        found = re.search(r"at http://127\.0\.0\.1:(\d+)/invocations", line)
        assert found and found.group(1) != "0", line
        url = f"http://127.0.0.1:{found.group(1)}"
        deadline = time.monotonic() + 60
        while True:
            try:
                assert request(url + "/ping")[0] == 200
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "the server did not answer"
                time.sleep(0.1)
        # the README's curl sends example.json: it is a request the model answers as it is
        example = (project / "deployments" / "tab" / "example.json").read_bytes()
        status, body = request(url + "/invocations", example)
        assert status == 200 and len(body["predictions"]) == len(json.loads(example)["dataframe_split"]["data"])
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_the_examples_in_the_deploy_doc_run(project: Path) -> None:
    """docs/deploy.md: its Python example deploys and archives (with this project's model), and each of its
    curl commands gets predictions from a real server."""
    import shutil

    from conftest import REPO

    doc = (REPO / "docs" / "deploy.md").read_text()
    example = re.findall(r"```python\n(.*?)```", doc, flags=re.S)[0]
    assert "deploy_model(" in example and "archive_deployment(" in example
    run_blase("models", "alias", "tab", "1", "champion", cwd=project, check=True)
    main = (project / "main.py").read_text()
    try:
        (project / "main.py").write_text(main + "\n" + example.replace("digits_cnn@champion", "tab@champion")
                                         .replace("def deploy(ctx)", "def doc_deploy(ctx)"))
        proc = run_blase("step", "doc_deploy", cwd=project, timeout=120)
        assert proc.returncode == 0, proc.stderr
    finally:
        (project / "main.py").write_text(main)
    assert (project / "deployments" / "digits" / "Dockerfile").is_file()
    assert run_blase("deploy", "verify", "deployments/digits.zip", cwd=project).returncode == 0

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed on this machine")
    commands = [c.replace("\\\n", " ") for c in re.findall(r"^(curl -s localhost:5000/invocations(?:.*\\\n)*.*)$",
                                                            doc, flags=re.M)]
    assert len(commands) == 5
    server = Server(project, "deployments/digits", "--no-log")
    try:
        for command in commands:
            out = subprocess.run(["bash", "-c", command.replace("localhost:5000", f"127.0.0.1:{server.port}")],
                                 capture_output=True, text=True, timeout=60, check=True).stdout
            assert json.loads(out) == {"predictions": [1]}, command
    finally:
        server.stop()


def test_two_workers_share_the_port_and_the_log(project: Path, tmp_path: Path) -> None:
    from blase_tui.serve.predlog import read_log

    log_dir = tmp_path / "log"
    server = Server(project, "deployments/tab", "--workers", "2", "--log-dir", str(log_dir))
    try:
        for _ in range(30):
            status, body = server.post({"instances": [[40.0, 5000.0, 0.1], [30.0, 6200.0, -1.2]]})
            assert status == 200 and len(body["predictions"]) == 2
    finally:
        server.stop()  # SIGTERM: each worker writes what it still holds before it exits
    table = read_log(log_dir).to_pandas()
    assert len(table) == 60 and table["request_id"].nunique() == 30


def test_deploying_a_model_file(project: Path) -> None:
    """A file that is a registered version is deployed as that version; another, outside any run, is deployed
    as a file, and the line says it has no version to register."""
    script = (
        "import pickle, shutil\n"
        "from sklearn.dummy import DummyClassifier\n"
        "from blase_tui import Deploy\n"
        "shutil.copyfile('deployments/tab/model/tab.skops', 'copy_of_tab.skops')\n"
        "Deploy().deploy_model('copy_of_tab.skops', 'deployments/from_file')\n"
        "clf = DummyClassifier().fit([[0, 0, 0], [1, 1, 1]], [0, 1])\n"
        "open('dummy.pkl', 'wb').write(pickle.dumps(clf))\n"
        "Deploy().deploy_model('dummy.pkl', 'deployments/dummy')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=project, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "deployed tab v1 to deployments/from_file (folder): the file copy_of_tab.skops is that registered version" \
        in proc.stderr
    assert "deployed dummy to deployments/dummy (folder): the file dummy.pkl, which is not in the registry" in proc.stderr
    manifest = json.loads((project / "deployments" / "dummy" / "deployment.json").read_text())
    assert manifest["model"]["version"] is None and manifest["model"]["framework"] == "sklearn"
    proc = subprocess.run([sys.executable, "-c", "from blase_tui import Deploy\n"
                           "Deploy().deploy_model('copy_of_tab.skops', 'deployments/tab/model')"],
                          cwd=project, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "exists and is not a deployment" in proc.stderr
    # a deployment.json alone does not make a folder blase's to replace, and a deployment holding a file of the
    # user's is not replaced over it; a served deployment's prediction log is carried over
    fake = project / "deployments" / "fake"
    fake.mkdir()
    (fake / "deployment.json").write_text("{}")
    (fake / "keep.txt").write_text("mine")
    (project / "deployments" / "dummy" / "notes.txt").write_text("mine too")
    (project / "deployments" / "from_file" / "predictions" / "tab").mkdir(parents=True)
    (project / "deployments" / "from_file" / "predictions" / "tab" / "log.parquet").write_text("logged")
    for target, said in (("fake", "is not a deployment blase wrote"),
                         ("dummy", "holds files the deployment did not write (notes.txt)"),
                         ("from_file", None)):
        proc = subprocess.run([sys.executable, "-c", "from blase_tui import Deploy\n"
                               f"Deploy().deploy_model('copy_of_tab.skops', 'deployments/{target}')"],
                              cwd=project, env=_env(), capture_output=True, text=True, timeout=120)
        if said is None:
            assert proc.returncode == 0, proc.stderr
            assert "it replaced tab v1 there (a server already running goes on serving that" in proc.stderr
        else:
            assert proc.returncode == 1 and said in proc.stderr, proc.stderr
    assert (fake / "keep.txt").read_text() == "mine"
    assert (project / "deployments" / "dummy" / "notes.txt").read_text() == "mine too"
    assert (project / "deployments" / "from_file" / "predictions" / "tab" / "log.parquet").read_text() == "logged"


CLASSES_MAIN = '''
import numpy as np
from blase_tui import Deploy, Load, Train, step
from blase_tui.modules.batch import Batch, BatchMeta


@step
def train(ctx):
    """A scikit-learn classifier trained by Train on labels that are names."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = np.where(x[:, 0] > 0, "malignant", "benign")
    for split, part in (("train", slice(0, 150)), ("test", slice(150, 200))):
        Load().save_to_filesystem(Batch([f"r{i}" for i in range(200)][part], {"features": x[part], "label": y[part]},
                                        BatchMeta("t", 0)), f"data/prepared/{split}")
    trainer = Train(seed=0)
    trainer.set_model(LogisticRegression(), framework="sklearn")
    trainer.train(epochs=1, data_dir="data/prepared")
    trainer.save_model("models/clf.pkl")
    Deploy().deploy_model("clf", save_path="deployments/clf")
'''


def test_a_classifier_trained_on_names_answers_with_names(tmp_path: Path) -> None:
    """Train fits a scikit-learn estimator on class indices; the server answers with the card's class names (as
    torch and Keras models do, and as Monitor's prediction priors hold them), never 0 and 1."""
    from blase_tui.serve.model import ServedModel

    project = make_project(tmp_path / "names", main_src=CLASSES_MAIN, toml='[project]\nname = "names"\n')
    run_blase("step", "train", cwd=project, check=True, timeout=200)
    served = ServedModel(project / "deployments" / "clf")
    x = np.array([[2.0, 0.0, 0.0], [-2.0, 0.0, 0.0]], dtype=np.float32)
    labels, proba = served.predict(x)
    assert labels.tolist() == ["malignant", "benign"] and proba is not None and proba.shape == (2, 2)
    assert served.classes.tolist() == ["benign", "malignant"]
