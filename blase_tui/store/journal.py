"""The journal: what the index holds that no run folder does (labels, label rounds and queues, model versions,
exclusion sets), appended to ``runs/journal.jsonl`` in the same transaction as each change, so that
``blase runs reindex`` can rebuild all of it after ``runs/blase.db`` is lost.

Each line is one row as it stands after a change: ``{"table": "labels", "row": {...}}``. Replaying the lines in
order (an insert, or an update of the row with the same key) gives back the tables. A line is written before
the transaction commits: a process killed in between leaves a row the journal has and the index does not
(replayed on the next rebuild), never the reverse. A torn last line (a killed writer) is ignored, and the next
write starts on a line of its own so it is never glued to it.

The journal is read back as untrusted input: a line that is not UTF-8, not JSON, not an entry of a journalled
table, names a column the table does not have, holds a value of the wrong kind or a name that could not be one
(a model file name with a ``..``), or text a listing would print with a control character in it (a model's
run, framework or metric names) is skipped and named with its line number, never replayed and never a traceback;
every good line around it still is.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from blase_tui.store.events import json_objects
from blase_tui.store.safepath import UnsafePath, is_digest, relative_name, shown

JOURNAL = "journal.jsonl"
# the tables it covers, with their primary keys
TABLES = {
    "labels": ("id",),
    "label_rounds": ("number",),
    "label_queue": ("round", "position"),
    "models": ("name", "version"),
    "model_aliases": ("name", "alias"),
    "exclusions": ("name", "version", "key"),
}
# columns a path may be made of: relative names inside their place (safepath); of those, the ones that are a
# single file or folder name; and content hashes, which name store objects
_NAMES = {"models": ("name", "file_name", "run_id"), "model_aliases": ("name", "alias"),
          "exclusions": ("name", "run_id")}
_PLAIN = {("models", "file_name"), ("models", "run_id"), ("model_aliases", "alias"), ("exclusions", "name"),
          ("exclusions", "run_id")}
_DIGESTS = {"models": ("file_hash", "card_hash")}
# text listings print as it is (a newline in it would fake a line), and JSON text whose every key and text value
# is printed so (a model's metrics: an object of them)
_PRINTED = {"models": ("framework",)}
_JSON_OBJECTS = {"models": ("metrics",)}


def path_of(runs_dir: Path) -> Path:
    return runs_dir / JOURNAL


def record(conn: sqlite3.Connection, runs_dir: Path, table: str, where: str, args: tuple[Any, ...] = (), *,
           durable: bool = False) -> None:
    """Append the rows of ``table`` matching ``where`` as they stand now (inside the caller's transaction).
    ``durable`` flushes the journal to the disk (labels: each survives a power cut, as in the index)."""
    if table not in TABLES:
        raise ValueError(f"{table} is not a journalled table")
    rows = conn.execute(f"SELECT * FROM {table} WHERE {where}", args).fetchall()
    if not rows:
        return
    columns = rows[0].keys()
    text = "".join(json.dumps({"table": table, "row": dict(zip(columns, tuple(r), strict=True))}) + "\n"
                   for r in rows)
    runs_dir.mkdir(parents=True, exist_ok=True)
    with open(path_of(runs_dir), "a+b") as fh:
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":  # a torn last line: ours starts on a line of its own
                text = "\n" + text
        fh.write(text.encode("utf-8"))
        fh.flush()
        if durable:
            os.fsync(fh.fileno())


def entries(runs_dir: Path, bad: list[str] | None = None,
            only: set[str] | None = None) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """``(line number, table, row)`` for each well-formed line, in order. Lines that are not (invalid UTF-8 or
    JSON, not a ``{"table", "row"}`` entry of a journalled table) go to ``bad`` as ``"runs/journal.jsonl line N:
    why"``; a torn last line is left out silently. ``only``: just the lines of those tables (others are not parsed,
    nor reported)."""
    marks = None if only is None else [f'"table": "{t}"'.encode() for t in sorted(only)]
    for number, entry in json_objects(path_of(runs_dir), bad, f"runs/{JOURNAL}", marks):
        table, row = entry.get("table"), entry.get("row")
        if table not in TABLES or not isinstance(row, dict):
            if bad is not None:
                bad.append(f"runs/{JOURNAL} line {number}: not an entry of a journalled table")
            continue
        if only is None or table in only:
            yield number, table, row


def _columns(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """The table's columns and their declared types (``INTEGER``, ``REAL``, ``TEXT``)."""
    return {r[1]: str(r[2]).upper() for r in conn.execute(f"PRAGMA table_info({table})")}


