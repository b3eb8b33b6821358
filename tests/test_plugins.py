"""The plugin mechanism (issue 15): plugins are found from their entry points without being imported, a CLI noun
a plugin adds works and loads its plugin only when used, a broken or missing plugin is one line where it is used
and never in an unrelated command, and `[plugins]` in blase.toml is checked."""

from __future__ import annotations

import json
import os
import re
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
    from blase_tui.plugin import Batch, BatchMeta
    import numpy as np

    yield Batch(["a", "b"], {"value": np.array([1, 2])}, BatchMeta(str(path), 0))


def times(batch, factor=2):
    return {"value": batch["value"] * factor}
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
                          "hello = hello_plugin:load\n\n[blase.transforms]\ntimes = hello_plugin:times\n"),
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


def test_a_transform_plugin_is_a_transform_method(site: Path, tmp_path: Path) -> None:
    """Issue 28: `blase.transforms`: `Transform().apply_NAME(batch, **options)` runs the plugin's function as
    `apply_function` would; a project that does not enable the plugin is refused in one line."""
    script = ("from blase_tui import Extract, Transform\n"
              "batch = next(Extract().load_hello('x'))\n"
              "print(Transform().apply_times(batch, factor=5)['value'].tolist())\n"
              "print(Transform().apply_times(batch)['value'].tolist())\n")
    env = _env()
    env["PYTHONPATH"] = str(site) + os.pathsep + env["PYTHONPATH"]
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[5, 10]", "[2, 4]"]
    root = make_project(tmp_path / "p", main_src="", toml='[project]\nname = "p"\n\n[plugins]\nenabled = ["fits"]\n')
    refused = subprocess.run([sys.executable, "-c", "from blase_tui import Transform\nTransform().apply_times"],
                             cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert "Transform.apply_times comes from the plugin hello (blase-hello), which this project does not enable" \
        in refused.stderr


def test_first_party_plugins_use_only_the_plugin_api() -> None:
    """Issue 28: the first-party plugins import blase only through `blase_tui.plugin` and the public `blase_tui`
    modules, so blase's internals can change under them."""
    import re

    repo = Path(__file__).resolve().parent.parent
    found = []
    for source in sorted(repo.glob("plugins/blase-*/blase_*/*.py")):
        for number, line in enumerate(source.read_text().splitlines(), start=1):
            m = re.match(r"\s*(?:from|import)\s+(blase_tui[\w.]*)", line)
            if m and m.group(1) not in ("blase_tui", "blase_tui.plugin"):
                found.append(f"{source.relative_to(repo)}:{number}: {line.strip()}")
    assert len(list(repo.glob("plugins/blase-*/blase_*/*.py"))) >= 6
    assert not found, found


def test_the_writing_a_plugin_example_runs_as_written(tmp_path: Path) -> None:
    """docs/plugins.md's blase-hello, installed as written (its module and its pyproject's entry points), runs the
    page's two commands with the outputs it shows."""
    import tomllib

    page = (Path(__file__).resolve().parent.parent / "docs" / "plugins.md").read_text()
    module = next(b for b in re.findall(r"```python\n(.*?)```", page, flags=re.S) if b.startswith("# blase_hello.py"))
    project = next(b for b in re.findall(r"```toml\n(.*?)```", page, flags=re.S) if "entry-points" in b)
    points = tomllib.loads(project)["project"]["entry-points"]
    site = tmp_path / "site"
    (site / "blase_hello-0.1.0.dist-info").mkdir(parents=True)
    (site / "blase_hello.py").write_text(module)
    (site / "blase_hello-0.1.0.dist-info" / "entry_points.txt").write_text(
        "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in names.items()) + "\n"
                for group, names in points.items()))
    (site / "blase_hello-0.1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: blase-hello\n"
                                                                  "Version: 0.1.0\n")
    greet = blase("hello", "greet", "--name", "ada", cwd=tmp_path, site=site)
    assert greet.returncode == 0 and greet.stdout.strip() == "hello ada", greet.stderr
    line = next(x for x in page.splitlines() if x.startswith('python -c "from blase_tui import Extract, Transform'))
    code, _, shown = line.partition("   # ")
    env = _env()
    env["PYTHONPATH"] = str(site) + os.pathsep + env["PYTHONPATH"]
    proc = subprocess.run(["bash", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == shown.strip(), proc.stderr
