"""Content hashes of dataset files: xxh3-128 per file (tens of GB/s), cached in the store by path, size and
modification time so that an unchanged 250 GB dataset is not read again."""

from __future__ import annotations

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
    """``(hash, files, bytes)`` of a set of files: ``xxh3:`` + the hash of their paths relative to ``root`` with
    each file's xxh3-128."""
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
    base = root.resolve() if root is not None else (
        Path(os.path.commonpath([str(f) for f in files])) if files else Path("."))
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
            remember(store, new)
    return pairs_hash(parts), len(files), total


def pairs_hash(parts: Iterable[tuple[str, str]]) -> str:
    """The hash of files given as ``(path relative to the dataset, xxh3)`` pairs, in one order (by path
    component, as paths sort): what ``files_hash`` computes, for a writer that knows its files' hashes."""
    ordered = sorted(((rel.replace(os.sep, "/"), digest) for rel, digest in parts), key=lambda p: p[0].split("/"))
    return "xxh3:" + hash_json(ordered)


def remember(store: RunStore | None, entries: Iterable[tuple[str, int, int, str]]) -> None:
    """Put ``(path, size, mtime_ns, xxh3)`` of files a writer has just hashed into the store's cache, so that
    the next reader of them (and ``dataset_hash``) does not read them again."""
    rows = list(entries)
    if store is None or not rows:
        return
    with store.db.write() as conn:
        conn.executemany("INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, hash) VALUES (?, ?, ?, ?)", rows)


def is_data_file(relative: str) -> bool:
    """Whether a file under a dataset folder is part of the dataset: not hidden (nor under a hidden folder: a
    writer's ``.shards`` lists, ``.tmp-`` files), not blase's ``_manifest.json`` (it says when it was written)."""
    parts = relative.replace(os.sep, "/").split("/")
    return not any(p.startswith(".") for p in parts) and parts[-1] != MANIFEST


def dataset_files(path: Path) -> list[Path]:
    """The files that make up dataset ``path``: the file itself, or every data file under the folder."""
    if path.is_file():
        return [path]
    out = []
    for folder, dirs, names in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out.extend(Path(folder) / n for n in names if is_data_file(n))
    return out


def dataset_hash(store: RunStore | None, path: Path) -> str:
    """The one hash of a dataset, whoever computes it: the writer (``Load``, ``Prepare``, ``log_dataset``) and
    every reader of a file or folder get the same value, so lineage can match them. A folder's hash covers
    all of its data files (``dataset_files``) by path and content; a manifest is never trusted in their place
    (a shard edited in place must change the hash). Unchanged files are not read again (the store's cache, by
    size and modification time)."""
    path = Path(path)
    root = path if path.is_dir() else path.parent
    return files_hash(store, dataset_files(path), root=root)[0]