def _why_not(table: str, row: dict[str, Any], columns: dict[str, str]) -> str | None:
    """Why ``row`` cannot be replayed into ``table`` (None: it can)."""
    unknown = sorted(set(row) - set(columns))
    if unknown:
        return f"the {table} table has no column {unknown[0][:40]!r}"
    for column, value in row.items():
        if value is not None and not isinstance(value, str | int | float) or isinstance(value, bool):
            return f"{table}.{column} holds {type(value).__name__}, not a number or text"
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            return f"{table}.{column} holds a number too large for the index"
        kind = columns[column]
        if value is not None and (kind == "INTEGER" and not isinstance(value, int)
                                  or kind == "REAL" and not isinstance(value, int | float)):
            wanted = "a whole number" if kind == "INTEGER" else "a number"
            return f"{table}.{column} holds {type(value).__name__}, not {wanted}"
    missing = [k for k in TABLES[table] if row.get(k) is None]
    if missing:
        return f"{table} row without its key {missing[0]}"
    for column in _NAMES.get(table, ()):
        if row.get(column) is None:
            continue
        try:
            name = relative_name(row[column], what=f"{table}.{column}")
        except UnsafePath as exc:
            return str(exc).rstrip(".")
        if "/" in name and (table, column) in _PLAIN:
            return f"{table}.{column} {name[:60]!r} is not one plain name"
    for column in _DIGESTS.get(table, ()):
        if row.get(column) is not None and not is_digest(row[column]):
            return f"{table}.{column} is not a content hash"
    for column in _PRINTED.get(table, ()):
        if isinstance(row.get(column), str) and not row[column].isprintable():
            return f"{table}.{column} {shown(row[column], 60)} is not a line of printable text"
    for column in _JSON_OBJECTS.get(table, ()):
        if row.get(column) is not None and not _printable_object(row[column]):
            return f"{table}.{column} is not a JSON object of printable names"
    return None


def _printable_object(text: Any) -> bool:
    """Whether ``text`` is a JSON object whose every key and text value, at any depth, is printable."""
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return False

    def printable(v: Any) -> bool:
        if isinstance(v, str):
            return v.isprintable()
        if isinstance(v, list):
            return all(printable(x) for x in v)
        if isinstance(v, dict):
            return all(printable(k) and printable(x) for k, x in v.items())
        return True

    return isinstance(value, dict) and printable(value)


def replay(conn: sqlite3.Connection, runs_dir: Path, tables: set[str],
           step_runs: dict[int, int] | None = None, bad: list[str] | None = None) -> dict[str, int]:
    """Insert or update every journalled row of ``tables``, in order; returns the number of lines per table.
    ``step_runs`` maps the step execution ids the journal names to those of the rebuilt index (a rebuilt
    index numbers them anew); an id it does not know becomes NULL rather than name another execution. Lines that
    cannot be replayed are skipped and named in ``bad``."""
    counts: dict[str, int] = {}
    step_runs = step_runs or {}
    columns = {t: _columns(conn, t) for t in tables}
    for number, table, row in entries(runs_dir, bad):
        if table not in tables:
            continue
        why = _why_not(table, row, columns[table])
        if why is None:
            if row.get("step_run_id") is not None:
                row["step_run_id"] = step_runs.get(row["step_run_id"])
            keys = TABLES[table]
            names = list(row)  # each checked against the table's own columns above: safe to name in SQL
            updates = ", ".join(f"{c} = excluded.{c}" for c in names if c not in keys) or f"{keys[0]} = {keys[0]}"
            try:
                # an upsert, never INSERT OR REPLACE: replacing a round would delete its queue (foreign key cascade)
                conn.execute(
                    f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
                    f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}",
                    [row[c] for c in names],
                )
            except sqlite3.IntegrityError as exc:  # a NOT NULL or a round a damaged line held: this line only
                why = f"does not fit the {table} table ({exc})"
        if why is not None:
            if bad is not None:
                bad.append(f"runs/{JOURNAL} line {number}: {why}")
            continue
        counts[table] = counts.get(table, 0) + 1
    return counts


def highest(runs_dir: Path, fields: dict[str, str], where: dict[str, Any] | None = None) -> int:
    """The largest whole number the journal's lines hold in ``fields`` (``{table: column}``), 0 if none: a
    number a new row must not take even when the index lost it (``labels.start_round``; a model's or an exclusion
    set's next version, with ``where={"name": name}``: only rows whose columns hold those values). Lines a rebuild
    skipped count too, so their number is never handed out again; one too large for the index to add 1 to
    does not."""
    top = 0
    for _, table, row in entries(runs_dir, only=set(fields)):
        if where and any(row.get(k) != v for k, v in where.items()):
            continue
        value = row.get(fields[table])
        if isinstance(value, int) and not isinstance(value, bool) and value < 2**63 - 1:
            top = max(top, value)
    return top
