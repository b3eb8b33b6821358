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


def _help_texts(command: object, path: list[str]) -> list[tuple[str, str]]:
    texts = [(" ".join(path), getattr(command, "help", None) or "")]
    texts += [(" ".join(path) + f" --{p.name}", getattr(p, "help", None) or "") for p in command.params]  # type: ignore[attr-defined]
    for name, sub in getattr(command, "commands", {}).items():
        texts += _help_texts(sub, [*path, name])
    return texts


def test_help_texts_keep_their_brackets() -> None:
    """`blase --help` renders help as Rich markup, where `[executor] name` is a style tag that vanishes
    ("(default:  name)"): a bracket that is text must be written `\\[`."""
    import typer
    from rich.text import Text

    from blase_tui.cli.app import app

    texts = _help_texts(typer.main.get_command(app), ["blase"])
    assert len(texts) > 100, "every command and option"
    eaten = [(where, text) for where, text in texts if Text.from_markup(text).plain != text.replace("\\[", "[")]
    assert not eaten, f"help text whose [brackets] Rich would eat: {eaten}"
    assert dict(texts)["blase step --executor"].endswith("(default: \\[executor] name).")
