"""``blase runs restore``: put a run's recorded outputs back from the content store.

What can come back is what the content store holds: every artifact (into the run's folder); every output
dataset whose content blase kept when the step recorded it (up to ``[project] keep_outputs`` each: a folder of
shards, a CSV), file by file; and an output file whose content is an artifact of the same step
(``Train.save_model``'s model file), found by content hash. An output that is not stored (over the limit) is
reported, never guessed. A file that changed since the run is not overwritten without ``force``.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from blase_tui.store.exclusions import is_exclusion_set
from blase_tui.store.filehash import dataset_hash, file_hash
from blase_tui.store.hashing import hash_json
from blase_tui.store.remote import SCHEMES
from blase_tui.store.runstore import RunStore
from blase_tui.store.safepath import UnsafePath, inside


@dataclass
class RestoreReport:
    restored: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # differ from the run's and left alone (force overwrites)
    not_stored: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # a path that leads out of the project, or a damaged object


def _write(source: Path, target: Path, executable: bool | None = None) -> None:
    """A writable copy of a content-store object at ``target`` (its exec bit kept), put in place atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-restore-{os.getpid()}-{target.name}")
    shutil.copyfile(source, tmp)
    if executable is None:
        executable = bool(source.stat().st_mode & stat.S_IXUSR)
    os.chmod(tmp, 0o755 if executable else 0o644)
    os.replace(tmp, target)


def restore(store: RunStore, run_id: str, *, step: str | None = None, to: Path | None = None,
            force: bool = False) -> RestoreReport:
    """Restore the outputs of run ``run_id`` (of its executions of ``step``) where they were, or under ``to``."""
    from blase_tui.errors import ConfigError

    report = RestoreReport()
    desc = store.describe_run(run_id)
    steps = [s for s in desc.steps if step is None or s.step == step]
    if step is not None and not steps:
        raise ConfigError(f"run {run_id} has no step `{step}`; its steps: {', '.join(s.step for s in desc.steps)}.")
    base = to if to is not None else store.root

    def place(path: str, what: str) -> Path | None:
        """Where ``path`` (from the run's records) goes under ``base``; None, and said, when it leads out."""
        try:
            return inside(base, path, what=what)
        except UnsafePath as exc:
            report.refused.append(str(exc))
            return None

    for s in steps:
        objects = {a.name: store.cas.path_of(a.hash) for a in s.artifacts if store.cas.has(a.hash)}
        for a in s.artifacts:
            where = f"runs/{run_id}/{s.folder}/artifacts/{a.name}"
            if a.name not in objects:
                report.not_stored.append(f"{where} (its object is gone from the content store)")
                continue
            target = place(where, f"artifact of run {run_id}")
            if target is None:
                continue
            if not store.cas.intact(a.hash):
                report.refused.append(f"{where}: its object in the content store no longer has the content it was"
                                      f" stored with (edited in place); `blase verify` lists every such object")
                continue
            if target.is_file() and file_hash(target) == file_hash(objects[a.name]):
                report.unchanged.append(where)
                continue
            if target.exists() and not force:
                report.changed.append(where)
                continue
            if target.exists() or target.is_symlink():
                target.unlink()
            store.cas.link_into(a.hash, target)
            report.restored.append(where)
        # an output dataset: from its kept content, else a file whose content is one of the step's artifacts
        contents = {obj: file_hash(obj) for obj in objects.values()}
        for d in s.datasets:
            path = d.path
            if d.role != "output" or not path or Path(path).is_absolute() or is_exclusion_set(path) \
                    or path.startswith(SCHEMES):  # a URL: not a file of the project
                continue
            target = place(path, f"output dataset path of run {run_id}")
            if target is None:
                continue
            kept = store.cas.dataset_files(d.hash) if d.hash else None
            if kept is not None:
                _restore_kept(store, kept, target, path, force, report)
                continue
            name = Path(path).name  # a one-file dataset's hash covers its name and its bytes
            match = next((obj for obj, digest in contents.items()
                          if "xxh3:" + hash_json([(name, digest)]) == d.hash), None)
            if match is None:
                kind = "a folder" if (store.root / path).is_dir() or not Path(path).suffix else "a file"
                report.not_stored.append(f"{path} ({kind} blase recorded by hash only: it was over"
                                         " [project] keep_outputs, or written before blase kept outputs)")
                continue
            if target.is_file() and dataset_hash(None, target) == d.hash:
                report.unchanged.append(path)
                continue
            if target.exists() and not force:
                report.changed.append(path)
                continue
            _write(match, target)
            report.restored.append(path)
    return report


def _restore_kept(store: RunStore, kept: dict, target: Path, where: str, force: bool, report: RestoreReport) -> None:
    """Put a kept dataset back at ``target``: every file the step wrote, byte-identical with its exec bit. Files
    that are there already with the same content are left as they are; a differing one needs ``force``; other
    files in the folder are not touched."""
    from blase_tui.store.hashing import hash_file

    files = [(target if kept["kind"] == "file" else inside(target, name, what=f"file of kept dataset {where}"),
              digest, executable) for name, digest, _size, executable in kept["files"]]
    if kept["kind"] == "folder" and target.exists() and not target.is_dir() or kept["kind"] == "file" and target.is_dir():
        report.changed.append(where)
        return
    todo = [(path, digest, executable) for path, digest, executable in files
            if not (path.is_file() and hash_file(path) == digest)]
    if not todo:
        report.unchanged.append(where)
        return
    if not force and any(path.exists() for path, _, _ in todo):
        report.changed.append(where)
        return
    broken = [digest for _, digest, _ in todo if not store.cas.intact(digest)]
    if broken:
        report.refused.append(f"{where}: a kept object of it no longer has the content it was stored with (edited"
                              " in place); `blase verify` lists every such object")
        return
    for path, digest, executable in todo:
        if path.is_dir():
            shutil.rmtree(path)
        _write(store.cas.path_of(digest), path, executable)
    report.restored.append(where)
