"""Every kind of plugin hook, each with a small plugin written here (issue 28): a drift test (blase.monitors), a
framework adapter (blase.frameworks), an executor (blase.executors), an artifact preview (blase.previews) and a
run_closed hook, installed as a distribution on PYTHONPATH and used as a user would. (CLI nouns, readers and
transforms: tests/test_plugins.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import _env, make_project, wait_for

KIT = '''
import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


# blase.monitors: a two-sample z test of the mean, on the weighted values Monitor hands over
def meanshift(reference, live):
    if reference.kind != "numeric":
        return None
    def moments(d):
        w = d.weights
        mean = float((d.values * w).sum() / w.sum())
        return mean, float((w * (d.values - mean) ** 2).sum() / w.sum()), float(w.sum())
    (m1, v1, n1), (m2, v2, n2) = moments(reference), moments(live)
    z = abs(m2 - m1) / math.sqrt(v1 / n1 + v2 / n2 + 1e-300)
    return z, math.erfc(z / math.sqrt(2))


def sure(reference, live):
    return 0.5, 7.0  # not a p-value


def raises(reference, live):
    raise RuntimeError("the test broke")


# blase.frameworks: a model that predicts the class frequencies it saw
class Majority:
    pass


class MajorityAdapter:
    framework = "majority"
    file_suffix = ".json"

    def __init__(self):
        self.model, self.classification, self.counts = None, True, np.zeros(2)

    def setup(self, model, config, n_classes):
        self.model, self.counts = model, np.zeros(n_classes or 2)

    def freeze(self, names):
        return []

    def train_batch(self, x, y):
        self.counts += np.bincount(y.astype(int), minlength=len(self.counts))
        return self.loss(x, y)

    def predict(self, x):
        p = (self.counts + 1) / (self.counts.sum() + len(self.counts))
        return np.tile(p, (len(x), 1))

    def loss(self, x, y):
        proba = self.predict(x)
        picked = proba[np.arange(len(y)), y.astype(int)]
        return float(-np.log(picked).sum()), int((proba.argmax(1) == y).sum()), len(y)

    def state(self):
        return self.counts.tolist()

    def load_state(self, state):
        self.counts = np.array(state)

    def save_checkpoint(self, path, extra):
        Path(path).write_text(json.dumps({"counts": self.counts.tolist(), **extra}))

    def read_checkpoint(self, path):
        data = json.loads(Path(path).read_text())
        self.counts = np.array(data["counts"])
        return data

    def save(self, path):
        Path(path).write_text(json.dumps({"counts": self.counts.tolist()}))

    @staticmethod
    def load(path, device=None, *, allow_code=True):
        adapter = MajorityAdapter()
        adapter.model, adapter.counts = Majority(), np.array(json.loads(Path(path).read_text())["counts"])
        return adapter

    def describe(self):
        return {"class": "Majority", "counts": self.counts.tolist()}


# blase.executors: threads, each task written to a log named in [executor]
class ThreadExecutor:
    def __init__(self, settings, *, memory_budget):
        self.workers = int(settings.get("workers") or 2)
        self.log = Path(settings["log"])
        self.pool = ThreadPoolExecutor(self.workers)

    def describe(self):
        return f"{self.workers} thread(s)"

    def submit(self, fn, item, *, what=""):
        with self.log.open("a") as out:
            out.write(f"task {what}\\n")
        return self.pool.submit(fn, item)

    def map(self, fn, items, *, what=""):
        return (task.result() for task in [self.submit(fn, item, what=what) for item in items])

    def close(self):
        with self.log.open("a") as out:
            out.write("closed\\n")
        self.pool.shutdown()


# blase.previews: a .greet artifact in the TUI
def preview(path, width, max_rows):
    from rich.text import Text

    return Text(f"greeting: {Path(path).read_text().strip()[:width]}")


# blase.run_closed: after a run closes, in a process of its own
def closed(project_root, run_id, settings):
    (Path(project_root) / "closed.txt").write_text(f"{run_id} {settings.get('word', '')}")
'''

ENTRY_POINTS = '''
[blase.monitors]
meanshift = kit_plugin:meanshift
sure = kit_plugin:sure
raises = kit_plugin:raises

[blase.frameworks]
majority = kit_plugin:MajorityAdapter

[blase.executors]
threads = kit_plugin:ThreadExecutor

[blase.previews]
.greet = kit_plugin:preview

[blase.run_closed]
kit = kit_plugin:closed
'''


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user who installed blase-kit (a distribution on PYTHONPATH)."""
    site = tmp_path / "site"
    meta = site / "blase_kit-0.3.0.dist-info"
    meta.mkdir(parents=True)
    (site / "kit_plugin.py").write_text(KIT)
    (meta / "entry_points.txt").write_text(ENTRY_POINTS)
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: blase-kit\nVersion: 0.3.0\n")
    out = _env()
    out["PYTHONPATH"] = str(site) + os.pathsep + out["PYTHONPATH"]
    return out


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL)


