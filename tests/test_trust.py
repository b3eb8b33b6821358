"""Trust for models that run code (issue 24, item 3), with real `blase serve` processes on free loopback ports.

One project ("here") registers and deploys six models: scikit-learn as skops (a LogisticRegression of types
skops trusts, a HistGradientBoosting whose TreePredictor it does not), torch (a Sequential of torch.nn layers,
which `torch.load(weights_only=True)` reads, and a module of the project's own class, from code/) and Keras (a
Dense model, and one with a Lambda layer). Another project ("elsewhere") has none of them registered.

- the safe formats serve anywhere without a trust step;
- what runs code serves at once where it was made, and elsewhere only after `--trust` or `blase deploy trust`;
- a pickle whose loading writes a marker file never writes it unless trusted: from an archive, a folder, in a
  project, elsewhere or outside any project; a changed code/ file beside a trusted model is not trusted.
"""

from __future__ import annotations

import json
import pickle
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import Server, make_project, run_blase

from blase_tui.core import archive

pytestmark = pytest.mark.timeout(600)

MAIN = '''
import numpy as np
import pandas as pd

from blase_tui import Deploy, step

FEATURES = ["a", "b", "c"]


def table(n, seed):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=FEATURES)
    return frame, (frame["a"] + frame["b"] > 0).astype(int).to_numpy()


@step
def sk(ctx):
    """Two scikit-learn classifiers."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    x, y = table(200, 0)
    ctx.log_model(LogisticRegression().fit(x, y), name="lr", input_example=x.head(3))
    ctx.log_model(HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(x, y), name="hgb",
                  input_example=x.head(3))
    # a pickle the step wrote itself (as blase's registry kept scikit-learn models before skops)
    import os
    import pickle

    os.makedirs("models", exist_ok=True)
    with open("models/old.pkl", "wb") as fh:
        pickle.dump(LogisticRegression().fit(x, y), fh)
    ctx.log_model("models/old.pkl", name="old")


@step
def nets(ctx):
    """A torch Sequential of torch.nn layers, and a module of the project's own class."""
    import torch

    from scripts.net import Net

    torch.manual_seed(0)
    x = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    seq = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    ctx.log_model(seq, name="seq", framework="torch", input_example=x[:2])
    ctx.log_model(Net(), name="net", framework="torch", input_example=x[:2])


@step
def kerases(ctx):
    """A Keras Dense model, and one with a Lambda layer."""
    import keras

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(2).normal(size=(4, 3)).astype(np.float32)
    dense = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2, activation="softmax")])
    ctx.log_model(dense, name="kd", input_example=x[:2])
    lam = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Lambda(lambda t: t * 2.0, name="double"),
                            keras.layers.Dense(2, activation="softmax")])
    ctx.log_model(lam, name="klam", input_example=x[:2])


@step
def deploy(ctx):
    """Deploy and archive every model."""
    for name in ("lr", "hgb", "seq", "net", "kd", "klam", "old"):
        deployer = Deploy()
        deployer.archive_deployment(deployer.deploy_model(name, save_path=f"deployments/{name}"), format="zip")
'''

NET = '''
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x)
'''

ROWS = {"dataframe_records": [{"a": 0.5, "b": 1.0, "c": -1.0}, {"a": -2.0, "b": -1.0, "c": 0.0}]}
TENSORS = {"instances": [[0.5, 1.0, -1.0], [-2.0, -1.0, 0.0]]}


@pytest.fixture(scope="module")
def here(tmp_path_factory) -> Path:
    root = make_project(tmp_path_factory.mktemp("trust") / "here", main_src=MAIN, toml='[project]\nname = "here"\n')
    (root / "scripts").mkdir()
    (root / "scripts" / "net.py").write_text(NET)
    for step in ("sk", "nets", "kerases", "deploy"):
        run_blase("step", step, cwd=root, check=True, timeout=300)
    return root


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory) -> Path:
    """Another project: none of here's models are registered in it."""
    return make_project(tmp_path_factory.mktemp("trust") / "elsewhere", main_src="", toml='[project]\nname = "else"\n')


def _refused(proc, *words: str) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in (*words, "--trust", "blase deploy trust"):
        assert word in lines[0], (word, lines[0])
    return lines[0]


