"""The journal: what the index holds that no run folder does (labels, label rounds and queues, model versions,
exclusion sets), appended to ``runs/journal.jsonl`` in the same transaction as each change, so that
``blase runs reindex`` can rebuild all of it after ``runs/blase.db`` is lost.

Each line is one row as it stands after a change: ``{"table": "labels", "row": {...}}``. Replaying the lines in
order (an insert, or an update of the row with the same key) gives back the tables. A line is written before
the transaction commits: a process killed in between leaves a row the journal has and the index does not
(replayed on the next rebuild), never the reverse. Torn last lines (a killed writer) are skipped.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

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
    with open(path_of(runs_dir), "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        if durable:
            os.fsync(fh.fileno())


def replay(conn: sqlite3.Connection, runs_dir: Path, tables: set[str],
           step_runs: dict[int, int] | None = None) -> dict[str, int]:
    """Insert or update every journalled row of ``tables``, in order; returns the number of lines per table.
    ``step_runs`` maps the step execution ids the journal names to those of the rebuilt index (a rebuilt
    index numbers them anew); an id it does not know becomes NULL rather than name another execution."""
    counts: dict[str, int] = {}
    step_runs = step_runs or {}
    path = path_of(runs_dir)
    if not path.is_file():
        return counts
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                continue  # a torn last line
            try:
                entry = json.loads(line)
                table, row = entry["table"], entry["row"]
            except (ValueError, KeyError, TypeError):
                continue
            keys = TABLES.get(table)
            if keys is None or table not in tables or not isinstance(row, dict):
                continue
            if row.get("step_run_id") is not None:
                row["step_run_id"] = step_runs.get(int(row["step_run_id"]))
            columns = list(row)
            updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys) or f"{keys[0]} = {keys[0]}"
            # an upsert, never INSERT OR REPLACE: replacing a round would delete its queue (foreign key cascade)
            conn.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}",
                [row[c] for c in columns],
            )
            counts[table] = counts.get(table, 0) + 1
    return counts
