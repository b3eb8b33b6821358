"""Content hashes of dataset files: xxh3-128 per file (tens of GB/s), cached in the store by path, size and
modification time so that an unchanged 250 GB dataset is not read again."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from blase_tui.store.hashing import hash_json

if TYPE_CHECKING:
    from blase_tui.store.runstore import RunStore

MANIFEST = "_manifest.json"


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


def file_hash(path: Path) -> str:
    """xxh3-128 of one file's bytes."""
    return _file_hash(path, None)[0]


def files_hash(store: RunStore | None, files: Iterable[Path], root: Path | None = None) -> tuple[str, int, int]:
    """``(hash, files, bytes)`` of a set of files."""
    files = sorted(Path(f).resolve() for f in files)
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


def dataset_hash(store: RunStore | None, path: Path) -> str:
    """A dataset folder's hash: its manifest's when blase wrote it (so the writer and every reader agree),
    else the hash of its files."""
    manifest = path / MANIFEST
    if manifest.is_file():
        try:
            digest = json.loads(manifest.read_text()).get("hash")
            if digest:
                return str(digest)
        except ValueError:
            pass
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return files_hash(store, files, root=path if path.is_dir() else path.parent)[0]
