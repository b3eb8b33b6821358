"""`blase create`, the project registry and `blase demo`."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from conftest import runs_json, show_json


def test_create_lists_templates(tmp_path: Path, blase) -> None:
    proc = blase("create", "--list", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("blank")


def test_create_copies_the_sample_and_registers_it(tmp_path: Path, blase) -> None:
    proc = blase("create", "sample", "my_proj", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    root = tmp_path / "my_proj"
    config = tomllib.loads((root / "blase.toml").read_text())
    assert config["project"]["name"] == "my_proj"
    assert (root / "main.py").is_file() and (root / "scripts" / "engineer.py").is_file()
    assert not (root / "runs").exists() and not (root / "data").exists()
    listed = json.loads(blase("projects", "list", "--json", cwd=tmp_path).stdout)
    assert [(p["name"], Path(p["path"])) for p in listed] == [("my_proj", root.resolve())]
    steps = json.loads(blase("steps", "--json", cwd=root).stdout)
    assert [s["step"] for s in steps] == ["etl", "inspect", "clean", "prepare", "train", "evaluate", "al_train"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("create", "nosuch", "x"), "unknown template `nosuch`"),
        (("create",), "give a project name"),
        (("create", "sample", "bad name!"), "is not a usable project name"),
    ],
)
def test_create_errors(tmp_path: Path, blase, args: tuple[str, ...], expected: str) -> None:
    proc = blase(*args, cwd=tmp_path)
    assert proc.returncode == 2 and expected in proc.stderr


def test_create_refuses_a_non_empty_folder(tmp_path: Path, blase) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "precious.txt").write_text("keep me")
    proc = blase("create", "sample", "taken", cwd=tmp_path)
    assert proc.returncode == 2 and "already exists and is not empty" in proc.stderr
    assert (tmp_path / "taken" / "precious.txt").read_text() == "keep me"


def test_demo_refuses_a_non_empty_folder(tmp_path: Path, blase) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    proc = blase("demo", "mine", cwd=tmp_path)
    assert proc.returncode == 2 and "already exists and is not empty" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_projects_add_and_remove(project: Path, tmp_path: Path, blase) -> None:
    sub = project / "deep" / "inside"
    sub.mkdir(parents=True)
    assert blase("projects", "add", str(sub), cwd=tmp_path).returncode == 0
    listed = json.loads(blase("projects", "list", "--json", cwd=tmp_path).stdout)
    assert [p["name"] for p in listed] == ["testproj"] and Path(listed[0]["path"]) == project.resolve()
    # adding again does not duplicate
    blase("projects", "add", str(project), cwd=tmp_path, check=True)
    assert len(json.loads(blase("projects", "list", "--json", cwd=tmp_path).stdout)) == 1
    missing = blase("projects", "remove", "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "no known project" in missing.stderr
    assert blase("projects", "remove", "testproj", cwd=tmp_path).returncode == 0
    assert json.loads(blase("projects", "list", "--json", cwd=tmp_path).stdout) == []
    assert (project / "blase.toml").exists(), "removing forgets the project, never deletes it"
    not_a_project = blase("projects", "add", str(tmp_path), cwd=tmp_path)
    assert not_a_project.returncode == 2 and "no blase.toml" in not_a_project.stderr


def test_demo_runs_the_sample_project_end_to_end(tmp_path: Path, blase) -> None:
    proc = blase("demo", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    root = tmp_path / "blase-demo"
    runs = runs_json(blase, root)
    assert len(runs) == 2 and all(r["status"] == "succeeded" for r in runs)
    full = show_json(blase, root, runs[1]["id"])
    assert [s["step"] for s in full["steps"]] == ["etl", "inspect", "clean", "prepare", "train", "evaluate"]
    evaluate = full["steps"][-1]
    # a function param is named; a lambda's own text says what it does (not `main.clean.<locals>.<lambda>`)
    assert full["steps"][2]["params"]["filter"] == "lambda b: filter_bad_images(b, min_ink)"
    assert evaluate["metrics"]["accuracy"] >= 0.9, "the sample CNN on the test split"
    assert len(list((root / "data" / "raw" / "images").rglob("*.png"))) == 1797
    assert "blase runs list" in proc.stdout and "blase runs diff" in proc.stdout
    diff = json.loads(blase("runs", "diff", runs[1]["id"], runs[0]["id"], "--json", cwd=root).stdout)
    assert diff["sections"]["params"]["changed"]["train.learning_rate"] == [0.002, 0.0005]
    # a second demo goes next to the first, never over it (the name it picks; running it again takes 25 s)
    from blase_tui.cli.create import _free_name

    assert _free_name(tmp_path / "blase-demo") == tmp_path / "blase-demo-2"
    assert (root / "runs").is_dir() and not (tmp_path / "blase-demo-2").exists()
