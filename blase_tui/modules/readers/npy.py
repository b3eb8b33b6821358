"""``.npy`` files, memory-mapped: batches are views of the files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from blase_tui.modules import recording
from blase_tui.modules.batch import Batch, BatchMeta, RowKeys
from blase_tui.modules.readers.common import DataError, reason
from blase_tui.modules.readers.common import files as find_files

if TYPE_CHECKING:
    from blase_tui.modules.extract import Extract


def load(
    extract: Extract,
    path: str | Path,
    *,
    batch_size: int | None = None,
    memory_budget: int | str | None = None,
    allow_empty: bool = False,
) -> Iterator[Batch]:
    """``.npy`` files (one or a folder), memory-mapped: batches are views of the file, so reading costs
    page cache, not process memory. ``data["array"]`` holds the records (first axis)."""
    root = Path(path)
    files = find_files(root, ("*.npy",), True, allow_empty, ".npy")
    arrays = []
    for f in files:
        try:
            arrays.append(np.load(f, mmap_mode="r", allow_pickle=False))
        except (ValueError, OSError) as exc:
            objects = "pickle" in str(exc) or "Python objects" in str(exc)
            why = ("it holds Python objects (dtype=object), which blase does not load: loading them could run code"
                   " from the file; save plain numeric arrays") if objects else reason(exc)
            raise DataError(f"{f}: not a readable .npy file ({why}); rewrite it with numpy.save.") from None
    total = sum(len(a) for a in arrays)
    bar = recording.progress(f"load_npy {root}", total=total)
    index = start = 0
    try:
        for file, array in zip(files, arrays, strict=True):
            name = file.relative_to(root).as_posix() if root.is_dir() else file.name
            per_record = array.dtype.itemsize * int(np.prod(array.shape[1:], dtype=np.int64))
            per_batch = extract._size(per_record, batch_size, memory_budget)
            for lo in range(0, len(array), per_batch):
                chunk = array[lo:lo + per_batch]
                keys = RowKeys(f"{name}:", np.arange(lo, lo + len(chunk)))
                bar.update(len(chunk), nbytes=chunk.nbytes)
                yield Batch(keys, {"array": chunk}, BatchMeta(str(root), index, None, total, start, ("load_npy",)))
                index, start = index + 1, start + len(chunk)
    finally:
        bar.close()
    recording.dataset(root, role="input", records=total)