MONITOR_STEP = '''
import numpy as np
from blase_tui import Monitor, step

rng = np.random.default_rng(3)
PRIORS = {"format": 1, "kind": "features", "features": {
    "age": {"type": "numeric", "sample": rng.normal(40, 10, 3000).tolist()},
    "city": {"type": "categorical", "counts": {"a": 500, "b": 500}}}}


@step
def watch(ctx, shift: float = 0.0, tests: list = ["meanshift"]):
    m = Monitor(tests=tests)
    m.load_feature_priors(PRIORS)
    live = {"age": rng.normal(40 + shift, 10, 4000), "city": np.array(["a", "b"] * 2000, dtype=object)}
    for r in m.detect_feature_drift(live):
        print(r.feature, r.test, round(r.p_value, 6), r.drifted)
'''


def test_a_drift_test_plugin_joins_the_monitors_tests(tmp_path: Path, env: dict[str, str]) -> None:
    root = make_project(tmp_path / "p", main_src=MONITOR_STEP)
    lines = {}
    for shift in (0.0, 2.0):
        proc = run([sys.executable, "-m", "blase_tui", "step", "watch", "--set", f"shift={shift}"], root, env)
        assert proc.returncode == 0, proc.stderr
        lines[shift] = {tuple(line.split()[:2]): line.split()[2:] for line in proc.stdout.splitlines()}
    # beside ks (age) and chi2 (city), the plugin's test on age only (it answers None for a categorical feature)
    assert set(lines[0.0]) == {("age", "ks"), ("city", "chi2"), ("age", "meanshift")}
    assert lines[0.0][("age", "meanshift")][1] == "False" and float(lines[0.0][("age", "meanshift")][0]) > 0.01
    assert lines[2.0][("age", "meanshift")] == ["0.0", "True"]  # 0.2 sd over 4,000 records: far past chance
    run_id = run([sys.executable, "-m", "blase_tui", "runs", "find", "--step", "watch", "--param", "shift=2.0",
                  "--latest"], root, env).stdout.strip()
    shown = json.loads(run([sys.executable, "-m", "blase_tui", "runs", "show", run_id, "--json"], root, env).stdout)
    metrics = shown["steps"][0]["metrics"]
    assert metrics["drift/age/meanshift_p"] < 1e-9 and metrics["drift/age/meanshift"] > 5
    assert "drift/age/ks" in metrics and shown["steps"][0]["params"]["tests"] == ["meanshift"]


@pytest.mark.parametrize("tests, expected", [
    ('["sure"]', "the drift test 'sure' (a plugin) gave feature age the p-value 7.0 and statistic 0.5; a p-value is"
                 " a number from 0 to 1"),
    ('["raises"]', "the drift test 'raises' (a plugin) failed on feature age: RuntimeError: the test broke; fix the"
                   " plugin or leave 'raises' out of Monitor(tests=...) / [monitor] tests"),
    ('["nope"]', "the drift test 'nope' comes from a plugin that is not installed; no installed plugin provides it"),
])
def test_a_drift_test_that_misbehaves_is_one_line(tmp_path: Path, env: dict[str, str], tests: str,
                                                  expected: str) -> None:
    root = make_project(tmp_path / "p", main_src=MONITOR_STEP)
    proc = run([sys.executable, "-m", "blase_tui", "step", "watch", "--set", f"tests={tests}"], root, env)
    assert proc.returncode == 1 and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr.split("blase: step")[-1]


def test_a_project_that_does_not_enable_the_plugin_gets_no_drift_test(tmp_path: Path, env: dict[str, str]) -> None:
    root = make_project(tmp_path / "p", main_src=MONITOR_STEP,
                        toml='[project]\nname = "p"\n\n[plugins]\nenabled = ["fits"]\n')
    proc = run([sys.executable, "-m", "blase_tui", "step", "watch"], root, env)
    assert proc.returncode == 1
    assert ("the drift test 'meanshift' comes from the plugin kit (blase-kit), which this project does not enable:"
            ' add "kit" to [plugins] enabled in blase.toml') in proc.stderr


def test_monitor_tests_in_blase_toml(tmp_path: Path, env: dict[str, str]) -> None:
    root = make_project(tmp_path / "p", main_src=MONITOR_STEP.replace('tests: list = ["meanshift"]', "tests=None"),
                        toml='[project]\nname = "p"\n\n[monitor]\ntests = ["meanshift"]\n')
    proc = run([sys.executable, "-m", "blase_tui", "step", "watch"], root, env)
    assert proc.returncode == 0 and "age meanshift" in proc.stdout, proc.stderr
    (root / "blase.toml").write_text('[project]\nname = "p"\n\n[monitor]\ntests = "meanshift"\n')
    proc = run([sys.executable, "-m", "blase_tui", "step", "watch"], root, env)
    assert proc.returncode == 2 and "[monitor] tests must be a list of drift test names from plugins" in proc.stderr


