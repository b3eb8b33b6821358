"""The architecture's rules that a linter does not check: SQL lives in store/ only, and modules reach the run
through the module API (modules/recording.py) only."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "blase_tui"
SQL = re.compile(r"^\s*(SELECT\b.*\bFROM\b|INSERT\s+(OR\s+\w+\s+)?INTO\b|UPDATE\s+\w+\s+SET\b|DELETE\s+FROM\b"
                 r"|CREATE\s+(TABLE|INDEX|VIEW|TRIGGER)\b|DROP\s+(TABLE|INDEX)\b|PRAGMA\s+\w+)", re.S)


def _sources(skip: str) -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if skip not in p.relative_to(PACKAGE).parts[:1]]


def sql_outside_store() -> list[str]:
    found = []
    for path in _sources("store"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value):
                found.append(f"{where} SQL text {node.value[:40]!r}")
            elif isinstance(node, ast.Attribute) and node.attr in ("execute", "executemany", "executescript", "db"):
                found.append(f"{where} .{node.attr}")
            elif isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if "sqlite3" in names:
                    found.append(f"{where} imports sqlite3")
    return found


def test_no_sql_outside_store() -> None:
    assert sql_outside_store() == []


def test_the_rule_catches_sql(tmp_path: Path, monkeypatch) -> None:
    """The check itself can fail: a module with a query is reported."""
    bad = PACKAGE / "core" / "_probe_sql.py"
    bad.write_text('def f(store):\n    return store.db.query("SELECT * FROM runs")\n')
    try:
        found = sql_outside_store()
    finally:
        bad.unlink()
    assert any("_probe_sql.py:2 SQL text" in f for f in found) and any(".db" in f for f in found)


def test_modules_reach_the_run_through_the_module_api() -> None:
    """No module but the module API and Track touches step contexts, trackers or the store directly."""
    offenders = []
    for path in (PACKAGE / "modules").glob("*.py"):
        if path.name in ("recording.py", "track.py"):
            continue
        text = path.read_text()
        for needle in ("core import context", "core.context", "current_tracker", "core.tracker", "store.runstore",
                       "store import exclusions", "store.exclusions", "store import models", "store.models",
                       ".tracker", "store.db"):
            if needle in text:
                offenders.append(f"{path.name}: {needle}")
    assert offenders == []
