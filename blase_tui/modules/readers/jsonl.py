"""JSON-lines files: one object per line, as Arrow tables; a line that is not a JSON object is a bad record.

A file that is one JSON array (``[{...}, {...}]``, on one line or pretty-printed) is not JSON lines: reading it
line by line would make every line a bad record and the step a quiet success, so it is an error that names
``load_json``, the reader for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from blase_tui.modules import recording
from blase_tui.modules.batch import Batch
from blase_tui.modules.readers.common import (
    FILE_END,
    Bad,
    DataError,
    Record,
    as_root,
    batches,
    check_on_error,
    files,
    open_binary,
)
from blase_tui.modules.readers.json import BOM, table

if TYPE_CHECKING:
    from blase_tui.modules.extract import Extract


def load(extract: Extract, path: str | Path, *, key_column: str | None = None, batch_size: int | None = None,
         memory_budget: int | str | None = None, on_error: str | None = None,
         allow_empty: bool = False) -> Iterator[Batch]:
    on_error = check_on_error(on_error or extract.on_error)
    root = as_root(path)
    found = files(root, ("*.jsonl", "*.ndjson"), True, allow_empty, "JSON lines")
    total_bytes = sum(f.stat().st_size for f in found)
    bar = recording.progress(f"load_jsonl {root}", total=total_bytes, unit="bytes")

    def items() -> Iterator[Any]:
        for file in found:
            name = file.relative_to(root).as_posix() if root.is_dir() else file.name
            with open_binary(file) as fh:
                if holds_array(fh):
                    raise DataError(f"{file} holds one JSON array, not JSON lines (an object on each line); read it"
                                    " with Extract().load_json(...).")
                for number, raw in enumerate(fh, start=1):
                    bar.set(min(bar.done + len(raw), total_bytes))
                    try:
                        line = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        yield Bad(file, f"line {number}", f"not valid UTF-8 ({raw[:40]!r}); write the file as UTF-8")
                        continue
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                        if not isinstance(obj, dict):
                            raise ValueError(f"a JSON {type(obj).__name__}, not an object")
                    except ValueError as exc:
                        yield Bad(file, f"line {number}", str(exc).split("\n")[0])
                        continue
                    key = str(obj[key_column]) if key_column and key_column in obj else f"{name}:{number}"
                    yield Record(key, (obj,), len(raw) * 2)
            yield FILE_END

    try:
        yield from batches(extract, items(), root=root, reader="load_jsonl", columns=table, on_error=on_error,
                           batch_size=batch_size, memory_budget=memory_budget, sample=64)
    finally:
        bar.close()
    recording.dataset(root, role="input")


def holds_array(fh: IO[bytes]) -> bool:
    """Whether the file is one JSON array rather than JSON lines, from its first 64 KiB: it starts with ``[``
    and its first line is the whole file, or no whole JSON value on its own (the array goes on below). A
    JSON-lines file whose first record happens to be an array has more lines after it, and reads as usual."""
    head = fh.read(1 << 16)
    fh.seek(0)
    text = head.removeprefix(BOM).lstrip(b" \t\r\n")
    if not text.startswith(b"["):
        return False
    line, newline, rest = text.partition(b"\n")
    if not newline or not rest.strip():
        return True
    try:
        json.loads(line)
    except ValueError:
        return True
    return False