def test_a_framework_plugin_trains_saves_and_evaluates(tmp_path: Path, env: dict[str, str]) -> None:
    from test_train_evaluate import prepared_digits

    data = prepared_digits(tmp_path / "prepared")
    script = textwrap.dedent(f'''
        import json
        from kit_plugin import Majority
        from blase_tui import Evaluate, Train

        trainer = Train()
        trainer.set_model(Majority(), framework="majority")
        history = trainer.train(epochs=2, data_dir={str(data)!r})
        path = trainer.save_model({str(tmp_path / "models" / "majority.json")!r})
        result = Evaluate().evaluate_live(model_path=path, test_data_dir={str(data / "test")!r},
                                          task_type="classification")
        print(json.dumps({{"epochs": len(history), "accuracy": result["accuracy"], "records": result["records"],
                          "saved": json.loads(open(path).read())}}))
    ''')
    proc = run([sys.executable, "-c", script], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["epochs"] == 2 and len(out["saved"]["counts"]) == 10 and sum(out["saved"]["counts"]) > 1000
    assert 0.05 < out["accuracy"] < 0.2  # the most frequent digit: about a tenth of the test split


def test_an_executor_plugin_reads_a_steps_files(tmp_path: Path, env: dict[str, str]) -> None:
    log = tmp_path / "executor.log"
    root = make_project(tmp_path / "p", main_src=textwrap.dedent('''
        from blase_tui import Extract, Load, Transform, step

        def double(batch):
            return {"x": batch["x"], "y": batch["y"] * 2}

        @step
        def read(ctx):
            loader, transformer = Load(), Transform()
            for batch in Extract().load_parquet("data"):
                loader.save_to_filesystem(transformer.apply_function(batch, double), directory="out",
                                          format="parquet")
    '''), toml=f'[project]\nname = "p"\n\n[executor]\nlog = "{log}"\n')
    (root / "data").mkdir()
    import pyarrow as pa
    import pyarrow.parquet as pq

    for i in range(3):
        pq.write_table(pa.table({"x": list(range(100)), "y": [j * i for j in range(100)]}), root / "data" / f"p{i}.parquet")
    proc = run([sys.executable, "-m", "blase_tui", "step", "read", "--executor", "threads", "--workers", "2"], root, env)
    assert proc.returncode == 0, proc.stderr
    written = pq.read_table(sorted((root / "out").glob("*.parquet"))).to_pandas().sort_values(["y", "x"])
    assert len(written) == 300 and written["y"].max() == 2 * 2 * 99  # every row, doubled on the executor's threads
    tasks = log.read_text().splitlines()
    assert len([t for t in tasks if t.startswith("task")]) >= 3 and tasks[-1] == "closed"
    assert "threads executor: 2 thread(s)" in proc.stderr


def test_a_preview_plugin_renders_its_suffix(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "hello.greet").write_text("good morning\n")
    script = ("from pathlib import Path\nfrom rich.console import Console\nfrom blase_tui.render import render_preview\n"
              "Console(width=60).print(render_preview(Path('hello.greet'), width=60))\n")
    proc = run([sys.executable, "-c", script], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert "greeting: good morning" in proc.stdout


def test_a_run_closed_hook_runs_after_the_run_in_its_own_process(tmp_path: Path, env: dict[str, str]) -> None:
    root = make_project(tmp_path / "p", main_src="from blase_tui import step\n\n@step\ndef one(ctx):\n    pass\n",
                        toml='[project]\nname = "p"\n\n[plugins]\nenabled = ["kit"]\n\n[plugins.kit]\nword = "done"\n')
    proc = run([sys.executable, "-m", "blase_tui", "step", "one"], root, env)
    assert proc.returncode == 0, proc.stderr
    run_id = run([sys.executable, "-m", "blase_tui", "runs", "find", "--step", "one", "--latest"], root,
                 env).stdout.strip()
    wait_for(lambda: (root / "closed.txt").exists(), timeout=60, what="the run_closed hook")
    assert (root / "closed.txt").read_text() == f"{run_id} done"


def test_distributions_count_live_values_on_the_reference() -> None:
    """What a drift test plugin receives: the live side's weights sum to the values added, its weighted mean is
    the live mean exactly (values between two reference values sit at their own mean), and a categorical feature
    arrives as categories with counts."""
    from blase_tui.modules import drift

    rng = np.random.default_rng(0)
    live_values = rng.normal(1, 2, 5000)
    acc = drift.NumericLive(drift.NumericReference(rng.normal(0, 1, 800)))
    acc.add(live_values)
    reference, live = acc.distributions()
    assert reference.kind == live.kind == "numeric" and reference.n == 800 and live.n == 5000
    assert float((live.values * live.weights).sum() / live.n) == pytest.approx(live_values.mean(), rel=1e-9)
    assert np.all(np.diff(live.values) >= 0)
    counts = drift.CountsLive({"a": 3.0, "b": 1.0})
    counts.add(np.array(["b", "b", "c"], dtype=object))
    ref, seen = counts.distributions()
    assert (ref.kind, list(ref.values), list(ref.weights)) == ("categorical", ["a", "b"], [3.0, 1.0])
    assert (list(seen.values), list(seen.weights), seen.n) == (["b", "c"], [2.0, 1.0], 3)
