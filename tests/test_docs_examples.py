"""The Python examples in the data docs run as written, in a fresh sample project."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, _env

DOCS = ["data.md"]


def _blocks(name: str) -> list[str]:
    text = (REPO / "docs" / name).read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("docs") / "demo"
    env = {**_env(), "BLASE_HOME": str(root.parent / "home")}
    subprocess.run([sys.executable, "-m", "blase_tui", "create", "sample", str(root)], env=env, check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "blase_tui", "step", "etl"], cwd=root, env=env, check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "blase_tui", "step", "clean"], cwd=root, env=env, check=True,
                   capture_output=True)
    return root


@pytest.mark.parametrize("doc", DOCS)
def test_python_examples_run(sample: Path, doc: str) -> None:
    blocks = _blocks(doc)
    assert len(blocks) >= 5
    for i, code in enumerate(blocks):
        script = sample / f"example_{i}.py"
        script.write_text(code)
        proc = subprocess.run([sys.executable, str(script)], cwd=sample, env=_env(), capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, f"{doc} example {i} failed:\n{code}\n{proc.stderr}"


def test_the_tui_pictures_in_the_docs_are_the_snapshot_tests_screens() -> None:
    """docs/images/tui-*.svg are copies of snapshots the tests check, so a picture cannot show an older screen:
    after `pytest --snapshot-update`, copy the changed ones over."""
    snapshots = {p.read_bytes(): p.name for p in (REPO / "tests" / "__snapshots__").rglob("*.svg")}
    pictures = sorted((REPO / "docs" / "images").glob("tui-*.svg"))
    assert pictures
    stale = [p.name for p in pictures if p.read_bytes() not in snapshots]
    assert not stale, f"{stale}: not the screen any snapshot test checks now; copy the snapshot over"
