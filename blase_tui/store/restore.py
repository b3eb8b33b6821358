"""``blase runs restore``: put a run's recorded outputs back from the content store.

What can come back is what the content store holds: every artifact (into the run's folder), and every output
file whose content is an artifact of the same step (``Train.save_model``'s model file, ``save_logs``'s log,
...), found by content hash and written back at the path the step wrote it. An output that is not stored (a
folder of shards: blase keeps its hash, not its content) is reported, never guessed. A file that changed since
the run is not overwritten without ``force``.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from blase_tui.store.filehash import dataset_hash, file_hash
from blase_tui.store.hashing import hash_json
from blase_tui.store.runstore import RunStore


@dataclass
class RestoreReport:
    restored: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # differ from the run's and left alone (force overwrites)
    not_stored: list[str] = field(default_factory=list)


def _write(source: Path, target: Path) -> None:
    """A writable copy of a content-store object at ``target`` (its exec bit kept), put in place atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-restore-{os.getpid()}-{target.name}")
    shutil.copyfile(source, tmp)
    executable = source.stat().st_mode & stat.S_IXUSR
    os.chmod(tmp, 0o755 if executable else 0o644)
    os.replace(tmp, target)


def restore(store: RunStore, run_id: str, *, step: str | None = None, to: Path | None = None,
            force: bool = False) -> RestoreReport:
    """Restore the outputs of run ``run_id`` (of its executions of ``step``) where they were, or under ``to``."""
    from blase_tui.errors import ConfigError

    report = RestoreReport()
    desc = store.describe_run(run_id)
    steps = [s for s in desc["steps"] if step is None or s["step"] == step]
    if step is not None and not steps:
        raise ConfigError(f"run {run_id} has no step `{step}`; its steps: {', '.join(s['step'] for s in desc['steps'])}.")
    base = to if to is not None else store.root
    for s in steps:
        objects = {a["name"]: store.cas.path_of(a["hash"]) for a in s["artifacts"] if store.cas.has(a["hash"])}
        for a in s["artifacts"]:
            where = (Path("runs") / run_id / s["folder"] / "artifacts" / a["name"]).as_posix()
            if a["name"] not in objects:
                report.not_stored.append(f"{where} (its object is gone from the content store)")
                continue
            target = base / where
            if target.is_file() and file_hash(target) == file_hash(objects[a["name"]]):
                report.unchanged.append(where)
                continue
            if target.exists() and not force:
                report.changed.append(where)
                continue
            if target.exists() or target.is_symlink():
                target.unlink()
            store.cas.link_into(a["hash"], target)
            report.restored.append(where)
        # an output file whose content is one of the step's artifacts: found by its dataset hash
        contents = {obj: file_hash(obj) for obj in objects.values()}
        for d in s["datasets"]:
            if d["role"] != "output" or not d["path"]:
                continue
            name = Path(d["path"]).name  # a one-file dataset's hash covers its name and its bytes
            match = next((obj for obj, digest in contents.items()
                          if "xxh3:" + hash_json([(name, digest)]) == d["hash"]), None)
            target = base / d["path"]
            if match is None:
                kind = "a folder" if (store.root / d["path"]).is_dir() or not Path(d["path"]).suffix else "a file"
                report.not_stored.append(f"{d['path']} ({kind} blase recorded by hash only)")
                continue
            if target.is_file() and dataset_hash(None, target) == d["hash"]:
                report.unchanged.append(d["path"])
                continue
            if target.exists() and not force:
                report.changed.append(d["path"])
                continue
            _write(match, target)
            report.restored.append(d["path"])
    return report
