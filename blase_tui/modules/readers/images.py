"""PNG and JPEG files, one record each: ``image`` (uint8 pixels) and ``label`` (the folder it sits in)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blase_tui.modules import recording
from blase_tui.modules.batch import Batch
from blase_tui.modules.readers.common import Bad, Record, batches, check_on_error, files, reason, stack

if TYPE_CHECKING:
    from blase_tui.modules.extract import Extract

PATTERNS = ("*.png", "*.jpg", "*.jpeg")


def load(extract: Extract, directory: str | Path, *, patterns: Sequence[str] = PATTERNS, recursive: bool = True,
         mode: str | None = None, size: tuple[int, int] | None = None, batch_size: int | None = None,
         memory_budget: int | str | None = None, on_error: str | None = None,
         allow_empty: bool = False) -> Iterator[Batch]:
    from PIL import Image, UnidentifiedImageError

    recording.params("load_images", **{"load_images.directory": directory},
                     **({"load_images.size": size} if size else {}))
    on_error = check_on_error(on_error or extract.on_error)
    root = Path(directory)
    found = files(root, patterns, recursive, allow_empty, "image")
    base = root if root.is_dir() else root.parent
    bar = recording.progress(f"load_images {root}", total=len(found), unit="images")
    n_bad = [0]

    def decode(path: Path) -> np.ndarray:
        raw = path.read_bytes()
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            if mode:
                img = img.convert(mode)
            if size:
                img = img.resize(size)
            return np.asarray(img)

    def why(exc: BaseException) -> str:
        if isinstance(exc, Image.DecompressionBombError):
            claimed = re.search(r"\((\d+) pixels\)", str(exc))
            return ((f"its header claims {int(claimed.group(1)):,} pixels" if claimed
                     else "its header claims too many pixels")
                    + ", over Pillow's safety limit (a damaged or hostile file; raise PIL.Image.MAX_IMAGE_PIXELS"
                    " only if the image is real)")
        if isinstance(exc, UnidentifiedImageError):
            return "not an image Pillow can read (not PNG/JPEG, or damaged)"
        return f"not a readable image: {reason(exc)}"

    def items() -> Iterator[Any]:
        for path in found:
            key = path.relative_to(base).as_posix()
            try:
                image = decode(path)
            except (Image.DecompressionBombError, UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
                n_bad[0] += 1
                bar.update(1)
                yield Bad(path, key, why(exc))
                continue
            parent = path.parent.relative_to(base).as_posix()
            bar.update(1, nbytes=image.nbytes)
            yield Record(key, (image, "" if parent == "." else parent), image.nbytes + 200)

    def columns(values: list[tuple[Any, ...]]) -> dict[str, np.ndarray]:
        return {"image": stack([v[0] for v in values]), "label": np.asarray([v[1] for v in values])}

    try:
        yield from batches(extract, items(), root=root, reader="load_images", columns=columns, on_error=on_error,
                           batch_size=batch_size, memory_budget=memory_budget, total=len(found),
                           bad_only_batches=False)
    finally:
        bar.close()
    recording.dataset(root, role="input", files=found, records=len(found) - n_bad[0])
