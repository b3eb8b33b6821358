"""A deployment is self-contained (issue 25): unpacked on a machine where blase is not installed (here: into a
folder that already holds other things), its own `run.sh` makes a fresh virtual environment from the folder's
requirements.txt — blase from the folder's wheel, the rest from the package index — and serves; the
environment holds no terminal UI, plots or image libraries."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import _env, free_port, make_project, request, run_blase

pytestmark = pytest.mark.timeout(900)

MAKE = '''
import joblib, numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(0)
x = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
joblib.dump(LogisticRegression().fit(x, (x.a + x.b > 0).astype(int)), "lr.joblib")
'''


def test_an_unpacked_deployment_serves_from_its_own_files(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", "")
    subprocess.run([sys.executable, "-c", MAKE], cwd=root, check=True, env=_env())
    made = run_blase("deploy", "lr.joblib", "deployments/lr", "--method", "venv", "--archive", "tar.gz", "--trust",
                     cwd=root)
    assert made.returncode == 0, made.stderr
    requirements = (root / "deployments" / "lr" / "requirements.txt").read_text()
    assert "./wheels/blase_tui-" in requirements and "blase-tui" not in requirements
    assert "textual" not in requirements and "scikit-learn==" in requirements
    elsewhere = tmp_path / "server"
    elsewhere.mkdir()
    (elsewhere / "notes.txt").write_text("not a deployment")  # a folder with other things in it
    unpacked = run_blase("deploy", "unpack", str(root / "deployments" / "lr.tar.gz"), str(elsewhere), cwd=tmp_path)
    assert unpacked.returncode == 0, unpacked.stderr
    folder = elsewhere / "lr"
    again = run_blase("deploy", "unpack", str(root / "deployments" / "lr.tar.gz"), str(elsewhere), cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PORT=str(port), PATH=os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if ".venv" not in p))
    proc = subprocess.Popen(["sh", "./run.sh"], cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, answer = request(f"http://127.0.0.1:{port}/invocations",
                                         json.dumps({"instances": [[2, 2, 0], [-2, -2, 0]]}).encode())
                break
            except OSError:
                time.sleep(0.5)
        assert status == 200, proc.stdout.read() if proc.poll() is not None else "no answer in time"
        assert answer["predictions"] == [1, 0]
        venv_python = folder / ".venv" / "bin" / "python"
        probe = subprocess.run([str(venv_python), "-c", "import importlib.util as u, blase_tui;"
                                " print(blase_tui.__file__, [m for m in ('textual', 'matplotlib', 'PIL')"
                                " if u.find_spec(m)])"], capture_output=True, text=True, env=env, check=True,
                               cwd=folder)
        where, missing = probe.stdout.rsplit(" ", 1)[0], probe.stdout.strip().endswith("[]")
        assert str(folder / ".venv") in where, "blase came from the folder's wheel"
        assert missing, probe.stdout
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)
