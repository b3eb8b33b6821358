"""CSV files, streamed as Arrow tables in batches sized by the memory budget (``Extract._size``, from the Arrow
bytes per row of the file's first block): a row with the wrong number of fields, or text that is not valid in
the files' encoding, is a bad record."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blase_tui.modules import recording
from blase_tui.modules.batch import BadRecord, Batch, BatchMeta
from blase_tui.modules.budget import read_block_bytes, resolve_budget
from blase_tui.modules.readers.common import DataError, Tally, as_root, check_on_error, source
from blase_tui.modules.readers.common import files as find_files

if TYPE_CHECKING:
    from blase_tui.modules.extract import Extract


def load(
    extract: Extract,
    path: str | Path,
    *,
    columns: Sequence[str] | None = None,
    key_column: str | None = None,
    delimiter: str = ",",
    column_types: dict[str, Any] | None = None,
    batch_size: int | None = None,
    memory_budget: int | str | None = None,
    on_error: str | None = None,
    allow_empty: bool = False,
    encoding: str = "utf-8",
) -> Iterator[Batch]:
    """CSV files (one file or a folder of ``*.csv``), streamed as Arrow tables. A row with the wrong
    number of fields is a bad record; keys are ``file:row`` (data rows from 0) or the ``key_column``.
    ``encoding`` is the files' text encoding (``"latin-1"``, ``"cp1252"``...); with the default UTF-8, a row
    whose text is not valid UTF-8 is a bad record naming its column, never a column silently turned into
    bytes."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    on_error = check_on_error(on_error or extract.on_error)
    root = as_root(path)
    files = find_files(root, ("*.csv", "*.csv.gz"), True, allow_empty, "CSV")
    total_bytes = sum(f.stat().st_size for f in files)
    bar = recording.progress(f"load_csv {root}", total=total_bytes, unit="bytes")
    index = start = 0
    try:
        for file in files:
            name = file.relative_to(root).as_posix() if root.is_dir() else file.name
            invalid: list[int] = []
            pending_bad: list[BadRecord] = []

            failed: list[DataError] = []
            tally, first_bad, first_row = Tally(extract, "load_csv", root), len(extract.bad_records), start

            def on_invalid(row: Any, file: Path = file, invalid: list[int] = invalid,
                           pending: list[BadRecord] = pending_bad, failed: list[DataError] = failed) -> str:
                # pyarrow swallows exceptions raised here: keep the error and let the reader stop
                number = row.number if row.number is not None else -1
                invalid.append(number - 2)  # physical row 1 is the header
                reason = f"expected {row.expected_columns} fields, found {row.actual_columns}: {row.text[:80]!r}"
                try:
                    pending.append(extract._bad(on_error, file, f"line {number}", reason))
                except DataError as exc:
                    failed.append(exc)
                    return "error"
                return "skip"

            budget = resolve_budget(memory_budget) if memory_budget is not None else extract.memory_budget
            block = read_block_bytes(budget)
            want = int(batch_size or extract.batch_size or 0)  # records per batch; 0: from the first block
            try:
                reader = pcsv.open_csv(
                    source(file),
                    read_options=pcsv.ReadOptions(block_size=block, use_threads=False, encoding=encoding),
                    parse_options=pcsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
                    convert_options=pcsv.ConvertOptions(include_columns=list(columns) if columns else None,
                                                        column_types=column_types),
                )
                row = 0
                skip = set()
                buffered: list[Any] = []
                n_buffered = 0
                for record_batch in reader:
                    skip.update(invalid)
                    invalid.clear()
                    table = pa.Table.from_batches([record_batch])
                    keys = []
                    while len(keys) < table.num_rows:
                        if row not in skip:
                            keys.append(f"{name}:{row}")
                        row += 1
                    table, keys = check_text(extract, table, keys, file, on_error, column_types, pending_bad)
                    if key_column:
                        keys = [str(v) for v in table.column(key_column).to_pylist()]
                    buffered.append((keys, table))
                    n_buffered += table.num_rows
                    bar.set(min(bar.done + int(record_batch.nbytes), total_bytes))
                    if not want and table.num_rows:  # the Arrow bytes a row of this file takes
                        want = extract._size(table.nbytes / table.num_rows, None, memory_budget)
                    while want and n_buffered >= want:
                        out_keys, out_table, buffered, n_buffered = _take(buffered, want)
                        yield Batch(out_keys, out_table, BatchMeta(str(root), index, None, None, start, ("load_csv",)),
                                    pending_bad[:])
                        pending_bad.clear()
                        index, start = index + 1, start + len(out_keys)
                if n_buffered:
                    out_keys, out_table, buffered, n_buffered = _take(buffered, n_buffered)
                    yield Batch(out_keys, out_table, BatchMeta(str(root), index, None, None, start, ("load_csv",)),
                                pending_bad[:])
                    index, start = index + 1, start + len(out_keys)
            except pa.ArrowInvalid as exc:
                if failed:
                    raise failed[0] from None
                message = str(exc).split("\n")[0]
                raise DataError(f"{file}: cannot parse ({message}); fix the file or set column_types.") from None
            for record in extract.bad_records[first_bad:]:
                tally.add_bad(record)
            tally.good = start - first_row
            tally.close()
    finally:
        bar.close()
    recording.dataset(root, role="input")


def check_text(extract: Extract, table: Any, keys: list[str], file: Path, on_error: str, column_types: dict[str, Any] | None,
                pending: list[BadRecord]) -> tuple[Any, list[str]]:
    """pyarrow reads a text column that is not valid UTF-8 as bytes: name the rows, and keep the column
    text. A column the caller typed as binary is left alone."""
    import pyarrow as pa

    typed = set(column_types or {})
    keep = np.ones(table.num_rows, dtype=bool)
    for i, field in enumerate(table.schema):
        if not pa.types.is_binary(field.type) or field.name in typed:
            continue
        values = table.column(i).to_pylist()
        for row, value in enumerate(values):
            if value is None or not keep[row]:
                continue
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                keep[row] = False
                pending.append(extract._bad(on_error, file, keys[row], (
                    f"column `{field.name}` is not valid UTF-8 ({value[:40]!r}); pass encoding=\"latin-1\" (or"
                    " the file's encoding) to read it")))
    if keep.all() and not any(pa.types.is_binary(f.type) and f.name not in typed for f in table.schema):
        return table, keys
    table = table.filter(pa.array(keep))
    for i, field in enumerate(table.schema):
        if pa.types.is_binary(field.type) and field.name not in typed:
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
    return table, [k for k, ok in zip(keys, keep.tolist(), strict=True) if ok]


def _take(buffered: list[tuple[list[str], Any]], n: int) -> tuple[list[str], Any, list[tuple[list[str], Any]], int]:
    """The first ``n`` rows of a list of (keys, table) pieces, and what is left."""
    import pyarrow as pa

    keys: list[str] = []
    tables = []
    rest: list[tuple[list[str], Any]] = []
    need = n
    for k, t in buffered:
        if need <= 0:
            rest.append((k, t))
        elif t.num_rows <= need:
            keys += k
            tables.append(t)
            need -= t.num_rows
        else:
            keys += k[:need]
            tables.append(t.slice(0, need))
            rest.append((k[need:], t.slice(need)))
            need = 0
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return keys, table, rest, sum(t.num_rows for _, t in rest)
