"""Rebuild index rows from run folders: a run folder copied in from another project (or a lost database)
becomes visible again. Each folder's ``run.json`` says what the run was; metrics come from the event files."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase_tui.store import journal
from blase_tui.store.events import read_events
from blase_tui.store.runstore import (
    CODE_IMPORTED,
    CODE_LOADED,
    CODE_USED,
    RUN_JSON_FORMAT,
    RunStore,
    to_json_value,
)
from blase_tui.store.safepath import UnsafePath, inside, is_digest, relative_name, shown


@dataclass
class ReindexReport:
    added: list[str] = field(default_factory=list)
    present: int = 0
    broken: list[tuple[str, str]] = field(default_factory=list)  # (folder, reason)
    missing_folders: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # artifacts left out: content not as recorded
    journal: dict[str, int] = field(default_factory=dict)  # rows rebuilt from runs/journal.jsonl, per table


def _ingest(store: RunStore, folder: Path, artifacts: list[dict[str, Any]],
            mismatched: list[str]) -> list[tuple[str, str, int]]:
    """The run folder's artifacts, each hashed on its way into the content store: a file whose content does not
    match the hash its run.json records (a truncated copy) is reported in ``mismatched`` and left out, so it
    can never stand in for the genuine content under that hash."""
    from blase_tui.store.hashing import hash_file

    items = []
    for a in artifacts:
        try:  # a name or hash from run.json: checked before any file is touched
            if not isinstance(a, dict) or not is_digest(a.get("hash")):
                raise UnsafePath(f"artifact {shown(a)} has no sha256")
            path = inside(folder / "artifacts", a.get("name"), what="artifact name in run.json")
        except UnsafePath as exc:
            mismatched.append(f"{folder.relative_to(store.runs_dir)}: left out: {exc}")
            continue
        if path.is_file() and not path.is_symlink():
            # hashed even when it is the store's own object (a hard link): an edit in place shows here
            actual = hash_file(path)
            if actual != a["hash"]:
                mismatched.append(f"{path.relative_to(store.runs_dir)}: its content hashes to {actual[:12]},"
                                  f" not the recorded {a['hash'][:12]}")
                continue
            if not (store.cas.has(a["hash"]) and os.path.samefile(store.cas.path_of(a["hash"]), path)):
                store.cas.put_file(path, digest=actual)
            store.cas.link_into(a["hash"], path)
        elif not store.cas.has(a["hash"]):
            mismatched.append(f"{path.relative_to(store.runs_dir)}: missing, and not in the content store")
            continue
        items.append((path.relative_to(folder / "artifacts").as_posix(), a["hash"], a.get("size")))
    return items


def _metric_rows(path: Path, run_id: str, step_run_id: int) -> list[tuple[Any, ...]]:
    return [
        (run_id, step_run_id, e["key"], e["value"], e.get("iteration"), e["t"])
        for e in read_events(path) if e.get("type") == "metric" and "key" in e
    ]


def _mapping(value: Any) -> dict[str, str]:
    """A ``{part: hash}`` field of run.json as text (anything else, from a damaged or crafted file: empty)."""
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def import_run(store: RunStore, desc: dict[str, Any], mismatched: list[str] | None = None) -> dict[int, int]:
    """Index the run ``desc`` (its run.json) describes; returns its step executions' old ids -> new ids."""
    run_id = desc["id"]
    folder = store.run_dir(run_id)
    owner = desc.get("owner") or {}
    git = desc.get("git") or {}
    env_path = folder / "env.json"
    env_hash = desc.get("env_hash")
    if env_path.is_file():
        env_hash = store.cas.put_bytes(env_path.read_bytes())
    patch = folder / "git.patch"
    if patch.is_file():
        store.cas.put_bytes(patch.read_bytes())
    with store.db.write() as conn:
        conn.execute(
            "INSERT INTO runs (id, name, status, explicit, started, ended, owner_pid, owner_host, owner_started,"
            " git_commit, git_dirty, git_patch_hash, env_hash, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, desc.get("name"), desc["status"], int(desc.get("explicit", False)), desc["started"],
             desc.get("ended"), owner.get("pid"), owner.get("host"), owner.get("started"), git.get("commit"),
             None if git.get("dirty") is None else int(git["dirty"]), git.get("patch_hash"), env_hash,
             desc.get("note")),
        )
        conn.executemany(
            "INSERT OR REPLACE INTO tags (run_id, key, value) VALUES (?, ?, ?)",
            [(run_id, k, v) for k, v in (desc.get("tags") or {}).items()],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO params (run_id, key, step_run_id, value) VALUES (?, ?, 0, ?)",
            [(run_id, k, to_json_value(v)) for k, v in (desc.get("params") or {}).items()],
        )
    store.log_metrics(_metric_rows(folder / "metrics.jsonl", run_id, 0))
    mismatched = [] if mismatched is None else mismatched
    ids: dict[int, int] = {}
    store.add_artifacts(run_id, 0, _ingest(store, folder, desc.get("artifacts") or [], mismatched))
    for d in desc.get("datasets") or []:
        store.add_dataset(run_id, 0, role=d["role"], name=d["name"], path=d.get("path"), digest=d.get("hash"),
                          fingerprint=d.get("fingerprint"), records=d.get("records"), size=d.get("bytes"))
    for s in desc.get("steps") or []:
        sig = s.get("signature") or {}
        # a step's folder is one name inside the run's folder: anything else in a run.json is refused
        if "/" in relative_name(s["folder"], what=f"step folder in run.json of run {run_id}"):
            raise UnsafePath(f"step folder {shown(s['folder'])} in run.json of run {run_id} is not one folder name.")
        with store.db.write() as conn:
            cur = conn.execute(
                "INSERT INTO step_runs (run_id, step, folder, status, started, ended, pid, host, exit_code,"
                " signature, code_hash, func_hash, params_hash, env_hash, git_commit, git_patch_hash, error,"
                " peak_rss, cpu_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, s["step"], s["folder"], s["status"], s.get("started"), s.get("ended"), s.get("pid"),
                 s.get("host"), s.get("exit_code"), sig.get("digest"), sig.get("code_hash"), sig.get("func_hash"),
                 sig.get("params_hash"), sig.get("env_hash"), sig.get("git_commit"), sig.get("git_patch_hash"),
                 s.get("error"), s.get("peak_rss"), s.get("cpu_seconds")),
            )
            step_run_id = int(cur.lastrowid)
            if s.get("id") is not None:
                ids[int(s["id"])] = step_run_id
            conn.executemany(
                "INSERT OR REPLACE INTO params (run_id, key, step_run_id, value) VALUES (?, ?, ?, ?)",
                [(run_id, k, step_run_id, to_json_value(v)) for k, v in (s.get("params") or {}).items()],
            )
        code, loaded = _mapping(s.get("code")), _mapping(s.get("code_loaded"))
        imported = set(s.get("code_imported") or []) if isinstance(s.get("code_imported"), list) else set()
        store.set_step_code(step_run_id, {k: v for k, v in code.items() if k in imported}, how=CODE_IMPORTED)
        store.set_step_code(step_run_id, {k: v for k, v in code.items() if k not in imported}, how=CODE_USED)
        store.set_step_code(step_run_id, loaded, how=CODE_LOADED)
        step_folder = folder / s["folder"]
        store.log_metrics(_metric_rows(step_folder / "events.jsonl", run_id, step_run_id))
        store.add_artifacts(run_id, step_run_id, _ingest(store, step_folder, s.get("artifacts") or [], mismatched))
        for d in s.get("datasets") or []:
            store.add_dataset(run_id, step_run_id, role=d["role"], name=d["name"], path=d.get("path"),
                              digest=d.get("hash"), fingerprint=d.get("fingerprint"), records=d.get("records"),
                              size=d.get("bytes"))
    return ids


