"""What every reader shares: finding the files, the one-line errors, and the record loop that turns decoded
records and bad ones into batches sized by the memory budget.

A per-record reader (images, audio, JSON lines, JSON) is a generator of :class:`Record` (a decoded record),
:class:`Bad` (one that could not be read, with the reason) and :data:`FILE_END` (its batches do not continue
into the next file); :func:`batches` does the rest, the same way for all of them: bad records go through
``Extract._bad`` (skipped and reported, or a :class:`DataError` with ``on_error="fail"``), the batch size comes
from the first records' sizes (or ``batch_size``), and each batch carries the bad records met since the previous
one. A file whose records were all bad is said on the console (:class:`Tally`; CSV, which has its own loop, uses
it too).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from blase_tui.errors import BlaseError
from blase_tui.modules import recording
from blase_tui.modules.batch import BadRecord, Batch, BatchMeta

if TYPE_CHECKING:
    from blase_tui.modules.extract import Extract

ON_ERROR = ("skip", "fail")


class DataError(BlaseError):
    """A record that cannot be read, with ``on_error="fail"``."""


def check_on_error(value: str) -> str:
    if value not in ON_ERROR:
        raise ValueError(f"on_error must be 'skip' or 'fail', not {value!r}")
    return value


class RemoteRoot:
    """A dataset behind a URL (``s3://bucket/data/``), standing in for the ``Path`` a reader is given: the
    readers list, name, size and open its objects through it (``store/remote.py``)."""

    def __init__(self, url: str) -> None:
        from blase_tui.store import remote

        self.url = url.rstrip("/") if not url.endswith("://") else url
        self.fs, self.path = remote.filesystem(url)
        self.path = self.path.rstrip("/")
        self._is_file: bool | None = None

    def __str__(self) -> str:
        return self.url

    def exists(self) -> bool:
        return bool(self._ask(self.fs.exists, self.path))

    def is_dir(self) -> bool:
        return not self.is_file()

    def is_file(self) -> bool:
        if self._is_file is None:  # asked for every batch's names: one request
            self._is_file = bool(self._ask(self.fs.isfile, self.path))
        return self._is_file

    def find(self) -> list[str]:
        return list(self._ask(self.fs.find, self.path))

    def _ask(self, call: Any, *args: Any) -> Any:
        """A request to the server; what the cloud SDK raises (no credentials, a refused connection, a
        forbidden bucket) is one line naming the URL, not a traceback."""
        from blase_tui.store.remote import unreachable

        try:
            return call(*args)
        except Exception as exc:  # noqa: BLE001 - botocore, aiohttp, google-auth each raise their own
            raise unreachable(self.url, exc) from None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


class RemoteFile:
    """One object of a :class:`RemoteRoot`: what readers use of a ``Path`` (name, size, its name under the
    root) and ``open()`` for pyarrow and the JSON readers."""

    def __init__(self, root: RemoteRoot, path: str) -> None:
        self.root, self.path = root, path

    def __str__(self) -> str:
        scheme = self.root.url.split("://", 1)[0]
        return f"{scheme}://{self.path}"

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def relative_to(self, root: Any) -> PurePosixPath:
        return PurePosixPath(self.path[len(self.root.path):].lstrip("/") or self.name)

    def stat(self) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(st_size=int(self.root.fs.info(self.path).get("size") or 0))

    def open(self, mode: str = "rb") -> Any:
        return self.root.fs.open(self.path, mode)


def as_root(path: str | Path) -> Any:
    """``Path(path)``, or a :class:`RemoteRoot` for a URL (``Path`` would turn ``s3://b/x`` into ``s3:/b/x``)."""
    from blase_tui.store import remote

    return RemoteRoot(path) if remote.is_url(path) else Path(path)


def source(file: Any) -> Any:
    """What pyarrow opens: a local file's path, or a remote object's open file."""
    return file.open() if isinstance(file, RemoteFile) else file


def open_binary(file: Any) -> Any:
    return file.open("rb") if isinstance(file, RemoteFile) else open(file, "rb")


def missing(path: Path) -> BlaseError:
    return BlaseError(f"{path} does not exist; check the path (it is relative to the project folder).")


def files(path: Path, patterns: Sequence[str], recursive: bool, allow_empty: bool, what: str) -> list[Path]:
    """The files under ``path`` (or ``path`` itself) matching ``patterns`` in either case, sorted (a
    :class:`RemoteRoot`'s objects as :class:`RemoteFile`)."""
    if isinstance(path, RemoteRoot):
        from blase_tui.store import remote

        if not path.exists():
            raise BlaseError(f"{path} does not exist; check the URL (and the credentials for it).")
        objects = remote.listing(path.fs, path.path, path.url, patterns, what, allow_empty)
        return [RemoteFile(path, p) for p in objects]  # type: ignore[misc]
    if not path.exists():
        raise missing(path)
    if path.is_file():
        return [path]
    found: set[Path] = set()
    for pattern in patterns:
        for variant in (pattern, pattern.upper()):
            found.update(p for p in (path.rglob(variant) if recursive else path.glob(variant)) if p.is_file())
    out = sorted(p for p in found if not p.name.startswith("."))
    if not out and not allow_empty:
        raise BlaseError(
            f"no {what} files ({', '.join(patterns)}) in {path}; put data there, fix the path, or pass allow_empty=True."
        )
    return out


def reason(exc: BaseException) -> str:
    """An exception as a reason a person can read: its first line, without the in-memory buffers some
    libraries name (``<_io.BytesIO object at 0x...>``)."""
    text = str(exc).split("\n")[0] or type(exc).__name__
    return re.sub(r"<_io\.\w+ object at 0x[0-9a-f]+>", "the file", text)


def stack(arrays: list[np.ndarray]) -> np.ndarray:
    """One array of the records when they share a shape and dtype, else an object array of them."""
    if arrays and all(a.shape == arrays[0].shape and a.dtype == arrays[0].dtype for a in arrays):
        return np.stack(arrays)
    out = np.empty(len(arrays), dtype=object)
    for i, a in enumerate(arrays):
        out[i] = a
    return out


# ----------------------------------------------------------------------------------- the record loop
@dataclass(frozen=True)
class Record:
    """A decoded record: its key, its values (one per column, in the reader's column order) and about how
    many bytes it takes in a batch."""

    key: str
    values: tuple[Any, ...]
    nbytes: float


@dataclass(frozen=True)
class Bad:
    """A record that could not be read: the file, how to name the record, and why."""

    source: Path
    record: str
    reason: str


FILE_END = object()  # yielded by a reader whose batches must not continue into the next file


class Tally:
    """The good and bad records of one file (of one call, for the readers of one record per file), so that a
    file whose every record was bad is said on the console: a JSON array read as JSON lines, or a CSV file with
    the wrong delimiter, otherwise reads as nothing while the step succeeds."""

    def __init__(self, extract: Extract, reader: str, root: Path) -> None:
        self.extract, self.reader, self.root = extract, reader, root
        self.good = self.bad = 0
        self.first: BadRecord | None = None
        self.one_source = True

    def add_bad(self, record: BadRecord) -> None:
        if self.first is None:
            self.first = record
        elif record.source != self.first.source:
            self.one_source = False
        self.bad += 1

    def close(self) -> None:
        """Say so when every record since the last close was bad; then count afresh."""
        if self.first is not None and not self.good and self.extract._report:
            what = self.first.source if self.one_source else self.root
            recording.all_bad(f"{self.reader} {what}", self.bad, self.first)
        self.good = self.bad = 0
        self.first = None
        self.one_source = True


def batches(
    extract: Extract,
    items: Iterable[Any],
    *,
    root: Path,
    reader: str,
    columns: Callable[[list[tuple[Any, ...]]], Any],
    on_error: str,
    batch_size: int | None,
    memory_budget: int | str | None,
    total: int | None = None,
    sample: int = 1,
    bad_only_batches: bool = True,
    count_bad: bool = False,
) -> Iterator[Batch]:
    """Batches of the :class:`Record` items, with the :class:`Bad` ones reported through ``extract._bad``.
    ``columns`` turns a batch's value tuples into its data; the batch size comes from the mean size of the
    first ``sample`` records (or ``batch_size``). A batch holding only bad records is yielded when
    ``bad_only_batches`` (else only when nothing else was), so that callers see them. With ``count_bad``, bad
    records take their place in a batch as good ones do: batch boundaries then depend on the items alone, not on
    which of them can be read (what lets an executor's workers read the batches apart, ``partitions``). When
    every record between two :data:`FILE_END` (or of the whole call) was bad, a line on the console says so."""
    tally = Tally(extract, reader, root)
    keys: list[str] = []
    values: list[tuple[Any, ...]] = []
    bad: list[BadRecord] = []
    sizes: list[float] = []
    # a batch size given in records needs no sample: else the first batch would hold `sample` records whatever
    # was asked
    per_batch = extract._size(0, batch_size, memory_budget) if batch_size or extract.batch_size else None
    index = start = 0
    slots = 0  # records in this batch, bad ones included with count_bad

    def emit(last: bool) -> Batch:
        meta = BatchMeta(str(root), index, index + 1 if last else None, total, start, (reader,))
        return Batch(keys, columns(values), meta, bad)

    for item in items:
        if isinstance(item, Bad):
            bad.append(extract._bad(on_error, item.source, item.record, item.reason))
            tally.add_bad(bad[-1])
            if count_bad:
                slots += 1
                if per_batch is not None and slots >= per_batch:
                    if keys or bad_only_batches:
                        yield emit(False)
                        index, start = index + 1, start + len(keys)
                    keys, values, bad, slots = [], [], [], 0
            continue
        if item is FILE_END:
            tally.close()
            if keys or bad:
                yield emit(False)
                index, start = index + 1, start + len(keys)
                keys, values, bad, slots = [], [], [], 0
            continue
        keys.append(item.key)
        values.append(item.values)
        tally.good += 1
        slots += 1
        if per_batch is None:
            sizes.append(item.nbytes)
            if len(sizes) >= sample:
                per_batch = extract._size(sum(sizes) / len(sizes), batch_size, memory_budget)
        if per_batch is not None and (slots if count_bad else len(keys)) >= per_batch:
            yield emit(False)
            index, start = index + 1, start + len(keys)
            keys, values, bad, slots = [], [], [], 0
    tally.close()
    if keys or (bad and (bad_only_batches or index == 0)):
        yield emit(True)
