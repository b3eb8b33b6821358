"""Rebuild index rows from run folders: a run folder copied in from another project (or a lost database)
becomes visible again. Each folder's ``run.json`` says what the run was; metrics come from the event files.

``blase runs reindex`` is all or nothing, two ways:

- **the index is there and sound** (run folders copied in): the runs it lacks are added in one transaction on it,
  so a crash or an error part way adds none of them. Other processes (a step, the TUI) may have the index open:
  replacing the file under them would lose what they write, so it is never swapped.
- **the index is lost, empty or damaged**: a new one is built from the run folders and the journal into a file
  of its own (``runs/.blase.db.rebuild-<pid>``) while the old file stays as it was; only when it is complete is
  the damaged file kept aside and the new one renamed into place (``db.rebuilding``, which holds the index
  exclusively meanwhile, so no process writes into the file being replaced).

What the folders hold is untrusted: a ``run.json`` that cannot be indexed skips that run (its rows undone, a
savepoint), a bad line of an events file or of the journal skips that line, each named, never a traceback.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase_tui.store import journal
from blase_tui.store.events import json_objects
from blase_tui.store.records import RUN_JSON_FORMAT, Artifact, RunDescription
from blase_tui.store.runstore import CODE_IMPORTED, CODE_LOADED, CODE_USED, RunStore, to_json_value
from blase_tui.store.safepath import UnsafePath, inside, is_digest, relative_name, shown


@dataclass
class ReindexReport:
    added: list[str] = field(default_factory=list)
    present: int = 0
    broken: list[tuple[str, str]] = field(default_factory=list)  # (folder, reason)
    missing_folders: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # artifacts left out: content not as recorded
    journal: dict[str, int] = field(default_factory=dict)  # rows rebuilt from runs/journal.jsonl, per table
    bad_lines: list[str] = field(default_factory=list)  # "FILE line N: why", of events files and the journal
    rebuilt: str | None = None  # why the index was built anew ("missing", "empty", what was damaged); None: added to
    aside: Path | None = None  # where the damaged index was kept


def _ingest(store: RunStore, folder: Path, artifacts: tuple[Artifact, ...],
            mismatched: list[str]) -> list[tuple[str, str, int | None]]:
    """The run folder's artifacts, each hashed on its way into the content store: a file whose content does not
    match the hash its run.json records (a truncated copy) is reported in ``mismatched`` and left out, so it
    can never stand in for the genuine content under that hash."""
    from blase_tui.store.hashing import hash_file

    items = []
    for a in artifacts:
        try:  # a name or hash from run.json: checked before any file is touched
            if not is_digest(a.hash):
                raise UnsafePath(f"artifact {shown(a.to_json())} has no sha256")
            path = inside(folder / "artifacts", a.name, what="artifact name in run.json")
        except UnsafePath as exc:
            mismatched.append(f"{folder.relative_to(store.runs_dir)}: left out: {exc}")
            continue
        if path.is_file() and not path.is_symlink():
            # hashed even when it is the store's own object (a hard link): an edit in place shows here
            actual = hash_file(path)
            if actual != a.hash:
                mismatched.append(f"{path.relative_to(store.runs_dir)}: its content hashes to {actual[:12]},"
                                  f" not the recorded {a.hash[:12]}")
                continue
            if not (store.cas.has(a.hash) and os.path.samefile(store.cas.path_of(a.hash), path)):
                store.cas.put_file(path, digest=actual)
            store.cas.link_into(a.hash, path)
        elif not store.cas.has(a.hash):
            mismatched.append(f"{path.relative_to(store.runs_dir)}: missing, and not in the content store")
            continue
        items.append((path.relative_to(folder / "artifacts").as_posix(), a.hash, a.size))
    return items


def _metric_rows(path: Path, run_id: str, step_run_id: int,
                 bad: list[str] | None = None) -> list[tuple[Any, ...]]:
    """The metric events of an events file as index rows; a line that is not one (invalid bytes or JSON, a key
    that is not printable text, a value that is not a number) is left out and named in ``bad``."""
    name = "/".join(path.parts[-3:]) if path.name == "events.jsonl" else "/".join(path.parts[-2:])
    rows = []
    for number, e in json_objects(path, bad, f"runs/{name}"):
        if e.get("type") != "metric":
            continue
        key, value, iteration, t = e.get("key"), e.get("value"), e.get("iteration"), e.get("t")
        why = None
        if not isinstance(key, str) or not key or not key.isprintable() or len(key) > 250:
            why = "a metric whose key is not a short line of printable text"
        elif not _number(value) or not _number(t):
            why = f"metric {key!r} without a number for its value or time"
        elif iteration is not None and (not isinstance(iteration, int) or isinstance(iteration, bool)
                                        or not -(2**63) <= iteration < 2**63):
            why = f"metric {key!r} with an iteration that is not a whole number the index can hold"
        if why is None:
            rows.append((run_id, step_run_id, key, float(value), iteration, float(t)))
        elif bad is not None:
            bad.append(f"runs/{name} line {number}: {why}")
    return rows


def _number(value: Any) -> bool:
    """A finite number (or NaN, which the index keeps as NULL) a float can hold."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return -(2**63) <= value < 2**63 if isinstance(value, int) else not math.isinf(value)


