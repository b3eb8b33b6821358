"""`blase runs reproduce` (issue 12): the sample project's run executed again from its recorded code gives the
same bytes on CPU; the project's current code (a deliberately changed model) shows which outputs differ; a
git project's uncommitted changes are part of what is reproduced; a run that cannot be reproduced says why."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import _env, make_project, run_blase, show_json

from blase_tui.core import templates

AGREE = {"identical", "same", "timing"}


def _reproduce(blase, cwd: Path, *args: str) -> tuple[int, dict]:
    proc = blase("runs", "reproduce", *args, "--json", cwd=cwd, timeout=400)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _status(report: dict, step: str, kind: str, name: str) -> str:
    return next(r["status"] for r in report["results"] if (r["step"], r["kind"], r["name"]) == (step, kind, name))


@pytest.fixture(scope="module")
def sample(tmp_path_factory, blase_module) -> tuple[Path, str]:
    root = templates.create("sample", tmp_path_factory.mktemp("repro") / "digits")
    config = root / "blase.toml"
    config.write_text(config.read_text().replace("epochs = 8", "epochs = 2"))
    for args in (("etl", "--start-run"), ("clean",), ("prepare",), ("train",), ("evaluate", "--end-run")):
        blase_module("step", *args, cwd=root, check=True, timeout=300)
    return root, show_json(blase_module, root, "latest")["id"]


@pytest.fixture(scope="module")
def blase_module():
    return run_blase


def test_the_sample_run_reproduces_bit_identically_on_cpu(sample, blase_module) -> None:
    root, run_id = sample
    models = blase_module("models", "list", "--json", cwd=root, check=True).stdout
    code, report = _reproduce(blase_module, root, run_id)
    assert code == 0 and report["identical"] and report["failed"] is None, [r for r in report["results"] if r["status"] not in AGREE] or report
    assert blase_module("models", "list", "--json", cwd=root, check=True).stdout == models, \
        "the model the reproduction trained is not a new version of the project's"
    statuses = {r["status"] for r in report["results"]}
    assert statuses <= AGREE, [r for r in report["results"] if r["status"] not in AGREE]
    # the things that matter are identical byte for byte, not merely "the same"
    for step, kind, name in (("prepare", "dataset", "data/prepared/train"), ("train", "dataset", "models/digits_cnn.pt"),
                             ("evaluate", "artifact", "evaluation/predictions.parquet"),
                             ("evaluate", "metric", "accuracy"), ("train", "metric", "val_loss")):
        assert _status(report, step, kind, name) == "identical", (step, kind, name)
    assert [r for r in report["results"] if r["status"] == "timing"], "time metrics are listed, not compared"
    new = show_json(blase_module, root, report["new_runs"][0])
    assert new["tags"]["reproduces"] == run_id
    assert [s["step"] for s in new["steps"]] == ["etl", "clean", "prepare", "train", "evaluate"]
    assert not (root / ".blase" / "reproduce" / f"{run_id}-1").exists(), "an identical reproduction leaves no folder"


def test_a_changed_model_script_shows_which_outputs_differ(sample, blase_module) -> None:
    root, run_id = sample
    model = root / "scripts" / "model.py"
    original = model.read_text()
    model.write_text(original.replace("nn.Linear(32 * 8 * 8, 64), nn.ReLU(), nn.Linear(64, classes)",
                                      "nn.Linear(32 * 8 * 8, 48), nn.ReLU(), nn.Linear(48, classes)"))
    assert model.read_text() != original
    try:
        code, report = _reproduce(blase_module, root, run_id, "--step", "train", "--code", "current")
        assert code == 1 and not report["identical"]
        assert _status(report, "train", "dataset", "models/digits_cnn.pt") == "different"
        assert _status(report, "train", "metric", "val_loss") == "different"
        assert any("the project's code as it is now" in n for n in report["notes"])
        kept = Path(report["folder"])
        assert (kept / "models" / "digits_cnn.pt").is_file(), "a differing reproduction keeps its files to compare"

        # the recorded code is what the run ran: the edit in the project does not change its reproduction
        code, report = _reproduce(blase_module, root, run_id, "--step", "train")
        assert code == 0 and _status(report, "train", "dataset", "models/digits_cnn.pt") == "identical"
    finally:
        model.write_text(original)


def test_a_git_projects_uncommitted_changes_are_reproduced(tmp_path: Path, blase) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed on this machine")
    main = '''
import json
from pathlib import Path

from blase_tui import step


@step
def write(ctx):
    """Write what settings.json says."""
    value = json.loads(Path("settings.json").read_text())["value"]
    Path("out").mkdir(exist_ok=True)
    Path("out/result.txt").write_text(f"value={value}\\n")
    ctx.log_dataset("out/result.txt", role="output")
    ctx.log_metric("value", value)
'''
    root = make_project(tmp_path / "g", main_src=main, toml='[project]\nname = "g"\n')
    (root / "settings.json").write_text('{"value": 1}\n')
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for cmd in (["git", "init", "-q"], ["git", "add", "main.py", "blase.toml", "settings.json"],
                ["git", "commit", "-qm", "first"]):
        subprocess.run(cmd, cwd=root, check=True, env=env)
    (root / "settings.json").write_text('{"value": 7}\n')  # uncommitted when the run is made
    blase("step", "write", cwd=root, check=True)
    run = show_json(blase, root, "latest")
    assert run["git"]["dirty"] and run["git"]["commit"]
    (root / "settings.json").write_text('{"value": 1}\n')  # back to the commit
    code, report = _reproduce(blase, root, run["id"])
    assert code == 0, report
    assert _status(report, "write", "dataset", "out/result.txt") == "identical"
    assert _status(report, "write", "metric", "value") == "identical"
    assert (root / "out" / "result.txt").read_text() == "value=7\n", "the project's own outputs are untouched"


def test_what_cannot_be_reproduced_is_one_line(tmp_path: Path, blase) -> None:
    root = make_project(tmp_path / "p")
    proc = blase("runs", "reproduce", "latest", cwd=root)
    assert proc.returncode == 2 and proc.stderr.startswith("blase:") and len(proc.stderr.strip().splitlines()) == 1
    script = root / "notebook.py"
    script.write_text("import sys\nsys.argv = ['-c']\nfrom blase_tui import Track\n"
                      "with Track().start_run(name='nb') as t:\n    t.log_metric('x', 1.0)\n")
    blase_python = subprocess.run([sys.executable, "-c", script.read_text()], cwd=root, capture_output=True,
                                  text=True, env=_env())
    assert blase_python.returncode == 0, blase_python.stderr
    proc = blase("runs", "reproduce", "latest", cwd=root)
    assert proc.returncode == 2 and "has no steps to execute again" in proc.stderr
    proc = blase("runs", "reproduce", "latest", "--code", "yesterday", cwd=root)
    assert proc.returncode == 2 and "--code must be `recorded` or `current`" in proc.stderr


def test_a_differing_json_output_shows_its_first_differing_lines(tmp_path: Path, blase) -> None:
    """A step that writes where it ran into its config.json cannot be identical in a reproduction's folder: the
    report says which line differs, and `--code current` names the definition that changed."""
    main = '''
import json
import os
from pathlib import Path

from blase_tui import step


@step
def configure(ctx, size: int = 3):
    """Write the config the later steps read."""
    Path("out").mkdir(exist_ok=True)
    Path("out/config.json").write_text(json.dumps({"size": size, "where": os.getcwd()}))
    ctx.log_dataset("out/config.json", role="output")


@step
def unrelated(ctx):
    """Not part of the run."""
'''
    root = make_project(tmp_path / "cfg", main_src=main, toml='[project]\nname = "cfg"\n')
    blase("step", "configure", cwd=root, check=True)
    run_id = show_json(blase, root, "latest")["id"]
    proc = blase("runs", "reproduce", run_id, cwd=root, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("different") and "out/config.json" in line)
    assert lines[at + 1].strip().startswith("@@") and lines[at + 2].strip() == f'-  "where": "{root}"', lines[at:at + 4]
    assert lines[at + 3].strip().startswith('+  "where": "') and ".blase/reproduce/" in lines[at + 3]
    assert not any('"size"' in line for line in lines[at:at + 4]), "only the lines that differ"
    other = subprocess.run([sys.executable, "-m", "blase_tui", "runs", "reproduce", run_id], cwd=root, text=True,
                           capture_output=True, env={**_env(), "OMP_NUM_THREADS": "2"}, timeout=300)
    assert "environment differs: threads: OMP_NUM_THREADS=1" in other.stdout and "OMP_NUM_THREADS=2" in other.stdout

    (root / "main.py").write_text(main.replace('"""Not part of the run."""', '"""Not part of the run, still."""')
                                  .replace('"size": size', '"size": size * 2'))
    code, report = _reproduce(blase, root, run_id, "--code", "current")
    assert any(n.endswith("changed since the run: main.py (configure)") for n in report["notes"]), report["notes"]
