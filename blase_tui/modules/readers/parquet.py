"""Parquet files, streamed a row group at a time with only the wanted columns read and filters pushed down.

A file whose footer cannot be read is an error naming it; a row group whose pages cannot be decoded (a damaged
file: ``Corrupt snappy compressed data``) is a bad record naming the file and the group's rows, skipped or an
error as ``on_error`` says, as the other readers' bad records are."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blase_tui.modules import recording
from blase_tui.modules.batch import BadRecord, Batch, BatchMeta, RowKeys
from blase_tui.modules.readers.common import DataError, RemoteFile, as_root, check_on_error, reason, source
from blase_tui.modules.readers.common import files as find_files

if TYPE_CHECKING:
    from blase_tui.modules.extract import Extract


@dataclass(frozen=True)
class Plan:
    """What a Parquet read needs before it reads a row: the files, their row counts and groups, the batch size
    and the columns to scan. Made once in the step's process; a row group is then read from it anywhere (an
    executor's worker reads one group, ``read_group``)."""

    root: Any  # a Path, or a RemoteRoot (a URL)
    files: list[Any]
    groups: list[list[int]]  # per file: the row groups to read (all, or those a filter may keep)
    offsets: list[list[int]]  # per file: each row group's first row
    per_batch: int
    total_rows: int
    read_columns: list[str] | None
    scan_columns: list[str] | None
    expression: Any
    key_column: str | None
    on_error: str = "skip"

    def name(self, file: Path) -> str:
        return file.relative_to(self.root).as_posix() if self.root.is_dir() else file.name


def plan(extract: Extract, path: str | Path, *, columns: Sequence[str] | None = None, filters: Any = None,
         key_column: str | None = None, batch_size: int | None = None, memory_budget: int | str | None = None,
         on_error: str | None = None, allow_empty: bool = False) -> Plan | None:
    import pyarrow as pa
    import pyarrow.dataset as pds
    import pyarrow.parquet as pq

    on_error = check_on_error(on_error or extract.on_error)
    root = as_root(path)
    files = find_files(root, ("*.parquet", "*.pq"), True, allow_empty, "Parquet")
    if not files:
        return None
    expression = pq.filters_to_expression(filters) if isinstance(filters, list) else filters
    metas = []
    for f in files:
        try:
            metas.append(pq.ParquetFile(source(f)).metadata)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{f}: not a readable Parquet file ({reason(exc)}); it may be damaged or cut"
                            " short: write it again, or move it out of the folder.") from None
    total_rows = sum(m.num_rows for m in metas)
    wanted = set(columns) if columns else None
    uncompressed = 0
    for m in metas:
        for rg in range(m.num_row_groups):
            group = m.row_group(rg)
            for c in range(group.num_columns):
                col = group.column(c)
                if wanted is None or col.path_in_schema.split(".")[0] in wanted:
                    uncompressed += col.total_uncompressed_size
    per_batch = extract._size(uncompressed / max(total_rows, 1) * 1.5, batch_size, memory_budget)
    read_columns = list(columns) if columns else None
    if read_columns and key_column and key_column not in read_columns:
        read_columns.append(key_column)
    schema_names = metas[0].schema.to_arrow_schema().names
    fields = expression_fields(expression) if expression is not None else set()
    filter_columns = [c for c in schema_names if c in fields]
    scan_columns = None if read_columns is None else read_columns + [c for c in filter_columns if c not in read_columns]
    groups, offsets = [], []
    for file, meta in zip(files, metas, strict=True):
        offsets.append([int(x) for x in np.cumsum([0] + [meta.row_group(i).num_rows
                                                         for i in range(meta.num_row_groups)])])
        wanted_groups = list(range(meta.num_row_groups))
        if expression is not None:
            fragment = next(iter((pds.dataset(file.path, format="parquet", filesystem=file.root.fs)
                                  if isinstance(file, RemoteFile) else pds.dataset(file, format="parquet"))
                                 .get_fragments()))
            wanted_groups = sorted(rg.id for piece in fragment.split_by_row_group(expression) for rg in piece.row_groups)
        groups.append(wanted_groups)
    return Plan(root, files, groups, offsets, per_batch, total_rows, read_columns, scan_columns, expression,
                key_column, on_error)


