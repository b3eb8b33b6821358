"""The model registry: every saved model is a numbered version with its file and card in the content store."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from blase_tui.errors import ConfigError
from blase_tui.store import journal
from blase_tui.store.records import ModelVersion, ModelVersionDetail, SavedModel
from blase_tui.store.runstore import RunStore


def check_name(name: str) -> str:
    """``name`` when it can name a model: one plain, printable name (the one guard's rule, as the journal replays
    it) without ``:`` or ``@``, which a reference (``name:3``, ``name@champion``) reads as its parts."""
    from blase_tui.store.safepath import UnsafePath, relative_name

    try:
        plain = relative_name(name, what="model name")
    except UnsafePath as exc:
        raise ConfigError(str(exc)) from None
    if plain != name or any(ch in name for ch in "/:@"):
        raise ConfigError(f"model name {name!r} must be one plain name, without '/', ':' or '@' (as in clf or"
                          " churn_model).")
    return name


def register(store: RunStore, name: str, *, run_id: str, step_run_id: int, framework: str, file_hash: str,
             card_hash: str, file_name: str, metrics: dict[str, Any]) -> int:
    check_name(name)
    # a version the journal named (a line a rebuild skipped, a row the index lost) is never handed out again
    journalled = journal.highest(store.runs_dir, {"models": "version"}, where={"name": name})
    with store.db.write() as conn:
        version = max(conn.execute("SELECT COALESCE(MAX(version), 0) FROM models WHERE name = ?",
                                   (name,)).fetchone()[0], journalled) + 1
        conn.execute(
            "INSERT INTO models (name, version, run_id, step_run_id, framework, file_hash, card_hash, file_name,"
            " metrics, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, version, run_id, step_run_id, framework, file_hash, card_hash, file_name,
             json.dumps(metrics, default=float), time.time()),
        )
        journal.record(conn, store.runs_dir, "models", "name = ? AND version = ?", (name, version))
    return int(version)


def list_models(store: RunStore, *, newest_first: bool = False) -> list[ModelVersion]:
    """Every model version, by name, each name's versions oldest first (``newest_first``: newest first, as
    `blase models list` and the TUI show them)."""
    rows = store.db.query("SELECT * FROM models ORDER BY name, version" + (" DESC" if newest_first else ""))
    named = aliases(store)
    return [ModelVersion.from_row(r, named.get((r["name"], r["version"]), [])) for r in rows]


def aliases(store: RunStore, name: str | None = None) -> dict[tuple[str, int], list[str]]:
    """``(name, version) -> [alias, ...]``."""
    rows = store.db.query("SELECT name, alias, version FROM model_aliases" + (" WHERE name = ?" if name else "")
                          + " ORDER BY alias", (name,) if name else ())
    out: dict[tuple[str, int], list[str]] = {}
    for r in rows:
        out.setdefault((r["name"], r["version"]), []).append(r["alias"])
    return out


def set_alias(store: RunStore, name: str, version: int, alias: str) -> None:
    """Point ``name@alias`` (``champion``, ``production``, anything) at ``version``; it moves from the version
    it named before."""
    import re

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", alias) or alias.isdigit():
        raise ConfigError(f"alias {alias!r} must start with a letter and hold letters, digits, '_', '.', '-'.")
    get(store, f"{name}:{version}")  # the version must exist
    with store.db.write() as conn:
        conn.execute("INSERT INTO model_aliases (name, alias, version, set_at) VALUES (?, ?, ?, ?)"
                     " ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version, set_at = excluded.set_at",
                     (name, alias, int(version), time.time()))
        journal.record(conn, store.runs_dir, "model_aliases", "name = ? AND alias = ?", (name, alias))


def get(store: RunStore, ref: str, *, intact: bool = False) -> ModelVersionDetail:
    """``name`` (newest version), ``name:version`` or ``name@alias``; includes the card and the aliases. With
    ``intact`` (to load it), a model file no longer as registered (its object edited in place) is refused."""
    name, _, version = ref.partition(":")
    if "@" in name:
        name, _, alias = name.partition("@")
        rows = store.db.query("SELECT version FROM model_aliases WHERE name = ? AND alias = ?", (name, alias))
        if not rows:
            if not exists(store, name):
                names = [r["name"] for r in store.db.query("SELECT DISTINCT name FROM models ORDER BY name")]
                raise ConfigError(f"no model {name!r}; known models: {', '.join(names) or 'none yet'}.")
            known = sorted({a for names in aliases(store, name).values() for a in names})
            raise ConfigError(f"model {name!r} has no alias {alias!r}; its aliases: {', '.join(known) or 'none'}"
                              f" (set one with `blase models alias {name} VERSION {alias}`).")
        version = str(rows[0]["version"])
    if version and not version.lstrip("v").isdigit():
        raise ConfigError(f"model version must be a number, as in {name}:3.")
    rows = store.db.query(
        "SELECT * FROM models WHERE name = ? AND (? = '' OR version = ?) ORDER BY version DESC LIMIT 1",
        (name, version, int(version.lstrip("v") or 0)),
    )
    if not rows:
        known = sorted({r["name"] for r in store.db.query("SELECT name FROM models")})
        raise ConfigError(f"no model {ref!r}; known models: {', '.join(known) or 'none yet (save one with Train.save_model)'}.")
    row = rows[0]
    card_hash, file_hash = row["card_hash"], row["file_hash"]
    if intact and not store.cas.has(file_hash):
        raise ConfigError(f"the file of model {row['name']} v{row['version']} is gone from the content store"
                          " (deleted by hand?); `blase verify` names every missing object: train it again, or load"
                          " another version.")
    if intact and not store.cas.intact(file_hash):
        raise ConfigError(f"the file of model {row['name']} v{row['version']} no longer has the content it was"
                          " registered with (edited in place in the content store); `blase verify` names every such"
                          " object: train it again, or load another version.")
    return ModelVersionDetail.from_row(
        row, aliases(store, row["name"]).get((row["name"], row["version"]), []),
        card=json.loads(store.cas.read_bytes(card_hash)) if store.cas.has(card_hash) else None,
        path=str(store.cas.path_of(file_hash)),
        # the training run may have been deleted since (`blase runs delete`): the model stays, its run is gone
        run_deleted=bool(row["run_id"]) and not store.db.query("SELECT 1 FROM runs WHERE id = ?", (row["run_id"],)))


def in_run(store: RunStore, run_id: str) -> list[SavedModel]:
    """The versions saved in run ``run_id``, newest first, with the step that saved each and ``path``: where
    that step wrote the file (from its output records), or None."""
    rows = store.db.query(
        "SELECT m.name, m.version, m.file_name, m.file_hash, m.step_run_id, s.step, d.path FROM models m"
        " LEFT JOIN step_runs s ON s.id = m.step_run_id"
        " LEFT JOIN datasets d ON d.step_run_id = m.step_run_id AND d.role = 'output'"
        " AND (d.path = m.file_name OR d.path LIKE '%/' || m.file_name)"
        " WHERE m.run_id = ? ORDER BY m.created DESC, m.rowid DESC", (run_id,))
    return [SavedModel.from_row(r) for r in rows]


def latest_of_step(store: RunStore, step: str, name: str | None = None) -> str | None:
    """``name:version`` of the model the last succeeded execution of ``step`` registered (a reused execution
    counts with the model of the execution it reused), optionally only of model ``name``."""
    rows = store.db.query(
        "SELECT m.name, m.version FROM step_runs s JOIN models m ON m.step_run_id = COALESCE(s.skipped_from, s.id)"
        " WHERE s.step = ? AND s.status = 'succeeded' AND (? IS NULL OR m.name = ?)"
        " ORDER BY s.id DESC, m.version DESC LIMIT 1",
        (step, name, name),
    )
    return f"{rows[0]['name']}:{rows[0]['version']}" if rows else None


def evaluation_artifact(store: RunStore, name: str, version: int, artifact: str) -> Path | None:
    """The content-store path of ``evaluation/<artifact>`` of the newest run that evaluated ``name`` v``version``
    (tagged ``blase.evaluated.<name>`` by ``Evaluate``)."""
    rows = store.db.query(
        "SELECT a.hash FROM artifacts a JOIN tags t ON t.run_id = a.run_id"
        " WHERE t.key = ? AND t.value = ? AND a.name = ? ORDER BY a.step_run_id DESC LIMIT 1",
        (f"blase.evaluated.{name}", str(version), f"evaluation/{artifact}"))
    if not rows or not store.cas.has(rows[0]["hash"]):
        return None
    return Path(store.cas.path_of(rows[0]["hash"]))


def by_file_hash(store: RunStore, digest: str) -> tuple[str, int] | None:
    """The newest registered ``(name, version)`` whose model file has content hash ``digest``."""
    rows = store.db.query("SELECT name, version FROM models WHERE file_hash = ? ORDER BY created DESC LIMIT 1",
                          (digest,))
    return (rows[0]["name"], int(rows[0]["version"])) if rows else None


def exists(store: RunStore, name: str) -> bool:
    return bool(store.db.query("SELECT 1 FROM models WHERE name = ? LIMIT 1", (name,)))


def step_artifact(store: RunStore, row: ModelVersion, name: str) -> Path | None:
    """The content-store path of artifact ``name`` of the step execution that saved model version ``row``."""
    rows = store.db.query("SELECT hash FROM artifacts WHERE step_run_id = ? AND name = ?", (row.step_run_id, name))
    if not rows or not store.cas.has(rows[0]["hash"]):
        return None
    return Path(store.cas.path_of(rows[0]["hash"]))