def import_run(store: RunStore, desc: RunDescription, mismatched: list[str] | None = None,
               bad_lines: list[str] | None = None) -> dict[int, int]:
    """Index the run ``desc`` (its run.json) describes; returns its step executions' old ids -> new ids. Lines
    of its events files that are not metrics it can index are left out and named in ``bad_lines``."""
    run = desc.run
    run_id = run.id
    folder = store.run_dir(run_id)
    env_path = folder / "env.json"
    env_hash = run.env_hash
    if env_path.is_file():
        env_hash = store.cas.put_bytes(env_path.read_bytes())
    patch = folder / "git.patch"
    if patch.is_file():
        store.cas.put_bytes(patch.read_bytes())
    with store.db.write() as conn:
        conn.execute(
            "INSERT INTO runs (id, name, status, explicit, started, ended, owner_pid, owner_host, owner_started,"
            " git_commit, git_dirty, git_patch_hash, env_hash, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, run.name, run.status, int(run.explicit), run.started, run.ended, run.owner_pid, run.owner_host,
             run.owner_started, run.git_commit, None if run.git_dirty is None else int(run.git_dirty),
             run.git_patch_hash, env_hash, run.note),
        )
        conn.executemany(
            "INSERT OR REPLACE INTO tags (run_id, key, value) VALUES (?, ?, ?)",
            [(run_id, k, v) for k, v in desc.tags.items()],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO params (run_id, key, step_run_id, value) VALUES (?, ?, 0, ?)",
            [(run_id, k, to_json_value(v)) for k, v in desc.params.items()],
        )
    store.log_metrics(_metric_rows(folder / "metrics.jsonl", run_id, 0, bad_lines))
    mismatched = [] if mismatched is None else mismatched
    ids: dict[int, int] = {}
    store.add_artifacts(run_id, 0, _ingest(store, folder, desc.artifacts, mismatched))
    for d in desc.datasets:
        store.record_dataset(run_id, 0, d)
    for s in desc.steps:
        # a step's folder is one name inside the run's folder: anything else in a run.json is refused
        if "/" in relative_name(s.folder, what=f"step folder in run.json of run {run_id}"):
            raise UnsafePath(f"step folder {shown(s.folder)} in run.json of run {run_id} is not one folder name.")
        with store.db.write() as conn:
            cur = conn.execute(
                "INSERT INTO step_runs (run_id, step, folder, status, started, ended, pid, host, exit_code,"
                " signature, code_hash, func_hash, params_hash, env_hash, git_commit, git_patch_hash, error,"
                " peak_rss, cpu_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, s.step, s.folder, s.status, s.started, s.ended, s.pid, s.host, s.exit_code, s.signature,
                 s.code_hash, s.func_hash, s.params_hash, s.env_hash, s.git_commit, s.git_patch_hash, s.error,
                 s.peak_rss, s.cpu_seconds),
            )
            step_run_id = int(cur.lastrowid)
            if s.id is not None:
                ids[s.id] = step_run_id
            conn.executemany(
                "INSERT OR REPLACE INTO params (run_id, key, step_run_id, value) VALUES (?, ?, ?, ?)",
                [(run_id, k, step_run_id, to_json_value(v)) for k, v in s.params.items()],
            )
        imported = set(s.code_imported)
        store.set_step_code(step_run_id, {k: v for k, v in s.code.items() if k in imported}, how=CODE_IMPORTED)
        store.set_step_code(step_run_id, {k: v for k, v in s.code.items() if k not in imported}, how=CODE_USED)
        store.set_step_code(step_run_id, s.code_loaded, how=CODE_LOADED)
        step_folder = folder / s.folder
        store.log_metrics(_metric_rows(step_folder / "events.jsonl", run_id, step_run_id, bad_lines))
        store.add_artifacts(run_id, step_run_id, _ingest(store, step_folder, s.artifacts, mismatched))
        for d in s.datasets:
            store.record_dataset(run_id, step_run_id, d)
    return ids


