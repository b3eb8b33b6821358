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
    arrays = [open_npy(f) for f in files]
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


def open_npy(file: Path) -> np.ndarray:
    """``file`` memory-mapped, after its header says it holds plain values: the dtype comes from the header,
    never from what ``np.load`` says on failing (a file that is not ``.npy`` at all, all zeros say, makes numpy
    try it as a pickle)."""
    from numpy.lib import format as npy_format

    def refused(why: str) -> DataError:
        return DataError(f"{file}: not a readable .npy file ({why}); rewrite it with numpy.save.")

    try:
        with open(file, "rb") as fh:
            try:
                version = npy_format.read_magic(fh)
            except ValueError:
                fh.seek(0)
                raise refused(f"it does not begin with the .npy header: its first bytes are {fh.read(8)!r}") from None
            read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            dtype = read_header(fh)[2]
    except (ValueError, OSError) as exc:
        raise refused(reason(exc)) from None
    if dtype.hasobject:
        raise refused("it holds Python objects (dtype=object), which blase does not load: loading them could run"
                      " code from the file; save plain numeric arrays")
    try:
        return np.load(file, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise refused(reason(exc)) from None
