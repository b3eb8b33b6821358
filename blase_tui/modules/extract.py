"""``Extract``: stream records from disk in batches sized by the memory budget.

>>> extractor = Extract()
>>> for batch in extractor.load_images(directory="data/raw/images"):
...     print(len(batch), batch["image"].shape)

The readers themselves live in ``modules/readers/`` (one file per format); the per-record ones (images, audio,
JSON lines, JSON) share one record loop (``readers/common.py``), so bad records are handled in one place.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from blase_tui.modules import recording
from blase_tui.modules.batch import BadRecord, Batch
from blase_tui.modules.budget import records_per_batch, resolve_budget
from blase_tui.modules.readers.common import ON_ERROR, DataError, check_on_error
from blase_tui.modules.readers.images import PATTERNS as IMAGE_PATTERNS

__all__ = ["Extract", "DataError", "IMAGE_PATTERNS", "ON_ERROR"]


class Extract:
    """Readers for images, CSV, Parquet, ``.npy``, JSON lines, JSON and WAV audio.

    Under an executor (``blase step --executor dask``), ``load_parquet`` and ``load_images`` yield deferred
    batches that the executor's workers read, transform and write (``partitions``, docs/scaling.md).

    Every reader yields :class:`Batch` objects whose size comes from ``memory_budget`` (bytes; default: the
    step's budget from ``blase.toml``, outside a step the working directory's project's, else the default:
    ``budget.resolve_budget``) through ``budget.records_per_batch``, unless ``batch_size`` (records) is given.
    Bad records are skipped and listed in the step's ``bad_records.jsonl`` with ``on_error="skip"`` (the
    default), or stop the step with a message naming the file and record with ``on_error="fail"``.
    ``bad_records`` holds those skipped so far. A file whose every record was bad is also said in one line on
    the console.
    """

    def __init__(self, memory_budget: int | str | None = None, batch_size: int | None = None,
                 on_error: str = "skip") -> None:
        self.memory_budget = resolve_budget(memory_budget)
        self._budget_given = memory_budget is not None
        self.batch_size = batch_size
        self.on_error = check_on_error(on_error)
        self.bad_records: list[BadRecord] = []
        self._report = True  # False where another process reports them (an executor's worker)

    # ------------------------------------------------------------------ helpers
    def _size(self, bytes_per_record: float, batch_size: int | None, memory_budget: int | str | None) -> int:
        """Records per batch: ``batch_size`` (the call's, else this Extract's), else what a batch's share of the
        budget (the call's, else this Extract's) holds. Every reader sizes its batches here."""
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
        if self._report:
            recording.bad_record(bad)
        return bad

    def _executor(self) -> Any:
        """The step's executor when its workers should read this call's batches (``partitions``): not for a
        module's own reads (``recording.internal``), nor when the executor cannot take single tasks."""
        if recording.is_internal():
            return None
        executor = recording.executor()
        return executor if executor is not None and hasattr(executor, "submit") else None

    def __getattr__(self, name: str) -> Any:
        """``load_NAME`` of a reader plugin (entry point group ``blase.readers``, docs/plugins.md): called as
        the built-in readers are, with this Extract's budget and bad-record handling."""
        if name.startswith("load_") and len(name) > 5:
            import functools

            from blase_tui.core import plugins

            reader = plugins.load("readers", name[5:], what=f"Extract.{name}")
            return functools.partial(reader, self)
        raise AttributeError(f"'Extract' object has no attribute {name!r}")

    # ------------------------------------------------------------------ readers
    def load(self, path: str | Path, **options: Any) -> Iterator[Batch]:
        """Any dataset blase reads, by what ``path`` holds: a ``.csv``/``.tsv``, ``.parquet``, ``.jsonl``,
        ``.json`` or ``.npy`` file, or a folder of one of those (or of PNG/JPEG images, or of WAV files), read by
        the matching ``load_*`` with ``options``. Anything else is a one-line error naming the formats."""
        reader = reader_for(path)
        if reader == "load_csv" and str(path).lower().endswith(".tsv") and "delimiter" not in options:
            options["delimiter"] = "\t"
        return getattr(self, reader)(path, **options)

    def load_images(self, directory: str | Path, **options: Any) -> Iterator[Batch]:
        """PNG/JPEG files under ``directory``. Keys are paths relative to it; ``data["image"]`` is a uint8 array
        ``(n, height, width[, channels])`` (an object array when sizes differ; ``size=(w, h)`` resizes) and
        ``data["label"]`` the name of each file's folder relative to ``directory`` ("" at the top).
        Options: ``patterns``, ``recursive``, ``mode`` (e.g. "L", "RGB"), ``size``, ``batch_size``,
        ``memory_budget``, ``on_error``, ``allow_empty``. A file that is not an image, or whose header claims
        more pixels than Pillow's safety limit, is a bad record."""
        from blase_tui.modules.readers import images

        executor = self._executor()
        if executor is not None:
            from blase_tui.modules import partitions

            recording.params("load_images", **{"load_images.directory": directory},
                             **({"load_images.size": options["size"]} if options.get("size") else {}))
            return partitions.image_batches(self, executor, directory, **options)
        return images.load(self, directory, **options)

    def load_csv(self, path: str | Path, **options: Any) -> Iterator[Batch]:
        """CSV files (one file or a folder of ``*.csv``), streamed as Arrow tables. A row with the wrong
        number of fields is a bad record; keys are ``file:row`` (data rows from 0) or the ``key_column``.
        Options: ``columns``, ``key_column``, ``delimiter``, ``column_types``, ``encoding`` (default UTF-8:
        a row whose text is not valid UTF-8 is a bad record naming its column), ``batch_size``,
        ``memory_budget``, ``on_error``, ``allow_empty``."""
        from blase_tui.modules.readers import csv

        return csv.load(self, path, **options)

    def load_parquet(self, path: str | Path, **options: Any) -> Iterator[Batch]:
        """Parquet files (one file or a folder), streamed as Arrow tables with only ``columns`` read and
        ``filters`` (a ``pyarrow.compute`` expression or DNF list like ``[("mag", ">", 19.5)]``) pushed down to
        the row groups. Keys are ``file:row`` or the ``key_column``. Options: ``columns``, ``filters``,
        ``key_column``, ``batch_size``, ``memory_budget``, ``allow_empty``, ``prefetch`` (default True: the
        next batch is decoded while the caller works on this one; one extra batch of memory)."""
        from blase_tui.modules.readers import parquet

        prefetch = options.pop("prefetch", True)
        executor = self._executor()
        if executor is not None:
            from blase_tui.modules import partitions

            return partitions.parquet_batches(self, executor, path, **options)
        batches = parquet.load(self, path, **options)
        return parquet.prefetched(batches) if prefetch else batches

    def load_npy(self, path: str | Path, **options: Any) -> Iterator[Batch]:
        """``.npy`` files (one or a folder), memory-mapped: batches are views of the file, so reading costs
        page cache, not process memory. ``data["array"]`` holds the records (first axis). Options:
        ``batch_size``, ``memory_budget``, ``allow_empty``."""
        from blase_tui.modules.readers import npy

        return npy.load(self, path, **options)

    def load_jsonl(self, path: str | Path, **options: Any) -> Iterator[Batch]:
        """JSON-lines files: one object per line, streamed as Arrow tables. A line that is not a JSON object
        (or not UTF-8) is a bad record; a file that is one JSON array is an error (``load_json`` reads it).
        Keys are ``file:line`` (from 1) or the ``key_column``. Options: ``key_column``, ``batch_size``,
        ``memory_budget``, ``on_error``, ``allow_empty``."""
        from blase_tui.modules.readers import jsonl

        return jsonl.load(self, path, **options)

    def load_json(self, path: str | Path, **options: Any) -> Iterator[Batch]:
        """JSON files (one file or a folder of ``*.json``) holding a top-level array of objects, streamed
        element by element (a file larger than memory reads in batches), as Arrow tables; a file holding one
        object is one record. An element that is not an object is a bad record; so is the rest of a file from
        where its JSON breaks (truncated, malformed), named by the element. Keys are ``file:index`` (elements
        from 0; a one-object file's path) or the ``key_column``. Options: ``key_column``, ``batch_size``,
        ``memory_budget``, ``on_error``, ``allow_empty``."""
        from blase_tui.modules.readers import json

        return json.load(self, path, **options)

    def load_audio(self, directory: str | Path, **options: Any) -> Iterator[Batch]:
        """PCM WAV files: ``data["audio"]`` float32 samples in [-1, 1] (``(frames,)`` mono or
        ``(frames, channels)``; an object array when lengths differ), ``data["sample_rate"]``. Options:
        ``recursive``, ``batch_size``, ``memory_budget``, ``on_error``, ``allow_empty``."""
        from blase_tui.modules.readers import audio

        return audio.load(self, directory, **options)