# what a run.json that cannot be indexed raises (missing keys, values of the wrong kind, a crafted name): that run
# is skipped and named; anything else (a full disk, a damaged index) ends the whole reindex, which then adds nothing
_UNINDEXABLE = (KeyError, TypeError, ValueError, AttributeError, OverflowError, UnsafePath, sqlite3.IntegrityError,
                sqlite3.InterfaceError, sqlite3.ProgrammingError)


def unindexed(store: RunStore) -> list[str]:
    """The run folders under ``runs/`` that hold a ``run.json`` but are not in the index (copied in from
    another machine, or left by a rebuild that failed): ``blase runs reindex`` adds them."""
    if not store.runs_dir.is_dir():
        return []
    known = set(store.run_ids())
    return sorted(p.name for p in store.runs_dir.iterdir()
                  if p.name not in known and p.is_dir() and (p / "run.json").is_file())


def reindex(store: RunStore) -> ReindexReport:
    """Add the runs whose folders the index lacks, in one transaction: all of them or, after a crash or an
    error, none. The journalled tables (labels, models, exclusion sets) are replayed only when empty."""
    report = ReindexReport()
    with store.db.write():
        _fill(store, report)
    return report


def _fill(store: RunStore, report: ReindexReport) -> None:
    known = {r["id"] for r in store.db.query("SELECT id FROM runs")}
    # the journalled tables are rebuilt only when they are empty (a lost or damaged index): a second
    # reindex changes nothing
    empty = {t for t in journal.TABLES if not store.db.query(f"SELECT 1 FROM {t} LIMIT 1")}
    step_runs: dict[int, int] = {r["id"]: r["id"] for r in store.db.query("SELECT id FROM step_runs")}
    on_disk = set()
    if store.runs_dir.is_dir():
        for folder in sorted(p for p in store.runs_dir.iterdir() if p.is_dir()):
            run_json = folder / "run.json"
            if not run_json.is_file():
                continue
            try:
                desc = json.loads(run_json.read_text(encoding="utf-8"))
                if not isinstance(desc, dict):
                    raise ValueError("run.json does not hold a run")
                if desc.get("id") != folder.name or not isinstance(desc.get("format", 0), int) \
                        or desc.get("format", 0) > RUN_JSON_FORMAT:
                    raise ValueError("run.json does not describe this folder" if desc.get("id") != folder.name
                                     else f"run.json format {shown(desc.get('format'))} is newer than this blase")
            except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
                report.broken.append((folder.name, str(exc)))
                continue
            on_disk.add(desc["id"])
            if desc["id"] in known:
                report.present += 1
                continue
            mismatched: list[str] = []
            bad: list[str] = []
            try:
                with store.db.write():  # a savepoint: a run.json that fails half-way leaves nothing of its run
                    ids = import_run(store, RunDescription.from_json(desc), mismatched, bad)
            except _UNINDEXABLE as exc:
                reason = str(exc) if isinstance(exc, UnsafePath) else (
                    f"run.json lacks {exc}" if isinstance(exc, KeyError) else f"run.json holds a value of the wrong"
                    f" kind ({type(exc).__name__}: {shown(exc, 120)})")
                report.broken.append((folder.name, reason))
                continue
            step_runs.update(ids)
            report.mismatched += mismatched
            report.bad_lines += bad
            report.added.append(desc["id"])
    report.missing_folders = sorted(known - on_disk)
    if empty:
        with store.db.write() as conn:
            report.journal = journal.replay(conn, store.runs_dir, empty, step_runs, report.bad_lines)


