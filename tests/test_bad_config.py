"""Every user mistake gets exit code 2 and one sentence that names the problem, and the store stays as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_project


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("step", "nope"), "unknown step `nope`; this project's steps are: a, b, c"),
        (("step",), "which step? Give its name, as in `blase step a`; this project's steps are: a, b, c"),
        (("step", "a", "--set", "n=abc"), "--set n=abc: `n` takes a whole number"),
        (("step", "a", "--set", "lr=fast"), "`lr` takes a number"),
        (("step", "a", "--set", "epochs=3"), "step `a` has no param `epochs`"),
        (("step", "a", "--set", "n"), "write it as key=value"),
        (("runs", "show", "zzz"), "no run matches `zzz`"),
        (("runs", "diff", "zzz", "yyy"), "no run matches `zzz`"),
        (("runs", "watch", "zzz"), "no run matches `zzz`"),
        (("runs", "close", "zzz"), "no run matches `zzz`"),
        (("runs", "reproduce", "zzz"), "no run matches `zzz`"),
        (("models", "show", "m:x"), "model version must be a number"),
        (("runs", "list", "--status", "weird"), "--status weird: use one of"),
        (("runs", "find", "--step", "a", "--param", "n"), "--param n: write it as key=value"),
    ],
)
def test_bad_arguments_exit_2(project: Path, blase, args: tuple[str, ...], expected: str) -> None:
    proc = blase(*args, cwd=project)
    assert proc.returncode == 2
    assert expected in _one_line(proc.stderr)
    assert not (project / "runs").exists() or not list((project / "runs").glob("2*")), "no run was created"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[project\nname = "x"\n', "is not valid TOML"),
        ('[projekt]\nname = "x"\n', "unknown section [projekt]"),
        ('[project]\nnam = "x"\n', "unknown key `nam` in [project]"),
        ('[project]\nmemory_budget = "lots"\n', "memory_budget must be a size"),
        ('[project]\nentry = "main.txt"\n', "entry must name a .py file"),
        ('[project]\nkeep_outputs = "everything"\n', "keep_outputs (or false) must be a size"),
        ('[project]\nreuse = "sometimes"\n', "reuse must be true or false"),
        ('steps = 3\n', "`steps` must be a table"),
        ('[steps]\na = 3\n', "`steps.a` must be a table"),
    ],
)
def test_malformed_blase_toml_exits_2(tmp_path: Path, blase, toml: str, expected: str) -> None:
    project = make_project(tmp_path / "p", toml=toml)
    proc = blase("step", "a", cwd=project)
    assert proc.returncode == 2
    line = _one_line(proc.stderr)
    assert expected in line and "blase.toml" in line


def test_no_project_here(tmp_path: Path, blase) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = blase("step", "a", cwd=empty)
    assert proc.returncode == 2
    assert "no blase.toml in" in _one_line(proc.stderr) and "blase create" in proc.stderr
    assert "known projects" not in proc.stderr
    # a project blase knows is suggested, with the -C that reaches it from here
    project = make_project(tmp_path / "p")
    assert blase("projects", "add", str(project), cwd=empty).returncode == 0
    proc = blase("step", "a", cwd=empty)
    assert proc.returncode == 2 and f"known projects: testproj (`blase -C {project} ...`)" in _one_line(proc.stderr)
    gone = blase("-C", str(tmp_path / "nosuch"), "runs", "list", cwd=empty)
    assert gone.returncode == 2 and "(given with -C or BLASE_PROJECT) does not exist" in _one_line(gone.stderr)
    # -C after the command, where people also type it, reaches the project as before it (Typer refused it)
    assert blase("step", "a", "-C", str(project), cwd=empty).returncode == 0
    before = blase("-C", str(project), "runs", "list", cwd=empty)
    for late in (["runs", "list", "-C", str(project)], ["runs", "list", f"--project={project}"]):
        after = blase(*late, cwd=empty)
        assert after.returncode == 0 and after.stdout == before.stdout and len(before.stdout.splitlines()) == 2, after.stderr


def test_entry_module_that_does_not_import(tmp_path: Path, blase) -> None:
    project = make_project(tmp_path / "p", main_src="import not_a_real_module_xyz\n")
    proc = blase("step", "a", cwd=project)
    assert proc.returncode == 2
    line = _one_line(proc.stderr)
    assert "could not import main.py" in line and "not_a_real_module_xyz" in line and "line 1" in line


def test_entry_module_without_steps(tmp_path: Path, blase) -> None:
    project = make_project(tmp_path / "p", main_src="x = 1\n")
    proc = blase("steps", cwd=project)
    assert proc.returncode == 2 and "defines no steps" in _one_line(proc.stderr)


def test_missing_entry_module(tmp_path: Path, blase) -> None:
    project = make_project(tmp_path / "p")
    (project / "main.py").unlink()
    proc = blase("step", "a", cwd=project)
    assert proc.returncode == 2 and "entry module" in _one_line(proc.stderr)


def test_step_param_without_default(tmp_path: Path, blase) -> None:
    src = "from blase_tui import step\n@step\ndef a(ctx, n):\n    pass\n"
    project = make_project(tmp_path / "p", main_src=src)
    proc = blase("step", "a", cwd=project)
    assert proc.returncode == 2 and "`n` without a default" in _one_line(proc.stderr)


def test_unknown_command_is_a_usage_error(project: Path, blase) -> None:
    proc = blase("stpe", "a", cwd=project)
    assert proc.returncode == 2


def test_a_misspelt_step_param_in_blase_toml_is_named(tmp_path: Path, blase) -> None:
    """`lrr = 0.5` for `lr` would leave lr at its default without a word: the step runs, and says so."""
    from conftest import STEPS_MAIN, TOML

    project = make_project(tmp_path / "p", STEPS_MAIN, TOML.replace("lr = 0.1", "lrr = 0.5\nwindow_size = 64"))
    proc = blase("step", "a", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert ("[steps.a] lrr in blase.toml is not an argument of `a`, so `lr` keeps its value 0.1; did you mean `lr`?"
            in proc.stderr)
    assert "window_size" not in proc.stderr  # unlike any argument: a param the step reads itself, not a typo
