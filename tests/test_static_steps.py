"""An up-to-date step answers without importing the project's module (core/static_steps.py, issue 28): the step
known from the entry module's syntax tree gives the signature importing it gives, so reuse is decided the same;
anything but the plain case imports the module as before."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import make_project

from blase_tui.core import static_steps
from blase_tui.core.execution import StepExecution
from blase_tui.core.project import Project
from blase_tui.core.signature import function_hash

PLAIN = '''
import os
from pathlib import Path

import helper
from blase_tui import Extract, step

Path(__file__).with_name("imported.txt").open("a").write("x")  # what importing costs (numpy, torch, ...)
RATE = 0.1


@step
def read(ctx, path: str = "data/values.npy", scale: float = 2.0, tags: list = ["a"], opts: dict = {"k": 1}):
    """Read and scale."""
    total = sum(float(b["array"].sum()) for b in Extract().load_npy(path)) * scale * helper.factor()
    (ctx.artifact_dir / "total.txt").write_text(str(total))
    # a comment at the body's depth is the function's


@step
def other(ctx, n=3, *, keyword: str = "kw"):
    return n


if __name__ == "__main__":
    print("script")
'''


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    import numpy as np

    root = make_project(tmp_path / "p", main_src=PLAIN, toml='[project]\nname = "p"\n')
    (root / "helper.py").write_text("def factor():\n    return 1.5\n")
    (root / "data").mkdir()
    np.save(root / "data" / "values.npy", np.arange(10.0))
    return root


def signatures(root: Path) -> dict[str, tuple[str, str]]:
    """Per step: the signature known from the source, and the one importing the module gives."""
    project = Project.at(root)
    out = {}
    for name, info in project.load_steps().items():
        known = static_steps.step_info(project, name)
        assert known is not None, name
        assert (known.defaults, known.takes_ctx) == (info.defaults, info.takes_ctx)
        digests = [StepExecution(project, name, params=dict(i.defaults), func_hash=function_hash(i.func),
                                 func=i.func).signature()[0].digest for i in (known, info)]
        out[name] = (digests[0], digests[1])
    return out


def test_a_step_known_from_its_source_has_the_signature_importing_gives(plain: Path) -> None:
    for name, (known, imported) in signatures(plain).items():
        assert known == imported, name


def test_an_up_to_date_step_does_not_import_the_project(plain: Path, blase) -> None:
    blase("step", "read", cwd=plain, check=True)
    imports = (plain / "imported.txt").read_text()
    again = blase("step", "read", cwd=plain, check=True)
    assert "is up to date: nothing ran" in again.stderr
    assert (plain / "imported.txt").read_text() == imports, "the module was imported to find the step up to date"
    # a param given on the command line: a new signature, so the module is imported and the step runs
    ran = blase("step", "read", "--set", "scale=3", cwd=plain, check=True)
    assert "succeeded" in ran.stderr and len((plain / "imported.txt").read_text()) == len(imports) + 1
    # an edit of the helper it calls: runs again
    (plain / "helper.py").write_text("def factor():\n    return 2.5\n")
    assert "succeeded" in blase("step", "read", cwd=plain, check=True).stderr
    # a comment inside the step: runs again; a comment after it, at the module's depth: up to date
    main = plain / "main.py"
    main.write_text(main.read_text().replace("    # a comment at the body's depth", "    # an edited comment"))
    assert "succeeded" in blase("step", "read", cwd=plain, check=True).stderr
    main.write_text(main.read_text() + "\n# at the module's depth\n")
    assert "up to date" in blase("step", "read", cwd=plain, check=True).stderr


@pytest.mark.parametrize("source", [
    "@step(reuse=False)\ndef read(ctx, n=1):\n    pass\n",
    "@step('read')\ndef reader(ctx, n=1):\n    pass\n",
    "@step\ndef read(ctx, n=int(os.environ.get('N', 1))):\n    pass\n",
    "@step\ndef read(ctx, **options):\n    pass\n",
    "@step\ndef read(ctx, n):\n    pass\n",
    "@step\nasync def read(ctx, n=1):\n    pass\n",
    "@step\ndef read(ctx, n=1):\n    pass\n\nread = wrap(read)\n",
    "@step\ndef read(ctx, n=1):\n    pass\n\nfor name in ('a', 'b'):\n    step(name)(lambda ctx: None)\n",
    "from helpers import *\n\n@step\ndef read(ctx, n=1):\n    pass\n",
    "import importlib\nmod = importlib.import_module('x')\n\n@step\ndef read(ctx, n=1):\n    pass\n",
    "def read(ctx, n=1):\n    pass\n",
])
def test_anything_but_the_plain_case_imports_the_module(tmp_path: Path, source: str) -> None:
    main = "import os\nfrom blase_tui import step\n\n\ndef wrap(f):\n    return f\n\n\n" + source
    root = make_project(tmp_path / "p", main_src=textwrap.dedent(main), toml='[project]\nname = "p"\n')
    assert static_steps.step_info(Project.at(root), "read") is None


def test_a_helper_module_with_steps_of_its_own_imports_the_module(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", main_src="import more\nfrom blase_tui import step\n\n\n@step\n"
                                                 "def read(ctx, n=1):\n    pass\n", toml='[project]\nname = "p"\n')
    (root / "more.py").write_text("from blase_tui import step\n\n\n@step\ndef read(ctx, n=2):\n    pass\n")
    assert static_steps.step_info(Project.at(root), "read") is None
    (root / "more.py").write_text("def helper():\n    return 1\n")
    assert static_steps.step_info(Project.at(root), "read") is not None


def test_a_second_copy_still_finds_the_step_locked(plain: Path, blase, tmp_path: Path) -> None:
    """The source-only answer takes the step's lock as `blase step` always has: a copy running is exit 3."""
    from blase_tui.core.lock import StepLock

    blase("step", "read", cwd=plain, check=True)
    lock = StepLock(Project.at(plain).locks_dir, "read").acquire()
    try:
        proc = blase("step", "read", cwd=plain)
        assert proc.returncode == 3 and "step `read` is already running" in proc.stderr
    finally:
        lock.release()
