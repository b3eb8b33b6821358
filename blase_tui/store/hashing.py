"""Content hashes (sha256, hex) for files, trees, bytes and JSON-able values."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def hash_json(value: Any) -> str:
    return hash_bytes(canonical_json(value).encode())


def fingerprint(path: Path) -> str | None:
    """A cheap identity of a file or folder (sizes and modification times, not contents): enough to notice that
    a dataset changed without reading 250 GB. None when the path does not exist. Files being written (``.tmp-``
    and ``.partial-`` names, which are renamed when complete) are not part of it."""
    import os

    if path.is_file():
        st = path.stat()
        return f"f:{st.st_size}:{st.st_mtime_ns}"
    if path.is_dir():
        parts = []
        for folder, dirs, names in os.walk(path):
            dirs.sort()
            for n in sorted(names):
                if n.startswith((".tmp-", ".partial-")):
                    continue
                try:
                    st = os.stat(os.path.join(folder, n))
                except FileNotFoundError:  # removed while we looked (another process's temporary file)
                    continue
                parts.append((os.path.relpath(os.path.join(folder, n), path), st.st_size, st.st_mtime_ns))
        return "d:" + hash_json(parts)
    return None

