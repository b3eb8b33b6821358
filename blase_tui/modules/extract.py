"""``Extract``: stream records from disk in batches sized by the memory budget.

>>> extractor = Extract()
>>> for batch in extractor.load_images(directory="data/raw/images"):
...     print(len(batch), batch["image"].shape)
"""

from __future__ import annotations

import io
import json
import re
import wave
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from blase_tui.errors import BlaseError
from blase_tui.modules import recording
from blase_tui.modules.batch import BadRecord, Batch, BatchMeta, RowKeys
from blase_tui.modules.budget import SHARE, records_per_batch, resolve_budget

IMAGE_PATTERNS = ("*.png", "*.jpg", "*.jpeg")
ON_ERROR = ("skip", "fail")


class DataError(BlaseError):
    """A record that cannot be read, with ``on_error="fail"``."""


def _check_on_error(value: str) -> str:
    if value not in ON_ERROR:
        raise ValueError(f"on_error must be 'skip' or 'fail', not {value!r}")
    return value


def _missing(path: Path) -> BlaseError:
    return BlaseError(f"{path} does not exist; check the path (it is relative to the project folder).")


def _files(path: Path, patterns: Sequence[str], recursive: bool, allow_empty: bool, what: str) -> list[Path]:
    if not path.exists():
        raise _missing(path)
    if path.is_file():
        return [path]
    found: set[Path] = set()
    for pattern in patterns:
        found.update(p for p in (path.rglob(pattern) if recursive else path.glob(pattern)) if p.is_file())
        found.update(p for p in (path.rglob(pattern.upper()) if recursive else path.glob(pattern.upper())) if p.is_file())
    files = sorted(p for p in found if not p.name.startswith("."))
    if not files and not allow_empty:
        raise BlaseError(
            f"no {what} files ({', '.join(patterns)}) in {path}; put data there, fix the path, or pass allow_empty=True."
        )
    return files


def _reason(exc: BaseException) -> str:
    """An exception as a reason a person can read: its first line, without the in-memory buffers some
    libraries name (``<_io.BytesIO object at 0x...>``)."""
    text = str(exc).split("\n")[0] or type(exc).__name__
    return re.sub(r"<_io\.\w+ object at 0x[0-9a-f]+>", "the file", text)


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    if arrays and all(a.shape == arrays[0].shape and a.dtype == arrays[0].dtype for a in arrays):
        return np.stack(arrays)
    out = np.empty(len(arrays), dtype=object)
    for i, a in enumerate(arrays):
        out[i] = a
    return out