def rebuild(root: Path, why: str) -> ReindexReport:
    """Build a new index of the project at ``root`` from its run folders and journal, in a file of its own, and
    only when it is complete put it in place of ``runs/blase.db`` (a damaged one is kept aside). ``why``: what
    was wrong with the old one (for the report)."""
    from blase_tui.store.db import rebuilding
    from blase_tui.store.runstore import INDEX

    with rebuilding(root / "runs" / INDEX) as new:
        store = RunStore(root, index=new.path)  # a file no other process opens: no holds, no checks
        try:
            report = reindex(store)
        finally:
            store.close()  # the last connection: the file is whole, its -wal gone
    report.rebuilt, report.aside = why, new.aside
    return report


def reindex_project(root: Path) -> ReindexReport:
    """``blase runs reindex``: add the runs the project's index lacks, or rebuild it when it is lost, empty or
    damaged (``rebuild``)."""
    from blase_tui.store.db import StoreDamaged
    from blase_tui.store.runstore import lost_index

    lost = lost_index(root / "runs")
    if lost is not None:
        return rebuild(root, lost.state)
    try:
        store = RunStore(root)
    except StoreDamaged as exc:
        return rebuild(root, exc.problem)
    try:
        store.check()
        return reindex(store)
    except StoreDamaged as exc:
        damage = exc
    finally:
        store.close()
    return rebuild(root, damage.problem)


def collapsed(bad_lines: list[str]) -> list[str]:
    """``bad_lines`` with runs of consecutive lines of one file skipped for one reason as one entry: ``FILE lines
    3-10: why`` (a damaged round's line takes its eight queued records with it)."""
    import re

    out: list[tuple[str, int, int, str]] = []
    for line in bad_lines:
        match = re.fullmatch(r"(.*) line (\d+): (.*)", line, re.S)
        if match is None:
            out.append((line, 0, 0, ""))
            continue
        name, number, why = match.group(1), int(match.group(2)), match.group(3)
        if out and out[-1][0] == name and out[-1][3] == why and out[-1][2] + 1 == number:
            out[-1] = (name, out[-1][1], number, why)
        else:
            out.append((name, number, number, why))
    return [name if not first else f"{name} line {first}: {why}" if first == last
            else f"{name} lines {first}-{last}: {why}" for name, first, last, why in out]


def adopt_run(store: RunStore, source: RunStore, run_id: str) -> None:
    """Move run ``run_id`` of another store (a reproduction's, inside this project) into this one: its folder,
    its artifacts and kept outputs into this content store, its records into this index."""
    from blase_tui.errors import ConfigError

    source.write_run_json(run_id)
    desc = source.describe_run(run_id)
    target = store.run_dir(run_id)
    if target.exists() or store.get_run(run_id) is not None:
        raise ConfigError(f"run {run_id} already exists in this project; run the reproduction again.")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source.run_dir(run_id), target)
    for s in desc.steps:
        for d in s.datasets:
            if d.role == "output" and d.hash:
                store.cas.adopt_dataset(source.cas, d.hash)
    mismatched: list[str] = []
    import_run(store, desc, mismatched)
    if mismatched:
        raise ConfigError(f"run {run_id} was moved in, but some of its artifacts were not: {mismatched[0]}.")


def seed_project_state(store: RunStore, source: RunStore, before: float | None = None) -> dict[str, int]:
    """Give a fresh store (a reproduction's) the project-level state of ``source`` that steps read: exclusion
    sets and labels, from its journal, as they stood at time ``before`` (when the reproduced run's first step
    started): a reproduced clean step then saves the version it saved (``cleaned_v1``, not ``cleaned_v2``), and
    a labelling step reads the labels it read, not those given since."""
    journal_file = journal.path_of(source.runs_dir)
    if not journal_file.is_file():
        return {}
    store.runs_dir.mkdir(parents=True, exist_ok=True)
    tables = {"exclusions", "labels", "label_rounds", "label_queue"}
    when = {"exclusions": "created", "labels": "ts", "label_rounds": "started"}
    rounds: set[Any] = set()
    lines = []
    for _, table, row in journal.entries(source.runs_dir, only=tables):  # bad lines: left out, as by reindex
        line = json.dumps({"table": table, "row": row}) + "\n"
        if before is not None:
            stamp = row.get(when.get(table, ""))
            if isinstance(stamp, int | float) and stamp >= before:
                continue
            if table == "label_rounds":
                rounds.add(row.get("number"))
            if table == "label_queue" and row.get("round") not in rounds:
                continue
        lines.append(line)
    journal.path_of(store.runs_dir).write_text("".join(lines), encoding="utf-8")
    with store.db.write() as conn:
        return journal.replay(conn, store.runs_dir, tables)
