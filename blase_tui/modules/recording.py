"""How the data modules report to the running step: progress, bad records, and the datasets they read and
wrote. Outside a step every call is a no-op, so the modules work in a notebook too."""

from __future__ import annotations

import json
import os
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


def _file_hash(path: Path, cache: dict[str, tuple[int, int, str]] | None) -> tuple[str, int]:
    import xxhash

    st = path.stat()
    key = str(path)
    if cache is not None and key in cache and cache[key][:2] == (st.st_size, st.st_mtime_ns):
        return cache[key][2], st.st_size
    digest = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    value = digest.hexdigest()
    if cache is not None:
        cache[key] = (st.st_size, st.st_mtime_ns, value)
    return value, st.st_size


def files_hash(files: Iterable[Path], root: Path | None = None) -> tuple[str, int, int]:
    """Content hash of a set of files (xxh3-128 per file, cached by path, size and mtime in the project store,
    so an unchanged 250 GB dataset is not read again); returns ``(hash, files, bytes)``."""
    from blase_tui.store.hashing import hash_json

    files = sorted(Path(f).resolve() for f in files)
    tracker = context_mod.current_tracker()
    store = tracker.store if tracker is not None else None
    cache: dict[str, tuple[int, int, str]] | None = None
    if store is not None and files:
        cache = {}
        for i in range(0, len(files), 900):
            chunk = [str(f) for f in files[i:i + 900]]
            marks = ",".join("?" * len(chunk))
            for r in store.db.query(f"SELECT path, size, mtime_ns, hash FROM file_hashes WHERE path IN ({marks})", chunk):
                cache[r["path"]] = (r["size"], r["mtime_ns"], r["hash"])
    before = dict(cache) if cache is not None else None
    base = root or (Path(os.path.commonpath([str(f) for f in files])) if files else Path("."))
    if base.is_file():
        base = base.parent
    parts, total = [], 0
    for f in files:
        digest, size = _file_hash(f, cache)
        total += size
        parts.append((os.path.relpath(f, base), digest))
    if store is not None and cache is not None:
        new = [(p, *v) for p, v in cache.items() if before is None or before.get(p) != v]
        if new:
            with store.db.write() as conn:
                conn.executemany("INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, hash) VALUES (?, ?, ?, ?)",
                                 new)
    return "xxh3:" + hash_json(parts), len(files), total


def dataset(path: Path | str, *, role: str, files: list[Path] | None = None, records: int | None = None,
            digest: str | None = None, name: str | None = None) -> str | None:
    """Record a dataset on the current run (input or output); returns its content hash."""
    tracker = context_mod.current_tracker()
    if tracker is None:
        return None
    path = Path(path)
    if digest is None:
        if files is None:
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        digest, _, _ = files_hash(files, root=path if path.is_dir() else path.parent)
    return tracker.log_dataset(path, role=role, name=name, digest=digest, records=records)

