"""The plugin mechanism (issue 15): plugins are found from their entry points without being imported, a CLI noun
a plugin adds works and loads its plugin only when used, a broken or missing plugin is one line where it is used
and never in an unrelated command, and `[plugins]` in blase.toml is checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import _env, make_project

GOOD = '''
import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def greet(name: str = "world") -> None:
    """Say hello."""
    print(f"hello {name}")


@app.command()
def other() -> None:
    """A second command, so that `greet` is a subcommand."""


def load(extract, path, **options):
    from blase_tui.modules.batch import Batch, BatchMeta
    import numpy as np

    yield Batch(["a", "b"], {"value": np.array([1, 2])}, BatchMeta(str(path), 0))
'''


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder on PYTHONPATH holding two plugin distributions: `hello` (a CLI noun and a reader) and `broken`
    (whose module fails to import). Each module leaves a marker file when imported."""
    folder = tmp_path / "site"
    folder.mkdir()
    marker = tmp_path / "imported"
    (folder / "hello_plugin.py").write_text(f"open({str(marker)!r} + '.hello', 'w').close()\n" + GOOD)
    (folder / "broken_plugin.py").write_text(f"open({str(marker)!r} + '.broken', 'w').close()\n"
                                             "import a_module_that_is_not_installed\n")
    for dist, points in (("blase_hello-0.2.0", "[blase.cli]\nhello = hello_plugin:app\n\n[blase.readers]\n"
                          "hello = hello_plugin:load\n"),
                         ("blase_broken-1.0.0", "[blase.cli]\nbroken = broken_plugin:app\n")):
        meta = folder / f"{dist}.dist-info"
        meta.mkdir()
        (meta / "entry_points.txt").write_text(points)
        name, version = dist.split("-")
        (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n")
    return folder


def blase(*args: str, cwd: Path, site: Path | None = None) -> subprocess.CompletedProcess:
    env = _env()
    if site is not None:
        env["PYTHONPATH"] = str(site) + os.pathsep + env["PYTHONPATH"]
    return subprocess.run([sys.executable, "-m", "blase_tui", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_plugins_are_listed_without_being_imported(site: Path, tmp_path: Path) -> None:
    out = json.loads(blase("plugins", "list", "--json", cwd=tmp_path, site=site).stdout)
    found = {(r["distribution"], r["kind"], r["name"]) for r in out["installed"]}
    assert {("blase-hello", "cli", "hello"), ("blase-hello", "readers", "hello"), ("blase-broken", "cli", "broken")} <= found
    help_text = blase("--help", cwd=tmp_path, site=site).stdout
    assert "hello" in help_text and "plugin blase-hello 0.2.0" in help_text
    assert not list(tmp_path.glob("imported.*")), "listing plugins or --help imported one"


def test_a_plugin_noun_runs_and_imports_only_its_plugin(site: Path, tmp_path: Path) -> None:
    proc = blase("hello", "greet", "--name", "ada", cwd=tmp_path, site=site)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "hello ada"
    assert [p.name for p in tmp_path.glob("imported.*")] == ["imported.hello"]
    assert "greet" in blase("hello", "--help", cwd=tmp_path, site=site).stdout


def test_a_broken_plugin_is_one_line_where_it_is_used_only(site: Path, tmp_path: Path) -> None:
    proc = blase("broken", "anything", cwd=tmp_path, site=site)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("blase: the plugin blase-broken 1.0.0 (`blase broken`) does not load:"
                                  " ModuleNotFoundError: No module named 'a_module_that_is_not_installed'")
    for marker in tmp_path.glob("imported.*"):
        marker.unlink()
    root = make_project(tmp_path / "p", toml='[project]\nname = "p"\n')
    other = blase("runs", "list", cwd=root, site=site)
    assert other.returncode == 0 and other.stderr == ""
    assert not list(tmp_path.glob("imported.*")), "an unrelated command imported a plugin"


def test_a_reader_plugin_is_an_extract_method(site: Path, tmp_path: Path) -> None:
    script = ("from blase_tui import Extract\n"
              "batches = list(Extract().load_hello('somewhere'))\n"
              "print(batches[0].keys[:], batches[0]['value'].tolist())\n"
              "try:\n    Extract().load_nothing('x')\nexcept Exception as exc:\n    print(exc)\n")
    env = _env()
    env["PYTHONPATH"] = str(site) + os.pathsep + env["PYTHONPATH"]
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "['a', 'b'] [1, 2]"
    assert lines[1] == ("Extract.load_nothing comes from a plugin that is not installed; no installed plugin"
                        " provides it (`blase plugins list`).")


@pytest.mark.parametrize(("section", "expected"), [
    ('enabled = "fits"', "[plugins] enabled must be a list of plugin names"),
    ("mlflow = 3", "[plugins] mlflow must be a table of that plugin's settings"),
])
def test_a_bad_plugins_section_is_a_usage_error(tmp_path: Path, section: str, expected: str) -> None:
    root = make_project(tmp_path / "p", toml=f'[project]\nname = "p"\n\n[plugins]\n{section}\n')
    proc = blase("steps", cwd=root)
    assert proc.returncode == 2 and expected in proc.stderr


def test_an_enabled_plugin_that_is_not_installed_is_said(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", toml='[project]\nname = "p"\n\n[plugins]\nenabled = ["nowhere"]\n')
    proc = blase("plugins", "list", cwd=root)
    assert proc.returncode == 0
    assert "blase: [plugins] enables 'nowhere', which is not installed (pip install blase-nowhere)." in proc.stderr


def test_a_project_that_lists_its_plugins_loads_no_other(site: Path, tmp_path: Path) -> None:
    """Issue 28: `[plugins] enabled` decides what loads in the project's steps: a reader from a plugin the
    project does not list is one line naming the plugin and the fix; listed, it loads; a project without the
    list keeps every installed plugin."""
    script = ("from blase_tui import Extract\n"
              "try:\n    print(len(list(Extract().load_hello('somewhere'))))\n"
              "except Exception as exc:\n    print(exc)\n")
    env = _env()
    env["PYTHONPATH"] = str(site) + os.pathsep + env["PYTHONPATH"]
    outputs = {}
    for name, section in (("other", '[plugins]\nenabled = ["mlflow"]\n'), ("listed", '[plugins]\nenabled = ["hello"]\n'),
                          ("none", "")):
        root = make_project(tmp_path / name, main_src="", toml=f'[project]\nname = "{name}"\n\n{section}')
        proc = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
        outputs[name] = proc.stdout.strip()
    assert outputs["other"] == ("Extract.load_hello comes from the plugin hello (blase-hello), which this project does"
                                " not enable: add \"hello\" to [plugins] enabled in blase.toml (enabled now: mlflow).")
    assert outputs["listed"] == outputs["none"] == "1"
