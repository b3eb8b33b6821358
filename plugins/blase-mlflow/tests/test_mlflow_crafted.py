"""Issue 24: nothing an MLflow tracking store says reaches outside the project. A crafted experiment (a real MLflow
3 SQLite store, crafted with MlflowClient where MLflow accepts the name, and in its database or artifact folder by
hand where it does not) is imported with `blase mlflow import`; a decoy folder beside the project stays byte for
byte and mode for mode as it was, no symbolic link in an artifact folder is followed out of it, and no control
character reaches the terminal."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("blase_mlflow", reason="blase-mlflow is not installed: pip install -e plugins/blase-mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

pytestmark = pytest.mark.timeout(300)

SECRET = b"do not touch: the decoy's secret"
# what must never reach the terminal raw: a line break inside a name, an escape sequence, a right-to-left override
RAW = ("\x1b", "\u202e", "\x00", "\r")


def _tree(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder`` (files, folders, links): content hash, mode and inode, or where a link points."""
    out: dict[str, tuple] = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path))
        elif path.is_file():
            out[rel] = (hashlib.sha256(path.read_bytes()).hexdigest(), stat.S_IMODE(st.st_mode), st.st_ino)
        else:
            out[rel] = ("dir", stat.S_IMODE(st.st_mode))
    return out


def blase(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "BLASE_HOME": str(home), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "blase_tui", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240, stdin=subprocess.DEVNULL, env=env)


