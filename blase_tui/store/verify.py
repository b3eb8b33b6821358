"""``blase verify [RUN]``: check that what the store says it holds is there, with the content it was stored under.

A run folder's artifact is a hard link to its content-store object, so that a file a thousand runs kept is stored
once. The objects are read-only, but a ``chmod`` (or root) can still edit one in place, and that edit shows in
every run holding it. Reading paths check the objects they use (``ContentStore.intact``); this command checks them
all:

- every object is hashed: one whose content no longer matches its name is **damaged**, with the runs and models
  that hold it;
- every object something refers to (artifacts, models, environments, kept outputs) must exist: **missing**;
- a run folder's artifact that is not its object (a copy) must have the recorded content: **changed**;
- objects nothing refers to are **orphans** (``blase gc`` frees them);
- the index, ``blase.db``, gets SQLite's full integrity check (``db.check_integrity``).

With ``RUN``, only the objects and artifacts of that run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from blase_tui.store.hashing import hash_file
from blase_tui.store.safepath import UnsafePath, inside, is_digest

if TYPE_CHECKING:
    from blase_tui.store.runstore import RunStore


@dataclass
class Verified:
    objects: int = 0  # objects hashed
    bytes: int = 0
    damaged: list[str] = field(default_factory=list)  # one line each: the object and what holds it
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # run-folder artifacts that differ from their record
    orphans: int = 0
    index: list[str] = field(default_factory=list)  # what SQLite's integrity check finds wrong in blase.db

    @property
    def ok(self) -> bool:
        return not (self.damaged or self.missing or self.changed or self.index)


def verify(store: RunStore, run_id: str | None = None, *, progress: Callable[[int, int], None] | None = None
           ) -> Verified:
    """Hash the content store's objects (those of ``run_id`` only, when given) and check the run folders'
    artifacts against their records."""
    from blase_tui.store.db import check_integrity
    from blase_tui.store.gc import referenced

    out = Verified()
    if run_id is None:  # the index itself, every page (blase runs reindex rebuilds a damaged one)
        out.index = check_integrity(store.db.path, full=True)
    holders: dict[str, list[str]] = {}  # object -> what refers to it, in words
    args: tuple[str, ...] = (run_id,) if run_id else ()
    scope = " WHERE a.run_id = ?" if run_id else ""
    rows = store.db.query("SELECT a.run_id, a.step_run_id, a.name, a.hash, s.folder FROM artifacts a LEFT JOIN"
                          f" step_runs s ON s.id = a.step_run_id{scope}", args)
    for r in rows:
        holders.setdefault(r["hash"], []).append(f"run {r['run_id']} artifact {r['name']}")
    for r in store.db.query("SELECT name, version, file_hash, card_hash, run_id FROM models"
                            + (" WHERE run_id = ?" if run_id else ""), args):
        for digest in (r["file_hash"], r["card_hash"]):
            if digest:
                holders.setdefault(digest, []).append(f"model {r['name']} v{r['version']}")
    if run_id is None:
        for digest in referenced(store)[0]:
            holders.setdefault(digest, []).append("the project's records")

    wanted = set(holders)
    on_disk = _objects(store) if run_id is None else {d for d in wanted if store.cas.has(d)}
    total = len(on_disk)
    for n, digest in enumerate(sorted(on_disk), start=1):
        path = store.cas.path_of(digest)
        out.objects += 1
        out.bytes += path.stat().st_size
        if hash_file(path) != digest:
            held = holders.get(digest) or ["nothing (an orphan)"]
            more = f" and {len(held) - 3} more" if len(held) > 3 else ""
            out.damaged.append(f"object {digest[:12]} no longer has the content it was stored under; held by"
                               f" {', '.join(held[:3])}{more}")
        if progress is not None:
            progress(n, total)
    for digest in sorted(wanted - on_disk):
        if is_digest(digest):
            out.missing.append(f"object {digest[:12]} is gone from the content store; held by"
                               f" {', '.join(holders[digest][:3])}")
    if run_id is None:
        out.orphans = len(on_disk - wanted)

    for r in rows:  # the run folders' own copies (a copy where the file system could not link)
        folder = store.run_dir(r["run_id"]) / (r["folder"] or "") if r["step_run_id"] else store.run_dir(r["run_id"])
        try:
            path = inside(folder / "artifacts", r["name"], what="artifact name")
        except UnsafePath as exc:
            out.changed.append(str(exc))
            continue
        if not path.is_file():
            out.changed.append(f"{path.relative_to(store.root)} is gone from the run's folder"
                               " (`blase runs restore` puts it back)")
            continue
        if store.cas.has(r["hash"]) and os.path.samefile(path, store.cas.path_of(r["hash"])):
            continue  # the object itself, hashed above
        if hash_file(path) != r["hash"]:
            out.changed.append(f"{path.relative_to(store.root)} differs from what run {r['run_id']} recorded"
                               " (`blase runs restore --force` puts the recorded content back)")
    return out


def _objects(store: RunStore) -> set[str]:
    """Every object in the content store."""
    found = set()
    objects = store.cas.objects
    if objects.is_dir():
        for sub in objects.iterdir():
            if sub.is_dir() and len(sub.name) == 2:
                found.update(sub.name + f.name for f in sub.iterdir() if not f.name.startswith(".tmp-")
                             and is_digest(sub.name + f.name))
    return found