def test_a_deployment_says_its_format_and_whether_it_runs_code(here: Path) -> None:
    expected = {"lr": ("skops", False, []), "hgb": ("skops", True, ["TreePredictor"]),
                "seq": ("torch-weights", False, []), "net": ("torch-pickle", True, ["scripts.net.Net"]),
                "kd": ("keras", False, []), "klam": ("keras", True, ["double"])}
    for name, (fmt, runs_code, untrusted) in expected.items():
        folder = here / "deployments" / name
        model = json.loads((folder / "deployment.json").read_text())["model"]
        card = json.loads((folder / "model" / "card.json").read_text())
        assert model["format"]["name"] == fmt and model["format"]["runs_code"] is runs_code, (name, model)
        assert card["format"] == model["format"]
        for word in untrusted:
            assert any(word in t for t in model["format"]["untrusted"]), (name, model["format"])
        assert fmt in (folder / "README.md").read_text()
    lr = json.loads((here / "deployments" / "lr" / "deployment.json").read_text())["model"]
    assert lr["file"] == "model/lr.skops" and "original" not in lr, "the registry keeps scikit-learn as skops"
    old = json.loads((here / "deployments" / "old" / "deployment.json").read_text())["model"]
    assert old["file"] == "model/old.skops" and old["original"] == "model/old.pkl", "skops served, the pickle kept"
    assert (here / "deployments" / "net" / "code" / "scripts" / "net.py").is_file()
    # what runs code was recorded as this project's when Deploy wrote it; the safe formats need no record
    recorded = [json.loads(line) for line in (here / ".blase" / "trusted.jsonl").read_text().splitlines()]
    assert sorted(r["what"].split(" v")[0] for r in recorded) == ["hgb", "klam", "net"]
    assert {r["by"] for r in recorded} == {"deploy"}


def test_this_projects_archives_serve_at_once(here: Path) -> None:
    for target, words in (("deployments/hgb.zip", "registered as hgb v1 in this project"),
                          ("deployments/net.zip", "written by this project's Deploy")):
        server = Server(here, target, "--no-log")
        try:
            status, body = server.post(TENSORS if "net" in target else ROWS)
            assert status == 200 and len(body["predictions"]) == 2, body
        finally:
            err = server.stop()
        assert words in err, err
    # a deployment serving the registry's own pickle (as blase wrote them before skops) is this project's too
    old = here / "deployments" / "old_pickle"
    shutil.copytree(here / "deployments" / "old", old)
    manifest = json.loads((old / "deployment.json").read_text())
    manifest["model"]["file"] = "model/old.pkl"
    (old / "deployment.json").write_text(json.dumps(manifest))
    server = Server(here, str(old), "--no-log")
    try:
        assert server.post(ROWS)[0] == 200
    finally:
        err = server.stop()
    assert "is a pickle file, whose loading runs code from it: loaded, as it is registered as old v1" in err


def test_safe_formats_serve_in_another_project_without_trust(here: Path, elsewhere: Path) -> None:
    for name, payload in (("lr", ROWS), ("seq", TENSORS), ("kd", TENSORS)):
        server = Server(elsewhere, str(here / "deployments" / f"{name}.zip"), "--no-log")
        try:
            status, body = server.post({**payload, "params": {"probabilities": True}})
            assert status == 200 and len(body["predictions"]) == 2 and np.shape(body["probabilities"]) == (2, 2), body
        finally:
            err = server.stop()
        assert "runs code" not in err, err
    assert not (elsewhere / ".blase" / "trusted.jsonl").exists()


def test_models_that_run_code_from_elsewhere_wait_for_trust(here: Path, elsewhere: Path) -> None:
    deployments = here / "deployments"
    _refused(run_blase("serve", str(deployments / "hgb.zip"), cwd=elsewhere),
             "skops file of types skops does not trust", "TreePredictor", "this project did not produce it")
    _refused(run_blase("serve", str(deployments / "net.zip"), cwd=elsewhere), "scripts.net.Net")
    _refused(run_blase("serve", str(deployments / "klam"), cwd=elsewhere), "a Keras model with a Lambda layer (double), whose loading can run code")
    # trusted once, in this project: served from then on
    proc = run_blase("deploy", "trust", str(deployments / "hgb.zip"), cwd=elsewhere)
    assert proc.returncode == 0 and "in this project" in proc.stdout and "hgb v1" in proc.stdout, proc.stderr
    server = Server(elsewhere, str(deployments / "hgb.zip"), "--no-log")
    try:
        assert server.post(ROWS)[0] == 200
    finally:
        err = server.stop()
    assert "trusted in this project" in err
    # or for one server: --trust (the torch module's class comes from the deployment's code/)
    for name in ("net", "klam"):
        server = Server(elsewhere, str(deployments / f"{name}.zip"), "--no-log", "--trust")
        try:
            status, body = server.post(TENSORS)
            assert status == 200 and len(body["predictions"]) == 2, body
        finally:
            err = server.stop()
        assert "loaded, as --trust says so" in err


class _Marker:
    """Unpickles as the estimator ``payload`` holds, writing ``marker`` first: code run by loading."""

    def __init__(self, payload: bytes, marker: Path) -> None:
        self.payload, self.marker = payload, marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (eval, (f"(open({str(self.marker)!r}, 'w').write('ran'), __import__('pickle').loads({self.payload!r}))[1]",))


