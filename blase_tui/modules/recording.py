"""How the data modules report to the running step: progress, bad records, and the datasets they read and
wrote. Outside a step every call is a no-op, so the modules work in a notebook too."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from blase_tui.core import context as context_mod
from blase_tui.core.context import Progress
from blase_tui.modules.batch import BadRecord


def progress(stage: str, total: int | None, unit: str = "records") -> Progress:
    ctx = context_mod.active()
    return Progress(ctx.events if ctx is not None else None, stage, total, unit)


def bad_record(bad: BadRecord) -> None:
    """Add a skipped record to the step report (``bad_records.jsonl`` in the step folder) and the events."""
    ctx = context_mod.active()
    if ctx is None:
        return
    with open(ctx.folder / "bad_records.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(bad.as_dict()) + "\n")
    ctx.events.emit("bad_record", **bad.as_dict())


def files_hash(files: Iterable[Path], root: Path | None = None) -> tuple[str, int, int]:
    """Content hash of a set of files, cached in the current project's store when there is one."""
    from blase_tui.store.filehash import files_hash as store_files_hash

    tracker = context_mod.current_tracker()
    return store_files_hash(tracker.store if tracker is not None else None, files, root)


def dataset(path: Path | str, *, role: str, files: list[Path] | None = None, records: int | None = None,
            digest: str | None = None, name: str | None = None) -> str | None:
    """Record a dataset on the current run (input or output); returns its content hash."""
    tracker = context_mod.current_tracker()
    if tracker is None:
        return None
    path = Path(path)
    if digest is None:
        if files is None:
            from blase_tui.store.filehash import dataset_hash

            digest = dataset_hash(tracker.store, path)
        else:
            digest, _, _ = files_hash(files, root=path if path.is_dir() else path.parent)
    return tracker.log_dataset(path, role=role, name=name, digest=digest, records=records)