class Extract:
    """Readers for images, CSV, Parquet, ``.npy``, JSON lines and WAV audio.

    Every reader yields :class:`Batch` objects whose size comes from ``memory_budget`` (bytes; default: the
    step's budget from ``blase.toml``) unless ``batch_size`` (records) is given. Bad records are skipped and
    listed in the step's ``bad_records.jsonl`` with ``on_error="skip"`` (the default), or stop the step with a
    message naming the file and record with ``on_error="fail"``. ``bad_records`` holds those skipped so far.
    """

    def __init__(self, memory_budget: int | str | None = None, batch_size: int | None = None,
                 on_error: str = "skip") -> None:
        self.memory_budget = resolve_budget(memory_budget)
        self.batch_size = batch_size
        self.on_error = _check_on_error(on_error)
        self.bad_records: list[BadRecord] = []

    # ------------------------------------------------------------------ helpers
    def _size(self, bytes_per_record: float, batch_size: int | None, memory_budget: int | str | None) -> int:
        if batch_size or self.batch_size:
            return int(batch_size or self.batch_size)  # type: ignore[arg-type]
        budget = resolve_budget(memory_budget) if memory_budget is not None else self.memory_budget
        return records_per_batch(bytes_per_record, budget)

    def _bad(self, on_error: str, source: Path | str, record: str, reason: str) -> BadRecord:
        bad = BadRecord(str(source), record, reason)
        if on_error == "fail":
            raise DataError(
                f"{source}: record {record} cannot be read ({reason}); fix or remove it, or pass on_error=\"skip\"."
            )
        self.bad_records.append(bad)
        recording.bad_record(bad)
        return bad

    # ------------------------------------------------------------------ images
    def load_images(
        self,
        directory: str | Path,
        *,
        patterns: Sequence[str] = IMAGE_PATTERNS,
        recursive: bool = True,
        mode: str | None = None,
        size: tuple[int, int] | None = None,
        batch_size: int | None = None,
        memory_budget: int | str | None = None,
        on_error: str | None = None,
        allow_empty: bool = False,
    ) -> Iterator[Batch]:
        """PNG/JPEG files under ``directory``. Keys are paths relative to it; ``data["image"]`` is a uint8 array
        ``(n, height, width[, channels])`` (an object array when sizes differ; ``size=(w, h)`` resizes) and
        ``data["label"]`` the name of each file's folder relative to ``directory`` ("" at the top)."""
        from PIL import Image, UnidentifiedImageError

        recording.params("load_images", **{"load_images.directory": directory},
                         **({"load_images.size": size} if size else {}))
        on_error = _check_on_error(on_error or self.on_error)
        root = Path(directory)
        files = _files(root, patterns, recursive, allow_empty, "image")
        base = root if root.is_dir() else root.parent

        def decode(path: Path) -> np.ndarray:
            raw = path.read_bytes()
            with Image.open(io.BytesIO(raw)) as img:
                img.load()
                if mode:
                    img = img.convert(mode)
                if size:
                    img = img.resize(size)
                return np.asarray(img)

        per_batch = None
        bar = recording.progress(f"load_images {root}", total=len(files), unit="images")
        n_bad = 0
        keys: list[str] = []
        arrays: list[np.ndarray] = []
        labels: list[str] = []
        bad: list[BadRecord] = []
        index = start = 0
        try:
            for path in files:
                key = path.relative_to(base).as_posix()
                try:
                    image = decode(path)
                except Image.DecompressionBombError as exc:
                    claimed = re.search(r"\((\d+) pixels\)", str(exc))
                    bad.append(self._bad(on_error, path, key, (
                        f"its header claims {int(claimed.group(1)):,} pixels" if claimed
                        else "its header claims too many pixels")
                        + ", over Pillow's safety limit (a damaged or hostile file; raise PIL.Image.MAX_IMAGE_PIXELS"
                        " only if the image is real)"))
                    n_bad += 1
                    bar.update(1)
                    continue
                except UnidentifiedImageError:
                    bad.append(self._bad(on_error, path, key, "not an image Pillow can read (not PNG/JPEG, or damaged)"))
                    n_bad += 1
                    bar.update(1)
                    continue
                except (OSError, ValueError, SyntaxError) as exc:
                    bad.append(self._bad(on_error, path, key, f"not a readable image: {_reason(exc)}"))
                    n_bad += 1
                    bar.update(1)
                    continue
                if per_batch is None:
                    per_batch = self._size(image.nbytes + 200, batch_size, memory_budget)
                keys.append(key)
                arrays.append(image)
                parent = path.parent.relative_to(base).as_posix()
                labels.append("" if parent == "." else parent)
                bar.update(1, nbytes=image.nbytes)
                if len(keys) >= per_batch:
                    yield Batch(keys, {"image": _stack(arrays), "label": np.asarray(labels)},
                                BatchMeta(str(root), index, None, len(files), start, ("load_images",)), bad)
                    index, start = index + 1, start + len(keys)
                    keys, arrays, labels, bad = [], [], [], []
            if keys or (index == 0 and bad):
                yield Batch(keys, {"image": _stack(arrays), "label": np.asarray(labels)},
                            BatchMeta(str(root), index, index + 1, len(files), start, ("load_images",)), bad)
        finally:
            bar.close()
        recording.dataset(root, role="input", files=files, records=len(files) - n_bad)

    # --------------------------------------------------------------------- CSV
    def load_csv(
        self,
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

        on_error = _check_on_error(on_error or self.on_error)
        root = Path(path)
        files = _files(root, ("*.csv", "*.csv.gz"), True, allow_empty, "CSV")
        total_bytes = sum(f.stat().st_size for f in files)
        bar = recording.progress(f"load_csv {root}", total=total_bytes, unit="bytes")
        index = start = 0
        try:
            for file in files:
                name = file.relative_to(root).as_posix() if root.is_dir() else file.name
                invalid: list[int] = []
                pending_bad: list[BadRecord] = []

                failed: list[DataError] = []

                def on_invalid(row: Any, file: Path = file, invalid: list[int] = invalid,
                               pending: list[BadRecord] = pending_bad, failed: list[DataError] = failed) -> str:
                    # pyarrow swallows exceptions raised here: keep the error and let the reader stop
                    number = row.number if row.number is not None else -1
                    invalid.append(number - 2)  # physical row 1 is the header
                    reason = f"expected {row.expected_columns} fields, found {row.actual_columns}: {row.text[:80]!r}"
                    try:
                        pending.append(self._bad(on_error, file, f"line {number}", reason))
                    except DataError as exc:
                        failed.append(exc)
                        return "error"
                    return "skip"

                # A CSV block turns into about as many bytes of Arrow data: read half a batch's share at a time.
                budget = resolve_budget(memory_budget) if memory_budget is not None else self.memory_budget
                block = int(min(max(budget // (SHARE * 2), 1 << 16), 1 << 28))
                try:
                    reader = pcsv.open_csv(
                        file,
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
                        table, keys = self._check_text(table, keys, file, on_error, column_types, pending_bad)
                        if key_column:
                            keys = [str(v) for v in table.column(key_column).to_pylist()]
                        buffered.append((keys, table))
                        n_buffered += table.num_rows
                        bar.set(min(bar.done + int(record_batch.nbytes), total_bytes))
                        if batch_size or self.batch_size:
                            want = int(batch_size or self.batch_size)  # type: ignore[arg-type]
                            while n_buffered >= want:
                                out_keys, out_table, buffered, n_buffered = _take(buffered, want)
                                yield Batch(out_keys, out_table, BatchMeta(str(root), index, None, None, start, ("load_csv",)),
                                            pending_bad[:])
                                pending_bad.clear()
                                index, start = index + 1, start + len(out_keys)
                        else:
                            out_keys, out_table, buffered, n_buffered = _take(buffered, n_buffered)
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
        finally:
            bar.close()
        recording.dataset(root, role="input", files=files)

    def _check_text(self, table: Any, keys: list[str], file: Path, on_error: str, column_types: dict[str, Any] | None,
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
                    pending.append(self._bad(on_error, file, keys[row], (
                        f"column `{field.name}` is not valid UTF-8 ({value[:40]!r}); pass encoding=\"latin-1\" (or"
                        " the file's encoding) to read it")))
        if keep.all() and not any(pa.types.is_binary(f.type) and f.name not in typed for f in table.schema):
            return table, keys
        table = table.filter(pa.array(keep))
        for i, field in enumerate(table.schema):
            if pa.types.is_binary(field.type) and field.name not in typed:
                table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
        return table, [k for k, ok in zip(keys, keep.tolist(), strict=True) if ok]

    # ----------------------------------------------------------------- Parquet
    def load_parquet(self, path: str | Path, **options: Any) -> Iterator[Batch]:
        """Parquet files (one file or a folder), streamed as Arrow tables with only ``columns`` read and
        ``filters`` (a ``pyarrow.compute`` expression or DNF list like ``[("mag", ">", 19.5)]``) pushed down to
        the row groups. Keys are ``file:row`` or the ``key_column``. Options: ``columns``, ``filters``,
        ``key_column``, ``batch_size``, ``memory_budget``, ``allow_empty``, ``prefetch`` (default True: the
        next batch is decoded while the caller works on this one; one extra batch of memory)."""
        prefetch = options.pop("prefetch", True)
        batches = self._parquet_batches(path, **options)
        return _prefetched(batches) if prefetch else batches

    def _parquet_batches(
        self,
        path: str | Path,
        *,
        columns: Sequence[str] | None = None,
        filters: Any = None,
        key_column: str | None = None,
        batch_size: int | None = None,
        memory_budget: int | str | None = None,
        allow_empty: bool = False,
    ) -> Iterator[Batch]:
        import pyarrow as pa
        import pyarrow.dataset as pds
        import pyarrow.parquet as pq

        root = Path(path)
        files = _files(root, ("*.parquet", "*.pq"), True, allow_empty, "Parquet")
        if not files:
            return
        expression = pq.filters_to_expression(filters) if isinstance(filters, list) else filters
        metas = []
        for f in files:
            try:
                metas.append(pq.ParquetFile(f).metadata)
            except (pa.ArrowInvalid, OSError) as exc:
                raise DataError(f"{f}: not a readable Parquet file ({_reason(exc)}); it may be damaged or cut"
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
        per_batch = self._size(uncompressed / max(total_rows, 1) * 1.5, batch_size, memory_budget)
        bar = recording.progress(f"load_parquet {root}", total=total_rows if expression is None else None)
        index = start = 0
        read_columns = list(columns) if columns else None
        if read_columns and key_column and key_column not in read_columns:
            read_columns.append(key_column)
        schema_names = metas[0].schema.to_arrow_schema().names
        fields = _expression_fields(expression) if expression is not None else set()
        filter_columns = [c for c in schema_names if c in fields]
        scan_columns = None if read_columns is None else read_columns + [c for c in filter_columns if c not in read_columns]
        try:
            for file, meta in zip(files, metas, strict=True):
                name = file.relative_to(root).as_posix() if root.is_dir() else file.name
                # Row groups one at a time through ParquetFile (no pre-buffering of whole files): the reader then
                # holds about one row group's decode buffers, which keeps the step near its budget.
                reader = pq.ParquetFile(file, pre_buffer=False)
                offsets = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
                groups = range(meta.num_row_groups)
                if expression is not None:
                    fragment = next(iter(pds.dataset(file, format="parquet").get_fragments()))
                    groups = sorted(rg.id for piece in fragment.split_by_row_group(expression) for rg in piece.row_groups)
                for group in groups:
                    row = int(offsets[group])
                    for record_batch in reader.iter_batches(batch_size=per_batch, row_groups=[group],
                                                            columns=scan_columns, use_threads=True):
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
                        if key_column:
                            keys: Sequence[str] = [str(v) for v in table.column(key_column).to_pylist()]
                        else:
                            keys = RowKeys(f"{name}:", positions)
                        bar.update(table.num_rows, nbytes=table.nbytes)
                        yield Batch(keys, table, BatchMeta(str(root), index, None, total_rows, start, ("load_parquet",)))
                        index, start = index + 1, start + table.num_rows
        finally:
            bar.close()
        recording.dataset(root, role="input", files=files, records=total_rows)

    # --------------------------------------------------------------------- npy
    def load_npy(
        self,
        path: str | Path,
        *,
        batch_size: int | None = None,
        memory_budget: int | str | None = None,
        allow_empty: bool = False,
    ) -> Iterator[Batch]:
        """``.npy`` files (one or a folder), memory-mapped: batches are views of the file, so reading costs
        page cache, not process memory. ``data["array"]`` holds the records (first axis)."""
        root = Path(path)
        files = _files(root, ("*.npy",), True, allow_empty, ".npy")
        arrays = []
        for f in files:
            try:
                arrays.append(np.load(f, mmap_mode="r", allow_pickle=False))
            except (ValueError, OSError) as exc:
                reason = ("it holds Python objects (dtype=object), which blase does not load: loading them could"
                          " run code from the file; save plain numeric arrays") if "pickle" in str(exc) or "Python objects" in str(exc) else _reason(exc)
                raise DataError(f"{f}: not a readable .npy file ({reason}); rewrite it with numpy.save.") from None
        total = sum(len(a) for a in arrays)
        bar = recording.progress(f"load_npy {root}", total=total)
        index = start = 0
        try:
            for file, array in zip(files, arrays, strict=True):
                name = file.relative_to(root).as_posix() if root.is_dir() else file.name
                per_record = array.dtype.itemsize * int(np.prod(array.shape[1:], dtype=np.int64))
                per_batch = self._size(per_record, batch_size, memory_budget)
                for lo in range(0, len(array), per_batch):
                    chunk = array[lo:lo + per_batch]
                    keys = RowKeys(f"{name}:", np.arange(lo, lo + len(chunk)))
                    bar.update(len(chunk), nbytes=chunk.nbytes)
                    yield Batch(keys, {"array": chunk}, BatchMeta(str(root), index, None, total, start, ("load_npy",)))
                    index, start = index + 1, start + len(chunk)
        finally:
            bar.close()
        recording.dataset(root, role="input", files=files, records=total)

    # ------------------------------------------------------------- JSON lines
    def load_jsonl(
        self,
        path: str | Path,
        *,
        key_column: str | None = None,
        batch_size: int | None = None,
        memory_budget: int | str | None = None,
        on_error: str | None = None,
        allow_empty: bool = False,
    ) -> Iterator[Batch]:
        """JSON-lines files: one object per line, streamed as Arrow tables. A line that is not a JSON object
        is a bad record. Keys are ``file:line`` (from 1) or the ``key_column``."""
        import pyarrow as pa

        on_error = _check_on_error(on_error or self.on_error)
        root = Path(path)
        files = _files(root, ("*.jsonl", "*.ndjson"), True, allow_empty, "JSON lines")
        total_bytes = sum(f.stat().st_size for f in files)
        bar = recording.progress(f"load_jsonl {root}", total=total_bytes, unit="bytes")
        index = start = 0
        try:
            for file in files:
                name = file.relative_to(root).as_posix() if root.is_dir() else file.name
                rows: list[dict[str, Any]] = []
                keys: list[str] = []
                bad: list[BadRecord] = []
                per_batch = None
                size_seen = 0
                with open(file, encoding="utf-8") as fh:
                    for number, line in enumerate(fh, start=1):
                        bar.set(min(bar.done + len(line), total_bytes))
                        if not line.strip():
                            continue
                        try:
                            obj = json.loads(line)
                            if not isinstance(obj, dict):
                                raise ValueError(f"a JSON {type(obj).__name__}, not an object")
                        except ValueError as exc:
                            bad.append(self._bad(on_error, file, f"line {number}", str(exc)))
                            continue
                        rows.append(obj)
                        keys.append(str(obj[key_column]) if key_column and key_column in obj else f"{name}:{number}")
                        size_seen += len(line)
                        if per_batch is None and len(rows) >= 64:
                            per_batch = self._size(size_seen / len(rows) * 2, batch_size, memory_budget)
                        if per_batch is not None and len(rows) >= per_batch:
                            yield Batch(keys, pa.Table.from_pylist(rows),
                                        BatchMeta(str(root), index, None, None, start, ("load_jsonl",)), bad)
                            index, start = index + 1, start + len(rows)
                            rows, keys, bad = [], [], []
                if rows or bad:
                    yield Batch(keys, pa.Table.from_pylist(rows) if rows else pa.table({}),
                                BatchMeta(str(root), index, None, None, start, ("load_jsonl",)), bad)
                    index, start = index + 1, start + len(rows)
        finally:
            bar.close()
        recording.dataset(root, role="input", files=files)

    # -------------------------------------------------------------------- audio
    def load_audio(
        self,
        directory: str | Path,
        *,
        recursive: bool = True,
        batch_size: int | None = None,
        memory_budget: int | str | None = None,
        on_error: str | None = None,
        allow_empty: bool = False,
    ) -> Iterator[Batch]:
        """PCM WAV files: ``data["audio"]`` float32 samples in [-1, 1] (``(frames,)`` mono or
        ``(frames, channels)``; an object array when lengths differ), ``data["sample_rate"]``."""
        on_error = _check_on_error(on_error or self.on_error)
        root = Path(directory)
        files = _files(root, ("*.wav",), recursive, allow_empty, "WAV")
        base = root if root.is_dir() else root.parent
        bar = recording.progress(f"load_audio {root}", total=len(files), unit="files")
        keys: list[str] = []
        clips: list[np.ndarray] = []
        rates: list[int] = []
        bad: list[BadRecord] = []
        per_batch = None
        index = start = 0
        try:
            for path in files:
                key = path.relative_to(base).as_posix()
                try:
                    clip, rate = _read_wav(path)
                except (wave.Error, EOFError, ValueError, OSError) as exc:
                    bad.append(self._bad(on_error, path, key, f"not a readable WAV file: {exc}"))
                    bar.update(1)
                    continue
                if per_batch is None:
                    per_batch = self._size(clip.nbytes * 2, batch_size, memory_budget)
                keys.append(key)
                clips.append(clip)
                rates.append(rate)
                bar.update(1, nbytes=clip.nbytes)
                if len(keys) >= per_batch:
                    yield Batch(keys, {"audio": _stack(clips), "sample_rate": np.asarray(rates)},
                                BatchMeta(str(root), index, None, len(files), start, ("load_audio",)), bad)
                    index, start = index + 1, start + len(keys)
                    keys, clips, rates, bad = [], [], [], []
            if keys or bad:
                yield Batch(keys, {"audio": _stack(clips), "sample_rate": np.asarray(rates, dtype=np.int64)},
                            BatchMeta(str(root), index, index + 1, len(files), start, ("load_audio",)), bad)
        finally:
            bar.close()
        recording.dataset(root, role="input", files=files)


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


def _prefetched(batches: Iterator[Batch], depth: int = 1) -> Iterator[Batch]:
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


def _expression_fields(expression: Any) -> set[str]:
    """Column names a filter expression reads (so they are read even when not asked for)."""
    import re

    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", str(expression))  # string literals are values, not columns
    return set(re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\b", text))


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        raw = w.readframes(frames)
    if len(raw) < frames * channels * width:
        raise EOFError(f"file ends after {len(raw)} of {frames * channels * width} bytes of samples")
    if width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        ints = (b[:, 0].astype(np.int32) | (b[:, 1].astype(np.int32) << 8) | (b[:, 2].astype(np.int32) << 16))
        ints = np.where(ints & 0x800000, ints - 0x1000000, ints)
        data = ints.astype(np.float32) / 8388608
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648
    else:
        raise ValueError(f"unsupported sample width {width} bytes")
    if channels > 1:
        data = data.reshape(-1, channels)
    return data, rate

