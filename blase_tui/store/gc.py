"""Reclaim the content store's objects that nothing refers to any more (``blase gc``).

What refers to an object: a run's artifacts (run folders hold hard links to them), a run's environment and
git patch, a registered model's file and card, and the kept content of an output dataset that some run still
records. Deleting a run (``RunStore.delete_run``) drops its references; the objects stay until ``gc``, which
removes each object no reference names and that is older than ``grace`` seconds (a step that is ending puts
its objects in before it records them), the kept dataset records no run names, and what an interrupted
delete or write left behind (``runs/.trash-*``, ``.tmp-*``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from blase_tui.store.safepath import UnsafePath

if TYPE_CHECKING:
    from blase_tui.store.runstore import RunStore

GRACE = 3600.0
TRASH = ".trash-"


@dataclass
class Collected:
    """What ``collect`` removed (or, with ``dry_run``, would remove)."""

    objects: int = 0
    bytes: int = 0
    datasets: int = 0
    leftovers: list[str] = field(default_factory=list)
    kept: int = 0  # objects still referred to
    young: int = 0  # unreferenced, but newer than the grace period


def referenced(store: RunStore) -> tuple[set[str], set[str]]:
    """The object digests something refers to, and the dataset hashes whose kept content is still named."""
    digests: set[str] = set()
    q = store.db.query
    digests.update(r[0] for r in q("SELECT DISTINCT hash FROM artifacts") if r[0])
    for row in q("SELECT env_hash, git_patch_hash FROM runs"):
        digests.update(v for v in (row[0], row[1]) if v)
    for row in q("SELECT file_hash, card_hash FROM models"):
        digests.update(v for v in (row[0], row[1]) if v)
    datasets = {r[0] for r in q("SELECT DISTINCT hash FROM datasets WHERE hash IS NOT NULL")}
    for dataset_hash in datasets:
        try:
            kept = json.loads(store.cas.dataset_record(dataset_hash).read_text())
        except (OSError, ValueError, UnsafePath):  # none kept, or a hash no record can have (a crafted run.json)
            continue
        digests.update(f[1] for f in kept.get("files", []))
    return digests, datasets


def collect(store: RunStore, *, dry_run: bool = False, grace: float = GRACE, now: float | None = None) -> Collected:
    now = time.time() if now is None else now
    out = Collected()
    digests, datasets = referenced(store)
    objects = store.cas.objects
    if objects.is_dir():
        for folder in sorted(objects.iterdir()):
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                try:
                    info = path.stat()
                except FileNotFoundError:
                    continue
                if path.name.startswith(".tmp-"):
                    if now - info.st_mtime > grace:
                        out.leftovers.append(str(path.relative_to(store.root)))
                        if not dry_run:
                            path.unlink(missing_ok=True)
                    continue
                if folder.name + path.name in digests:
                    out.kept += 1
                elif now - info.st_mtime <= grace:
                    out.young += 1
                else:
                    out.objects += 1
                    out.bytes += info.st_size
                    if not dry_run:
                        path.unlink(missing_ok=True)  # read-only, but its folder is not: unlink needs no more
    records = store.cas.root / "datasets"
    if records.is_dir():
        named = set()
        for h in datasets:
            try:
                named.add(store.cas.dataset_record(h).name)
            except UnsafePath:  # a hash no record can have: names none
                continue
        for record in sorted(records.glob("*.json")):
            if record.name not in named and now - record.stat().st_mtime > grace:
                out.datasets += 1
                if not dry_run:
                    record.unlink(missing_ok=True)
    for trash in sorted(store.runs_dir.glob(f"{TRASH}*")):  # a delete that was interrupted
        out.leftovers.append(str(trash.relative_to(store.root)))
        if not dry_run:
            remove_tree(trash)
    return out


def remove_tree(path: Path) -> None:
    """Remove a run folder. Its files are read-only hard links to objects: they share the object's mode, so
    they are never chmod-ed (that would change the object); removing a link needs a writable folder only."""
    for root, dirs, _files in os.walk(path):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
    os.chmod(path, 0o755)
    shutil.rmtree(path)
