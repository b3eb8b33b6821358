"""docs/quickstart.md runs as written, in order, in a fresh folder, and prints what it shows (the rules are in
test_docs_shell.py; this page has a file of its own so that it runs beside the README's on another worker)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_docs_shell import check_page

pytestmark = pytest.mark.timeout(600)


def test_quickstart_runs_as_written(tmp_path: Path) -> None:
    check_page("docs/quickstart.md", tmp_path)