def test_a_pickle_that_writes_a_marker_never_runs_unless_trusted(here: Path, elsewhere: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    evil = tmp_path / "made" / "lr"
    shutil.copytree(here / "deployments" / "lr", evil)
    import skops.io as sio

    honest = pickle.dumps(sio.load(evil / "model" / "lr.skops"))  # the same estimator, as a pickle
    (evil / "model" / "lr.pkl").write_bytes(pickle.dumps(_Marker(honest, marker)))
    manifest = json.loads((evil / "deployment.json").read_text())
    manifest["model"]["file"] = "model/lr.pkl"
    (evil / "deployment.json").write_text(json.dumps(manifest))
    evil_zip = archive.build(evil, "zip")
    # the archive matches itself: verify proves no more
    assert run_blase("deploy", "verify", str(evil_zip), cwd=tmp_path).returncode == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    unpacked = run_blase("deploy", "unpack", str(evil_zip), str(tmp_path / "unpacked"), cwd=tmp_path)
    assert unpacked.returncode == 0
    for cwd in (here, elsewhere, outside):
        for target in (evil_zip, evil, tmp_path / "unpacked" / "lr"):
            line = _refused(run_blase("serve", str(target), cwd=cwd), "is a pickle", "builtins.eval")
            assert not marker.exists(), f"the pickle ran, serving {target} in {cwd}: {line}"
    # a changed code/ file beside a model this project made is not this project's
    tampered = tmp_path / "made" / "net"
    shutil.copytree(here / "deployments" / "net", tampered)
    with open(tampered / "code" / "scripts" / "net.py", "a") as fh:
        fh.write(f"\nopen({str(marker)!r}, 'w').write('ran')\n")
    _refused(run_blase("serve", str(tampered), cwd=here), "scripts.net.Net")
    assert not marker.exists()

    server = Server(elsewhere, str(evil_zip), "--no-log", "--trust")
    try:
        assert server.post(ROWS)[0] == 200
    finally:
        server.stop()
    assert marker.exists(), "--trust loads it"
    marker.unlink()
    # outside a project, `deploy trust` records it for the user; the archive is unpacked in blase's user folder
    proc = run_blase("deploy", "trust", str(evil_zip), cwd=outside)
    assert proc.returncode == 0 and "for this user" in proc.stdout, proc.stdout + proc.stderr
    assert not marker.exists(), "trusting reads hashes, it loads nothing"
    server = Server(outside, str(evil_zip), "--no-log")
    try:
        assert server.post(ROWS)[0] == 200
    finally:
        err = server.stop()
    assert marker.exists() and "trusted by this user" in err
    home = Path(__import__("os").environ["BLASE_HOME"])
    assert f"unpacked to {home / 'serve'}" in err, err


def test_archives_are_signed_with_the_projects_key(here: Path, elsewhere: Path, tmp_path: Path) -> None:
    signed = here / "deployments" / "lr.zip"
    key = here / ".blase" / "keys" / "archive-ed25519.pem"
    assert Path(f"{signed}.sig").is_file() and stat.S_IMODE(key.stat().st_mode) == 0o600
    ours = run_blase("deploy", "verify", str(signed), cwd=here)
    assert ours.returncode == 0 and "ok   signed by this project's key (ed25519" in ours.stdout, ours.stdout
    theirs = run_blase("deploy", "verify", str(signed), cwd=elsewhere)
    assert theirs.returncode == 0 and "signed by a key this project does not know" in theirs.stdout, theirs.stdout
    copy = tmp_path / "lr.zip"
    shutil.copyfile(signed, copy)
    shutil.copyfile(f"{signed}.sha256", f"{copy}.sha256")
    unsigned = run_blase("deploy", "verify", str(copy), cwd=here)
    assert unsigned.returncode == 0 and "--   not signed (no lr.zip.sig beside it)" in unsigned.stdout
    # another archive (its own hash beside it, as anyone can write) under lr.zip's signature
    shutil.copyfile(here / "deployments" / "kd.zip", copy)
    digest = __import__("hashlib").sha256(copy.read_bytes()).hexdigest()
    Path(f"{copy}.sha256").write_text(f"{digest}  lr.zip\n")
    shutil.copyfile(f"{signed}.sig", f"{copy}.sig")
    bad = run_blase("deploy", "verify", str(copy), cwd=here)
    assert bad.returncode == 1 and "bad  lr.zip.sig: the signature does not match the archive" in bad.stdout
    refused = run_blase("serve", str(copy), cwd=here)
    assert refused.returncode == 2 and "does not verify (lr.zip.sig: the signature does not match" in refused.stderr


def test_deploy_trust_says_what_is_wrong_in_one_line(here: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "plain").mkdir()
    crafted = tmp_path / "crafted.zip"
    shutil.copyfile(here / "deployments" / "lr.zip", crafted)
    import zipfile

    with zipfile.ZipFile(crafted, "a") as zf:
        zf.writestr("lr/extra.py", "import os\n")
    for target, words in (("nosuch.zip", "does not exist"), ("plain", "is not a deployment"),
                          ("notes.txt", "neither a deployment folder nor an archive"),
                          ("crafted.zip", "does not verify (lr/extra.py: in the archive but not in MANIFEST")):
        proc = run_blase("deploy", "trust", target, cwd=tmp_path)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / ".blase").exists()
    helped = run_blase("deploy", "trust", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "Trust the model of a deployment made elsewhere" in helped.stdout
    assert "--user" in helped.stdout
    assert "--trust" in run_blase("serve", "--help", cwd=tmp_path).stdout
