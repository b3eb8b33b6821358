"""Named, versioned exclusion sets: the keys a clean step removed and why (``cleaned_v1``, ``cleaned_v2``...)."""

from __future__ import annotations

import re
import time

from blase_tui.errors import BlaseError
from blase_tui.store import journal
from blase_tui.store.records import Dataset
from blase_tui.store.runstore import RunStore

_VERSIONED = re.compile(r"^(?P<name>.+)_v(?P<version>\d+)$")
# an exclusion set as a dataset of the steps that save and read it (``exclusions:cleaned_v1``): the clean step
# that saved it feeds the prepare step that read it (lineage), and a new version of it reruns that step (reuse)
DATASET = "exclusions:"


def is_exclusion_set(path: str | None) -> bool:
    """Whether a recorded dataset path names an exclusion set rather than a file or folder."""
    return bool(path) and str(path).startswith(DATASET)


def dataset_label(dataset: Dataset) -> str:
    """How listings name a recorded dataset: its name, or for an exclusion set the version it was
    (``exclusions:cleaned_v1``, where the step asked for ``cleaned``)."""
    path, name = dataset.path, dataset.name
    return str(path) if is_exclusion_set(path) else str(name or path or "")


def save(store: RunStore, name: str, reasons: dict[str, str], *, run_id: str | None = None,
         step_run_id: int | None = None) -> str:
    """Store ``reasons`` (key -> reason) as the next version of ``name``; returns ``name_vN``."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or _VERSIONED.match(name):
        raise BlaseError(f"exclusion set name {name!r} must be letters, digits, '_', '.', '-' without a _vN suffix.")
    now = time.time()
    # a version the journal named (a line a rebuild skipped, a row the index lost) is never handed out again
    journalled = journal.highest(store.runs_dir, {"exclusions": "version"}, where={"name": name})
    with store.db.write() as conn:
        version = max(conn.execute("SELECT COALESCE(MAX(version), 0) FROM exclusions WHERE name = ?",
                                   (name,)).fetchone()[0], journalled) + 1
        conn.executemany(
            "INSERT INTO exclusions (name, version, key, reason, run_id, step_run_id, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(name, version, k, r, run_id, step_run_id, now) for k, r in reasons.items()],
        )
        if not reasons:  # an empty set is a real version too: "nothing to exclude"
            conn.execute(
                "INSERT INTO exclusions (name, version, key, reason, run_id, step_run_id, created)"
                " VALUES (?, ?, '', NULL, ?, ?, ?)", (name, version, run_id, step_run_id, now))
        journal.record(conn, store.runs_dir, "exclusions", "name = ? AND version = ?", (name, version))
    return f"{name}_v{version}"


def load(store: RunStore, ref: str) -> dict[str, str]:
    """The keys and reasons of ``name_vN`` (or the newest version of ``name``)."""
    return resolve(store, ref)[1]


def resolve(store: RunStore, ref: str) -> tuple[str, dict[str, str]]:
    """``(name_vN, keys and reasons)`` of ``ref`` (``cleaned_v1``, or ``cleaned`` for the newest version), read
    in one transaction, so the name is that of the content."""
    match = _VERSIONED.match(ref)
    with store.db.write() as conn:
        if match:
            name, version = match.group("name"), int(match.group("version"))
        else:
            name = ref
            version = conn.execute("SELECT MAX(version) FROM exclusions WHERE name = ?", (name,)).fetchone()[0]
        rows = [] if version is None else conn.execute(
            "SELECT key, reason FROM exclusions WHERE name = ? AND version = ?", (name, version)).fetchall()
        known = [] if rows else sorted({f"{r[0]}_v{r[1]}" for r in
                                        conn.execute("SELECT DISTINCT name, version FROM exclusions")})
    if not rows:
        hint = f"known sets: {', '.join(known)}" if known else "no exclusion sets yet: run the clean step first"
        raise BlaseError(f"no exclusion set `{ref}` in this project ({hint}).")
    return f"{name}_v{version}", {r[0]: r[1] for r in rows if r[0]}


def content_hash(reasons: dict[str, str]) -> str:
    """One exclusion set's content (its keys and reasons) as a hash."""
    from blase_tui.store.hashing import hash_json

    return "keys:" + hash_json(sorted(reasons.items()))


def unchanged(store: RunStore, ref: str, digest: str | None) -> bool:
    """Whether ``ref`` (as a step asked for it: ``cleaned`` is the newest version) holds what it held."""
    try:
        return content_hash(resolve(store, ref)[1]) == digest
    except BlaseError:  # gone
        return False