READERS = {".csv": "load_csv", ".tsv": "load_csv", ".parquet": "load_parquet", ".pq": "load_parquet",
           ".jsonl": "load_jsonl", ".ndjson": "load_jsonl", ".json": "load_json", ".npy": "load_npy",
           ".png": "load_images", ".jpg": "load_images", ".jpeg": "load_images", ".wav": "load_audio"}


def reader_for(path: Path | str) -> str:
    """The ``Extract`` reader for a file (by its suffix) or a folder (by the suffix most of its files have); a
    URL (``s3://bucket/data/``) by its object's suffix, or by the suffix most objects under it have."""
    from blase_tui.modules.readers.common import RemoteRoot
    from blase_tui.store.remote import is_url

    if is_url(str(path)):
        root = RemoteRoot(str(path))
        names = [root.name] if root.is_file() else [p.rsplit("/", 1)[-1] for p in root.find()]
        counted = Counter(READERS[s] for s in (Path(n).suffix.lower() for n in names) if s in READERS)
        if not names:
            raise DataError(f"{path}: nothing is there, or the server cannot be reached; check the URL and the"
                            " network.")
        if not counted or counted.most_common(1)[0][0] in ("load_images", "load_audio"):
            raise DataError(f"{path}: blase reads .csv, .tsv, .parquet, .jsonl, .json and .npy objects behind a URL;"
                            " none is there.")
        return counted.most_common(1)[0][0]
    path = Path(path)
    if path.is_file():
        reader = READERS.get(path.suffix.lower())
        if reader is None or reader in ("load_images", "load_audio"):
            raise DataError(f"{path}: blase reads .csv, .tsv, .parquet, .jsonl, .json and .npy files, and folders of"
                            " those, of images or of WAV files; convert it, or read it in a step of your own.")
        return reader
    if not path.is_dir():
        raise DataError(f"{path} does not exist; give a dataset file or folder.")
    found = Counter(READERS[f.suffix.lower()] for f in path.rglob("*") if f.suffix.lower() in READERS
                    and f.is_file())
    if not found:
        raise DataError(f"{path} holds no file blase reads ({', '.join(sorted(READERS))}).")
    return found.most_common(1)[0][0]