class DamagedGroup(DataError):
    """A row group of a Parquet file whose pages cannot be decoded: the file, the rows it loses (``first`` to
    ``end``, end excluded, counted from the file's first row) and why."""

    def __init__(self, file: Path, group: int, first: int, end: int, why: str) -> None:
        self.file, self.why, self.rows = file, why, end - first
        self.record = f"rows {first}-{end - 1} (row group {group})"
        super().__init__(f"{file}: {self.record} cannot be read ({why}); the file is damaged: write it again, or"
                         " move it out of the folder.")


def read_group(plan: Plan, file: Path, group: int, row: int, *, index: int = 0, start: int = 0,
               reader: Any = None) -> Iterator[Batch]:
    """The batches of one row group of ``file`` whose first row is ``row`` (``plan.per_batch`` rows each; the
    filter applied), in order. Only the plan's settings are used, not its lists of files and groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Row groups one at a time through ParquetFile (no pre-buffering of whole files): the reader then holds
    # about one row group's decode buffers, which keeps the step near its budget.
    reader = reader or pq.ParquetFile(source(file), pre_buffer=False)
    name = plan.name(file)
    expression, read_columns, scan_columns = plan.expression, plan.read_columns, plan.scan_columns
    end = row + reader.metadata.row_group(group).num_rows
    pieces = reader.iter_batches(batch_size=plan.per_batch, row_groups=[group], columns=scan_columns,
                                 use_threads=True)
    while True:
        try:
            record_batch = next(pieces)
        except StopIteration:
            return
        except (OSError, pa.ArrowException) as exc:  # a damaged page says only "Corrupt snappy compressed data"
            raise DamagedGroup(file, group, row, end, reason(exc)) from None
        table = pa.Table.from_batches([record_batch])
        positions = np.arange(row, row + table.num_rows)
        row += table.num_rows
        if expression is not None:
            table = table.append_column("__row", pa.array(positions)).filter(expression)
            positions = table.column("__row").to_numpy()
            keep = read_columns or [c for c in table.column_names if c != "__row"]
            table = table.select(keep)
        elif scan_columns is not None and scan_columns != read_columns:
            table = table.select(read_columns)
        if table.num_rows == 0:
            continue
        if plan.key_column:
            keys: Sequence[str] = [str(v) for v in table.column(plan.key_column).to_pylist()]
        else:
            keys = RowKeys(f"{name}:", positions)
        yield Batch(keys, table, BatchMeta(str(plan.root), index, None, plan.total_rows, start, ("load_parquet",)))
        index, start = index + 1, start + table.num_rows


def load(extract: Extract, path: str | Path, **options: Any) -> Iterator[Batch]:
    import pyarrow.parquet as pq

    found = plan(extract, path, **options)
    if found is None:
        return
    bar = recording.progress(f"load_parquet {found.root}", total=found.total_rows if found.expression is None else None)
    index = start = lost = 0
    bad: list[BadRecord] = []  # a damaged row group's, carried by the next batch
    try:
        for file, groups, offsets in zip(found.files, found.groups, found.offsets, strict=True):
            reader = pq.ParquetFile(source(file), pre_buffer=False)
            for group in groups:
                try:
                    for batch in read_group(found, file, group, offsets[group], index=index, start=start,
                                            reader=reader):
                        if bad:
                            batch.bad_records.extend(bad)
                            bad = []
                        bar.update(len(batch), nbytes=batch.data.nbytes)
                        yield batch
                        index, start = index + 1, start + len(batch)
                except DamagedGroup as exc:
                    bad.append(extract._bad(found.on_error, exc.file, exc.record, exc.why))
                    lost += exc.rows
                    if found.expression is None:
                        bar.update(exc.rows)
    finally:
        bar.close()
    recording.dataset(found.root, role="input", records=found.total_rows - lost)


def prefetched(batches: Iterator[Batch], depth: int = 1) -> Iterator[Batch]:
    """Run ``batches`` one step ahead in a thread, so reading and decoding overlap the caller's work. At most
    ``depth`` finished batches wait; errors are raised in the caller, in order."""
    import queue
    import threading

    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        q.put(("batch", batch), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(("error", exc))

    thread = threading.Thread(target=produce, name="blase-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "batch":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        thread.join(timeout=5)


def expression_fields(expression: Any) -> set[str]:
    """Column names a filter expression reads (so they are read even when not asked for)."""
    import re

    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", str(expression))  # string literals are values, not columns
    return set(re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\b", text))
