"""PNG and JPEG files, one record each: ``image`` (uint8 pixels) and ``label`` (the folder it sits in)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blase_tui.modules import recording
from blase_tui.modules.batch import Batch
from blase_tui.modules.readers.common import Bad, Record, batches, check_on_error, files, reason, stack

if TYPE_CHECKING:
    from blase_tui.modules.extract import Extract

PATTERNS = ("*.png", "*.jpg", "*.jpeg")


class TooLarge(ValueError):
    """An image whose decoded pixels alone would take more than the memory budget, known from its header."""


def decode(path: Path, mode: str | None = None, size: tuple[int, int] | None = None,
           budget: int | None = None) -> np.ndarray:
    """The pixels of the image at ``path``; with ``budget`` (bytes), an image whose header says that decoding it
    takes more is refused (:class:`TooLarge`) before a pixel is decoded."""
    from PIL import Image

    raw = path.read_bytes()
    with Image.open(io.BytesIO(raw)) as img:
        if budget is not None:
            need = decoded_bytes(img.size, img.mode) + (decoded_bytes(img.size, mode) if mode and mode != img.mode
                                                        else 0)
            if need > budget:
                width, height = img.size
                raise TooLarge(f"decoding its {width}x{height} pixels takes {need / 2**20:,.0f} MiB, more than the"
                               f" memory budget of {budget / 2**20:,.0f} MiB: raise memory_budget, the reader's or"
                               " the step's in blase.toml, or shrink the image")
        img.load()
        if mode:
            img = img.convert(mode)
        if size:
            img = img.resize(size)
        return np.asarray(img)


def decoded_bytes(size: tuple[int, int], mode: str) -> int:
    """The bytes of an image of ``size`` in ``mode`` as an array (Pillow's own buffers are as large or larger)."""
    from PIL import ImageMode

    try:
        described = ImageMode.getmode(mode)
        per_pixel = len(described.bands) * np.dtype(described.typestr).itemsize
    except (KeyError, TypeError, ValueError):  # a mode Pillow reads but does not describe: its widest pixels
        per_pixel = 4
    return size[0] * size[1] * per_pixel


def why(exc: BaseException) -> str:
    from PIL import Image, UnidentifiedImageError

    if isinstance(exc, TooLarge):
        return str(exc)

    if isinstance(exc, Image.DecompressionBombError):
        claimed = re.search(r"\((\d+) pixels\)", str(exc))
        return ((f"its header claims {int(claimed.group(1)):,} pixels" if claimed
                 else "its header claims too many pixels")
                + ", over Pillow's safety limit (a damaged or hostile file; raise PIL.Image.MAX_IMAGE_PIXELS"
                " only if the image is real)")
    if isinstance(exc, UnidentifiedImageError):
        return "not an image Pillow can read (not PNG/JPEG, or damaged)"
    return f"not a readable image: {reason(exc)}"


def _errors() -> tuple[type[BaseException], ...]:
    from PIL import Image, UnidentifiedImageError

    return (Image.DecompressionBombError, UnidentifiedImageError, OSError, ValueError, SyntaxError)


def _columns(values: list[tuple[Any, ...]]) -> dict[str, np.ndarray]:
    return {"image": stack([v[0] for v in values]), "label": np.asarray([v[1] for v in values])}


@dataclass(frozen=True)
class Plan:
    """The image files of a read, in order, and how many go in a batch: batch ``i`` is files
    ``[i * per_batch, (i + 1) * per_batch)`` (bad ones count, so a damaged file never moves the later batches),
    which an executor's worker reads on its own (``read_chunk``)."""

    root: Path
    base: Path
    files: list[Path]
    per_batch: int
    mode: str | None
    size: tuple[int, int] | None
    on_error: str
    total: int | None = None  # the files' count, where the list is left out (``settings``)
    budget: int | None = None  # an image whose decoded pixels take more (bytes) is a bad record, not decoded

    def chunks(self) -> list[tuple[int, list[Path]]]:
        n = self.per_batch
        return [(i // n, self.files[i:i + n]) for i in range(0, len(self.files), n)]

    def settings(self) -> Plan:
        """The plan without its list of files (what a worker needs to read a chunk it is given)."""
        return replace(self, files=[], total=len(self.files))


def plan(extract: Extract, directory: str | Path, *, patterns: Sequence[str] = PATTERNS, recursive: bool = True,
         mode: str | None = None, size: tuple[int, int] | None = None, batch_size: int | None = None,
         memory_budget: int | str | None = None, on_error: str | None = None, allow_empty: bool = False) -> Plan:
    """The files and the batch size, from the first image that decodes (as ``load`` sizes its batches)."""
    on_error = check_on_error(on_error or extract.on_error)
    root = Path(directory)
    found = files(root, patterns, recursive, allow_empty, "image")
    base = root if root.is_dir() else root.parent
    per_batch = len(found) or 1  # no image decodes: all in one batch of bad records
    budget = _budget(extract, memory_budget)
    for path in found:
        try:
            image = decode(path, mode, size, budget)
        except _errors():
            continue
        per_batch = extract._size(image.nbytes + 200, batch_size, memory_budget)
        break
    return Plan(root, base, found, per_batch, mode, size, on_error, budget=budget)


def _budget(extract: Extract, memory_budget: int | str | None) -> int:
    """The whole memory budget of the read (not a batch's share): no image may decode to more."""
    from blase_tui.modules.budget import resolve_budget

    return resolve_budget(memory_budget) if memory_budget is not None else extract.memory_budget


def _items(plan: Plan, paths: Sequence[Path], bar: Any = None) -> Iterator[Any]:
    for path in paths:
        key = path.relative_to(plan.base).as_posix()
        try:
            image = decode(path, plan.mode, plan.size, plan.budget)
        except _errors() as exc:
            if bar is not None:
                bar.update(1)
            yield Bad(path, key, why(exc))
            continue
        parent = path.parent.relative_to(plan.base).as_posix()
        if bar is not None:
            bar.update(1, nbytes=image.nbytes)
        yield Record(key, (image, "" if parent == "." else parent), image.nbytes + 200)


def read_chunk(extract: Extract, plan: Plan, index: int, paths: Sequence[Path]) -> Iterator[Batch]:
    """Batch ``index`` of the plan (nothing when all its files are bad: they are reported all the same)."""
    total = plan.total if plan.total is not None else len(plan.files)
    for batch in batches(extract, _items(plan, paths), root=plan.root, reader="load_images", columns=_columns,
                         on_error=plan.on_error, batch_size=len(paths), memory_budget=None, total=total,
                         bad_only_batches=False, count_bad=True):
        if len(batch):
            yield replace(batch, meta=replace(batch.meta, index=index, start=index * plan.per_batch,
                                              total_batches=-(-total // plan.per_batch)))


def load(extract: Extract, directory: str | Path, *, patterns: Sequence[str] = PATTERNS, recursive: bool = True,
         mode: str | None = None, size: tuple[int, int] | None = None, batch_size: int | None = None,
         memory_budget: int | str | None = None, on_error: str | None = None,
         allow_empty: bool = False) -> Iterator[Batch]:
    recording.params("load_images", **{"load_images.directory": directory},
                     **({"load_images.size": size} if size else {}))
    on_error = check_on_error(on_error or extract.on_error)
    root = Path(directory)
    found = files(root, patterns, recursive, allow_empty, "image")
    base = root if root.is_dir() else root.parent
    bar = recording.progress(f"load_images {root}", total=len(found), unit="images")
    reading = Plan(root, base, found, 0, mode, size, on_error, budget=_budget(extract, memory_budget))
    before = len(extract.bad_records)
    try:
        yield from batches(extract, _items(reading, found, bar), root=root, reader="load_images", columns=_columns,
                           on_error=on_error, batch_size=batch_size, memory_budget=memory_budget, total=len(found),
                           bad_only_batches=False, count_bad=True)
    finally:
        bar.close()
    recording.dataset(root, role="input", records=len(found) - (len(extract.bad_records) - before))