def reindex(store: RunStore) -> ReindexReport:
    report = ReindexReport()
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
                if desc.get("format", 0) > RUN_JSON_FORMAT or desc.get("id") != folder.name:
                    raise ValueError("run.json does not describe this folder" if desc.get("id") != folder.name
                                     else f"run.json format {desc.get('format')} is newer than this blase")
            except (OSError, ValueError) as exc:
                report.broken.append((folder.name, str(exc)))
                continue
            on_disk.add(desc["id"])
            if desc["id"] in known:
                report.present += 1
                continue
            try:
                step_runs.update(import_run(store, desc, report.mismatched))
            except (KeyError, TypeError, UnsafePath) as exc:
                store.db.conn.execute("DELETE FROM runs WHERE id = ?", (desc["id"],))
                report.broken.append((folder.name, str(exc) if isinstance(exc, UnsafePath) else f"run.json lacks {exc}"))
                continue
            report.added.append(desc["id"])
    report.missing_folders = sorted(known - on_disk)
    if empty:
        with store.db.write() as conn:
            report.journal = journal.replay(conn, store.runs_dir, empty, step_runs)
    return report


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
    for s in desc["steps"]:
        for d in s["datasets"]:
            if d["role"] == "output" and d["hash"]:
                store.cas.adopt_dataset(source.cas, d["hash"])
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
    for line in journal_file.read_text(encoding="utf-8").splitlines(keepends=True):
        if not any(f'"table": "{t}"' in line for t in tables):
            continue
        try:
            entry = json.loads(line)
            table, row = entry["table"], entry["row"]
        except (ValueError, KeyError, TypeError):
            continue
        if before is not None:
            stamp = row.get(when.get(table, "")) if isinstance(row, dict) else None
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