def _crafted_experiment(tmp_path: Path, decoy: Path) -> tuple[str, dict[str, str]]:
    """An experiment whose runs hold every crafted name MLflow takes, and some it refuses, written in behind its
    back. Returns its tracking URI and what MLflow itself refused (name -> why)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    refused: dict[str, str] = {}

    def attempt(what: str, call) -> object:
        try:
            return call()
        except MlflowException as exc:
            refused[what] = str(exc).splitlines()[0][:120]
            return None

    exp = client.create_experiment("crafted", artifact_location=str(tmp_path / "mlartifacts"))
    parent = client.create_run(exp, run_name="name\nfake line \x1b[31mred\u202etxt.exe")
    pid = parent.info.run_id
    client.log_param(pid, "note", "a\nb\x1b[2J")
    client.set_tag(pid, "comment", "first\nsecond \x1b[31m\u202e")
    client.log_metric(pid, "loss", 0.5, step=0)
    for key in ("../../decoy/p", "p\nq"):
        attempt(f"param key {key!r}", lambda k=key: client.log_param(pid, k, "v"))
    attempt("metric key '../m'", lambda: client.log_metric(pid, "../m", 1.0))
    attempt("tag key '../t'", lambda: client.set_tag(pid, "../t", "v"))
    source = tmp_path / "upload.txt"
    source.write_text("a genuine artifact")
    client.log_artifact(pid, str(source))
    for where in ("../../decoy", str(decoy)):
        attempt(f"artifact path {where!r}", lambda w=where: client.log_artifact(pid, str(source), artifact_path=w))
    attempt("logged model name '../../decoy/model'",
            lambda: client.create_logged_model(exp, name="../../decoy/model", source_run_id=pid))
    attempt("logged model name 'm\\nx'", lambda: client.create_logged_model(exp, name="m\nx", source_run_id=pid))
    # keys MLflow refuses, written into its database as a compromised server or a hand edit could
    client.log_param(pid, "crafted_param", "v")
    client.set_tag(pid, "crafted_tag", "v")
    client.log_metric(pid, "crafted_metric", 2.0, step=0)
    con = sqlite3.connect(tmp_path / "mlflow.db")
    with con:
        con.execute("UPDATE params SET key = ? WHERE key = 'crafted_param'", ("../../decoy/p\nfake param",))
        con.execute("UPDATE tags SET key = ? WHERE key = 'crafted_tag'", ("tag\x1b[31m\nfake",))
        for table in ("metrics", "latest_metrics"):
            con.execute(f"UPDATE {table} SET key = ? WHERE key = 'crafted_metric'", ("../../decoy/m\nfake metric",))
    con.close()

    # the run's artifact folder, by hand: links out of it (to the secret, to the whole decoy, relative and
    # absolute), a link to a folder inside a folder, and names no file may have
    art = Path(client.get_run(pid).info.artifact_uri.removeprefix("file://"))
    (art / "leak.txt").symlink_to(decoy / "secret.txt")
    (art / "leakdir").symlink_to(decoy)
    (art / "sub").mkdir()
    (art / "sub" / "up").symlink_to("../../../../../decoy")
    (art / "sub" / "fine.txt").write_text("inside")
    (art / "bad\nname.txt").write_text("a name with a line break")
    (art / "rtl\u202etxt.exe").write_text("a name with an override")

    # steps of a blase run exported elsewhere: their names name folders inside the run's
    for n, step in enumerate(("../../../decoy/evil", str(decoy / "abs"), "ok\nfake")):
        child = client.create_run(exp, run_name=f"child{n}", tags={
            "mlflow.parentRunId": pid, "blase.kind": "step", "blase.step": step,
            "blase.step_status": "succeeded\n\x1b[31mfake"})
        cid = child.info.run_id
        client.log_artifact(cid, str(source))
        (Path(client.get_run(cid).info.artifact_uri.removeprefix("file://")) / "leak.txt").symlink_to(
            decoy / "secret.txt")
        client.set_terminated(cid)
    client.set_terminated(pid)
    return uri, refused


def test_an_imported_mlflow_experiment_reaches_nothing_outside_the_project(tmp_path: Path) -> None:
    decoy = tmp_path / "decoy"
    (decoy / "inner").mkdir(parents=True)
    (decoy / "secret.txt").write_bytes(SECRET)
    (decoy / "secret.txt").chmod(0o600)
    (decoy / "inner" / "more.txt").write_bytes(SECRET + b" (inner)")
    uri, refused = _crafted_experiment(tmp_path, decoy)
    # MLflow's own client refuses a name that climbs out, or a key with a line break; what it takes was crafted
    # above, what it refuses was written into its database by hand
    assert any("../../decoy/p" in k for k in refused) and any("artifact path" in k for k in refused), refused
    before = _tree(decoy)
    root = tmp_path / "proj"
    root.mkdir()
    (root / "blase.toml").write_text('[project]\nname = "proj"\n')
    (root / "main.py").write_text("")
    home = tmp_path / "home"

    proc = blase("mlflow", "import", "--experiment", "crafted", "--tracking-uri", uri, cwd=root, home=home)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert _tree(decoy) == before, "nothing outside the project was written, made or changed"
    # the links were never followed: the secret is nowhere in the project or its store; they are named
    for path in root.rglob("*"):
        assert not path.is_symlink() or path.resolve().is_relative_to(root), path
        if path.is_file() and not path.is_symlink():
            assert SECRET not in path.read_bytes(), f"{path} holds the decoy's secret"
    assert "left out" in proc.stdout and "leak.txt" in proc.stdout and "leakdir" in proc.stdout, proc.stdout
    assert "1 imported, 0 already here." in proc.stdout, proc.stdout  # three steps of one run: one run

    runs = json.loads(blase("runs", "list", "--json", "--limit", "0", cwd=root, home=home).stdout)
    assert len(runs) == 1
    shown = json.loads(blase("runs", "show", runs[0]["id"], "--json", cwd=root, home=home).stdout)
    names = {a["name"] for a in shown["artifacts"]}
    assert {"upload.txt", "sub/fine.txt"} <= names and not {"leak.txt", "sub/up"} & names, names
    assert not any("\n" in n or "\u202e" in n or n.startswith("leakdir") for n in names), names
    steps = [s["step"] for s in shown["steps"]]
    assert len(steps) == 3 and all("/" not in s and s.isprintable() for s in steps), steps
    assert all(s["status"] == "succeeded" for s in shown["steps"]), shown["steps"]
    assert (root / "runs" / runs[0]["id"]).is_dir()
    for s in shown["steps"]:
        assert {a["name"] for a in s["artifacts"]} == {"upload.txt"}, s["artifacts"]

    for args in (("runs", "show", runs[0]["id"]), ("runs", "list")):
        out = blase(*args, cwd=root, home=home)
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
        text = out.stdout + out.stderr
        assert not [c for c in RAW if c in text], f"`blase {' '.join(args)}` printed a control character"
        # a line break inside a name or value never starts a line of its own
        assert not [line for line in text.splitlines() if line.lstrip().startswith(("fake", "second", "b\\x1b"))], \
            text
