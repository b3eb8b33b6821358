"""JSON files: a top-level array of objects (each object a record) or one object (one record), as Arrow tables.

An array is streamed with ijson, element by element, so a 5 GB file never sits in memory whole (``json.load``
would read it all first, and ``pyarrow.json`` reads only JSON lines). The JSON-lines reader cannot read these
files at all: an array is one value spread over the file, not one object per line.
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

if TYPE_CHECKING:
    from blase_tui.modules.extract import Extract

SAMPLE = 64  # records whose size sets the batch size (``batches(sample=...)``), as load_jsonl's
BOM = b"\xef\xbb\xbf"
KINDS = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean",
         type(None): "null"}


def load(extract: Extract, path: str | Path, *, key_column: str | None = None, batch_size: int | None = None,
         memory_budget: int | str | None = None, on_error: str | None = None,
         allow_empty: bool = False) -> Iterator[Batch]:
    import ijson

    on_error = check_on_error(on_error or extract.on_error)
    root = as_root(path)
    found = files(root, ("*.json",), True, allow_empty, "JSON")
    total_bytes = sum(f.stat().st_size for f in found)
    bar = recording.progress(f"load_json {root}", total=total_bytes, unit="bytes")
    measured = [0]

    def size(obj: dict[str, Any]) -> float:
        # only the first SAMPLE records set the batch size: measure those, not every record of a 5 GB file
        if measured[0] >= SAMPLE:
            return 0.0
        measured[0] += 1
        return len(json.dumps(obj, default=str)) * 2  # about the JSON text's size twice, as load_jsonl counts

    def key(obj: dict[str, Any], default: str) -> str:
        return str(obj[key_column]) if key_column and key_column in obj else default

    def items() -> Iterator[Any]:
        done = 0
        for file in found:
            name = file.relative_to(root).as_posix() if root.is_dir() else file.name
            with open_binary(file) as fh:
                first = _first_byte(fh)
                if first == b"[":
                    yield FILE_END  # an array's records batch apart from the one-object files' before it
                    index = 0
                    try:
                        for obj in ijson.items(fh, "item", use_float=True):
                            bar.set(min(done + fh.tell(), total_bytes))
                            if isinstance(obj, dict):
                                yield Record(key(obj, f"{name}:{index}"), (obj,), size(obj))
                            else:
                                yield Bad(file, f"element {index}", f"a JSON {_kind(obj)}, not an object")
                            index += 1
                    except ijson.JSONError as exc:
                        # nothing after a break in an array can be found again: the rest is one bad record
                        yield Bad(file, f"element {index}", f"not valid JSON from here on: {_why(exc)}")
                    yield FILE_END
                elif first == b"{":
                    values = ijson.items(fh, "", use_float=True)
                    obj = None
                    try:
                        obj = next(values)
                        next(values, None)  # the rest of the file: only blanks may follow the object
                    except ijson.JSONError as exc:
                        if obj is not None:
                            raise DataError(
                                f"{file} holds more than one JSON value ({_why(exc)}), as JSON lines do; read it"
                                " with Extract().load_jsonl(...)."
                            ) from None
                        yield Bad(file, name, f"not valid JSON: {_why(exc)}")
                    else:
                        yield Record(key(obj, name), (obj,), size(obj))
                elif not first:
                    yield Bad(file, name, "the file is empty (or blank), not JSON")
                else:
                    starts = first.decode("latin-1")
                    yield Bad(file, name, f"not a JSON array of objects nor an object (it starts with {starts!r})")
            done += file.stat().st_size
            bar.set(min(done, total_bytes))

    try:
        yield from batches(extract, items(), root=root, reader="load_json", columns=table, on_error=on_error,
                           batch_size=batch_size, memory_budget=memory_budget, sample=SAMPLE)
    finally:
        bar.close()
    recording.dataset(root, role="input")


def table(values: list[tuple[Any, ...]]) -> Any:
    """The records (each a one-tuple of a dict) as an Arrow table with a column for every key any of them has:
    ``from_pylist`` would take the first record's keys only, and drop the others' silently."""
    import pyarrow as pa

    if not values:
        return pa.table({})
    records = [v[0] for v in values]
    try:
        return pa.Table.from_struct_array(pa.array(records))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        raise DataError(_type_clash(records)) from None


def _type_clash(records: list[dict[str, Any]]) -> str:
    """One sentence naming a field whose values are of different kinds in one batch (a number, then text)."""
    def kind(value: Any) -> str:
        if isinstance(value, bool):
            return "true/false"
        if isinstance(value, int | float):
            return "a number"
        return {str: "text", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)

    seen: dict[str, str] = {}
    for number, record in enumerate(records):
        for key, value in record.items():
            if value is None:
                continue
            if seen.setdefault(key, kind(value)) != kind(value):
                return (f"JSON records disagree on the field `{key}`: {seen[key]} in one, {kind(value)} in record"
                        f" {number + 1} of the same batch; write it as one kind of value in every record.")
    return "JSON records of one batch cannot be put in one table (their fields disagree); write each field as one kind."


def _first_byte(fh: IO[bytes]) -> bytes:
    """The file's first byte that is not blank (b"" for a blank file), leaving ``fh`` at the start of the
    JSON text: after a UTF-8 byte-order mark, which the parser does not take."""
    start = len(BOM) if fh.read(len(BOM)) == BOM else 0
    fh.seek(start)
    while chunk := fh.read(4096):
        text = chunk.lstrip(b" \t\r\n")
        if text:
            fh.seek(start)
            return text[:1]
    fh.seek(start)
    return b""


def _kind(value: Any) -> str:
    return KINDS.get(type(value), type(value).__name__)


def _why(exc: BaseException) -> str:
    """ijson's error as one line: what is wrong, and the text around it (its C parser prints some 30 bytes
    either side of the place on a second line)."""
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = str(text).split("\n")
    what = lines[0].strip().rstrip(".") or type(exc).__name__
    near = lines[1].strip() if len(lines) >= 3 and "^" in lines[2] else ""
    return f"{what} near {near!r}" if near else what
