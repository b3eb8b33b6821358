"""Tables: CSV through pyarrow's streaming reader, Parquet from its footer and first row group."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from blase_tui.render import common
from blase_tui.render.common import count_lines, head_lines, header, more_note


def _fit_columns(schema: Any, width: int) -> int:
    """How many leading columns of an Arrow ``schema`` fit ``width``: each needs its name, its type or a
    typical value (numbers ~8 characters, text ~14), whichever is wider, plus a space."""
    import pyarrow.types as pat

    used, n = 0, 0
    for field in schema:
        value = 8 if pat.is_integer(field.type) or pat.is_floating(field.type) else 14
        used += max(len(field.name), len(short_type(field.type)), value) + 1
        if used > width and n:
            break
        n += 1
    return max(1, n)


def _cell(value: Any) -> Text:
    if value is None:
        return Text("–", style="dim")
    if isinstance(value, float):
        return Text("nan" if math.isnan(value) else f"{value:.4g}")
    if isinstance(value, bytes):
        return Text(f"<{len(value):,} bytes>", style="dim")
    text = value if isinstance(value, str) else repr(value)
    return Text(text if len(text) <= 40 else text[:39] + "…")


def _arrow_table(tbl: Any, width: int, hidden: Sequence[str] = (), *, list_hidden: bool = True) -> Table:
    """A pyarrow table (already cut to the rows to show) as a Rich table: names with their types in the
    header, numbers right-aligned, hidden columns named in the caption."""
    import pyarrow.types as pat

    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 1), header_style="bold")
    for field in tbl.schema:
        numeric = pat.is_integer(field.type) or pat.is_floating(field.type) or pat.is_decimal(field.type)
        header = Text.assemble((field.name, "bold"), "\n", (short_type(field.type), "dim"))
        table.add_column(header, justify="right" if numeric else "left", no_wrap=True, max_width=max(8, width // 3),
                         overflow="ellipsis")
    columns = [col.to_pylist() for col in tbl.columns]
    for i in range(tbl.num_rows):
        table.add_row(*(_cell(col[i]) for col in columns))
    if hidden:
        shown = ", ".join(hidden[:8]) + (" …" if len(hidden) > 8 else "")
        table.caption = f"+{len(hidden)} more columns" + (f": {shown}" if list_hidden else "")
        table.caption_justify = "left"
        table.caption_style = "dim"
    return table


def short_type(t: Any) -> str:
    text = str(t)
    return {"double": "float64", "float": "float32", "large_string": "string", "large_binary": "binary"}.get(
        text, text if len(text) <= 24 else text[:23] + "…")


def csv_file(path: Path, width: int, max_rows: int) -> RenderableType:
    """The head of a CSV through pyarrow's streaming reader (one 1 MiB block), with the row count: exact for
    small files, from a line count up to COUNT_LINES_UP_TO."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    size = path.stat().st_size
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 20),
                                parse_options=pacsv.ParseOptions(delimiter=delimiter))
        batches, rows = [], 0
        whole = size <= 1 << 20
        for batch in reader:
            batches.append(batch)
            rows += batch.num_rows
            if rows >= max_rows and not whole:
                break
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        lines, _ = head_lines(path, max_rows)
        return Group(header(path, "CSV"), Text(f"cannot parse as CSV: {exc}", style="red"), Text("\n".join(lines)))
    schema = batches[0].schema if batches else reader.schema
    tbl = pa.Table.from_batches(batches, schema=schema) if batches else schema.empty_table()
    if whole:
        count = f"{tbl.num_rows:,} rows"
    elif size <= common.COUNT_LINES_UP_TO:  # read here, so one patch of common covers count_lines too
        count = f"≈{max(0, count_lines(path)[0] - 1):,} rows"
    else:
        count = "rows not counted (large file)"
    names = tbl.schema.names
    fit = _fit_columns(tbl.schema, width)
    head = tbl.select(names[:fit]).slice(0, max_rows)
    parts: list[RenderableType] = [header(path, "CSV", count, f"{len(names)} columns"),
                                   _arrow_table(head, width, names[fit:])]
    if tbl.num_rows > max_rows or not whole:
        parts.append(more_note(f"⋮ first {head.num_rows} rows shown"))
    return Group(*parts)


def parquet_file(path: Path, width: int, max_rows: int) -> RenderableType:
    """Schema, row count and row groups from the footer; the head read from the first row group only (and
    only the columns that fit), so a 100 GB file previews as fast as a small one."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    md = pf.metadata
    schema = pf.schema_arrow
    names = schema.names
    facts = [f"{md.num_rows:,} rows", f"{md.num_row_groups:,} row group{'s' if md.num_row_groups != 1 else ''}",
             f"{len(names)} columns"]
    fit = _fit_columns(schema, width)
    parts: list[RenderableType] = [header(path, "Parquet", *facts)]
    if fit < len(names):  # the table cannot show them all: list every column with its type
        cols = Text.assemble(("columns  ", "bold"))
        for i, field in enumerate(schema):
            if i == 60:
                cols.append(f"… +{len(names) - 60} more", "dim")
                break
            cols.append(("  ·  " if i else ""), "dim")
            cols.append(field.name)
            cols.append(f" {short_type(field.type)}", "dim")
        parts.append(cols)
    if md.created_by:
        parts.append(Text(f"written by {md.created_by}", style="dim"))
    if md.num_row_groups and md.num_rows:
        batch = next(pf.iter_batches(batch_size=max_rows, row_groups=[0], columns=names[:fit]), None)
        if batch is not None:
            import pyarrow as pa

            parts += [Text(""), _arrow_table(pa.Table.from_batches([batch]), width, names[fit:], list_hidden=False)]
            if md.num_rows > batch.num_rows:
                parts.append(more_note(f"⋮ first {batch.num_rows} of {md.num_rows:,} rows shown"))
    return Group(*parts)
