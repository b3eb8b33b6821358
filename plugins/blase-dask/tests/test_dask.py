"""blase-dask (issue 15) on a real LocalCluster: a monitor step's drift report over a folder of Parquet files
gives the same figures with --executor dask as in one process; a worker killed mid-task is replaced and its task
run again; a file that cannot be read fails the step with the file named; a bad [executor] is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("blase_dask", reason="blase-dask is not installed: pip install -e plugins/blase-dask")

pytestmark = pytest.mark.timeout(300)

MAIN = '''
from blase_tui import Monitor, step


@step
def report(ctx):
    """One drift test per feature over every live file."""
    monitor = Monitor()
    monitor.load_feature_priors("priors/features.json")
    for r in monitor.drift_report("live"):
        ctx.log_metric(f"n/{r.feature}", r.n)
'''


def blase(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blase_tui", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import pandas as pd

    from blase_tui.modules.priors import FeaturePriors

    root = tmp_path_factory.mktemp("dask") / "proj"
    (root / "live").mkdir(parents=True)
    (root / "priors").mkdir()
    (root / "blase.toml").write_text('[project]\nname = "proj"\nmemory_budget = "256MiB"\n')
    (root / "main.py").write_text(MAIN)
    rng = np.random.default_rng(0)

    def frame(n: int, shift: float = 0.0) -> pd.DataFrame:
        return pd.DataFrame({"a": rng.normal(shift, 1, n), "b": rng.exponential(1, n).round(2),
                             "c": rng.choice(["x", "y", "z"], n)})

    builder = FeaturePriors()
    builder.update(frame(20_000))
    (root / "priors" / "features.json").write_text(json.dumps(builder.to_json()))
    for i in range(6):
        frame(20_000, shift=0.2 if i % 2 else 0.0).to_parquet(root / "live" / f"part-{i}.parquet")
    return root


def _report(project: Path) -> dict:
    run = json.loads(blase("runs", "show", "latest", "--json", cwd=project).stdout)
    folder = project / "runs" / run["id"] / run["steps"][0]["folder"] / "artifacts" / "monitor"
    return json.loads((folder / "report.json").read_text())


def test_the_drift_report_is_the_same_on_dask_workers(project: Path) -> None:
    alone = blase("step", "report", "--force", cwd=project)
    assert alone.returncode == 0, alone.stderr
    expected = _report(project)
    spread = blase("step", "report", "--force", "--executor", "dask", "--workers", "2", cwd=project)
    assert spread.returncode == 0, spread.stderr
    assert "dask executor: 2 worker(s) on a LocalCluster, 128 MiB of the budget each" in spread.stderr
    got = _report(project)
    assert got["records"] == expected["records"] == 120_000
    for ours, theirs in zip(got["features"], expected["features"], strict=True):
        # counts add up exactly: statistic, p-value, PSI; Wasserstein sums floats in another order
        ours_w, theirs_w = ours["extra"].pop("wasserstein", 0.0), theirs["extra"].pop("wasserstein", 0.0)
        assert ours == theirs and ours_w == pytest.approx(theirs_w, rel=1e-12)
    assert got["drifted"] == expected["drifted"] == ["a"]


def test_a_killed_worker_is_replaced_and_its_task_runs_again(tmp_path: Path) -> None:
    from blase_dask.executor import DaskExecutor

    marker = tmp_path / "killed"
    executor = DaskExecutor({"workers": 2}, memory_budget=512 * 2**20)
    try:
        results = list(executor.map(_square_but_die_once, [(i, str(marker)) for i in range(6)], what="square"))
    finally:
        executor.close()
    assert marker.exists(), "no worker was killed"
    assert results == [i * i for i in range(6)]


def _square_but_die_once(item: tuple[int, str]) -> int:
    value, marker = item
    if value == 3 and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os._exit(1)  # the worker process dies in the middle of the task
    return value * value


def test_a_file_that_cannot_be_read_fails_the_step_naming_it(project: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "proj"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("runs", ".blase"))
    (copy / "live" / "part-9.parquet").write_bytes(b"PAR1 not parquet")
    proc = blase("step", "report", "--executor", "dask", "--workers", "2", cwd=copy)
    assert proc.returncode == 1
    assert "part-9.parquet is not a readable Parquet file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_bad_executor_setting_is_one_line(project: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "proj"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("runs", ".blase"))
    (copy / "blase.toml").write_text('[project]\nname = "proj"\n\n[executor]\nname = "dask"\nworkers = 0\n')
    proc = blase("step", "report", cwd=copy)
    assert proc.returncode == 2 and "[executor] workers must be a whole number, 1 or more, not 0" in proc.stderr
    (copy / "blase.toml").write_text('[project]\nname = "proj"\n')
    proc = blase("step", "report", "--executor", "nowhere", cwd=copy)
    assert proc.returncode == 1
    assert "executor 'nowhere' comes from a plugin that is not installed" in proc.stderr
