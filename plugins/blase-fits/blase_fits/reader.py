"""``Extract().load_fits(path, *, window=None, stride=None, hdu=None, ...)``: FITS images as batches.

- ``window=None``: one record per image (every 2-D image HDU of every file, or only ``hdu``); ``data["image"]``
  is a float32 array ``(n, height, width)`` (an object array when sizes differ).
- ``window=128``: cutouts of 128x128 pixels, every ``stride`` pixels (default: ``window``, no overlap), only
  those wholly inside the image. ``data["image"]`` is ``(n, window, window)`` float32, ``data["x"]`` and
  ``data["y"]`` the cutout's centre in pixels (0-based), and ``data["ra"]``/``data["dec"]`` (degrees) when the
  header has a celestial WCS. Keys are ``file:hdu:y:x`` (the cutout's corner).

The file is memory-mapped (astropy ``memmap=True``), so a mosaic larger than memory is read a batch of cutouts
at a time: batches are sized by the memory budget like every reader's. A file that is not FITS, or an HDU that
cannot be read, is a bad record (``on_error="skip"``, the default) or stops the step (``"fail"``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blase_tui.plugin import Batch, BatchMeta, reason, recording
from blase_tui.plugin import files as find_files

if TYPE_CHECKING:
    from blase_tui import Extract

PATTERNS = ("*.fits", "*.fit", "*.fts", "*.fits.gz")


def load(extract: Extract, path: str | Path, *, window: int | None = None, stride: int | None = None,
         hdu: int | str | None = None, recursive: bool = True, batch_size: int | None = None,
         memory_budget: int | str | None = None, on_error: str | None = None,
         allow_empty: bool = False) -> Iterator[Batch]:
    from astropy.io import fits

    if window is not None and (not isinstance(window, int) or window < 1):
        raise ValueError(f"window must be a positive number of pixels, not {window!r}.")
    step = stride or window
    if step is not None and step < 1:
        raise ValueError(f"stride must be a positive number of pixels, not {stride!r}.")
    on_error = on_error or extract.on_error
    root = Path(path)
    files = find_files(root, PATTERNS, recursive, allow_empty, "FITS")
    per_record = 4 * (window * window if window else 1)
    bar = recording.progress(f"load_fits {root}", total=None, unit="cutouts" if window else "images")
    pending: list[tuple[str, np.ndarray, dict[str, Any]]] = []
    index = start = 0

    def flush() -> Batch:
        nonlocal index, start, pending
        keys = [k for k, _, _ in pending]
        images = [img for _, img, _ in pending]
        same = len({im.shape for im in images}) == 1
        stack = np.stack(images) if same else _objects(images)
        data: dict[str, Any] = {"image": stack}
        for column in pending[0][2]:
            data[column] = np.asarray([extra.get(column) for _, _, extra in pending])
        batch = Batch(keys, data, BatchMeta(str(root), index, None, None, start, ("load_fits",)))
        bar.update(len(keys), nbytes=sum(im.nbytes for im in images))
        index, start, pending = index + 1, start + len(keys), []
        return batch

    try:
        for file in files:
            name = file.relative_to(root).as_posix() if root.is_dir() else file.name
            try:
                hdul = fits.open(file, memmap=True, lazy_load_hdus=True)
                hdul.verify("silentfix")
            except Exception as exc:  # not FITS, truncated, ...
                extract._bad(on_error, file, "file", f"not a readable FITS file ({reason(exc)})")
                continue
            with hdul:
                for number, item in _image_hdus(hdul, hdu, extract, on_error, file):
                    try:
                        data = item.data
                    except Exception as exc:
                        extract._bad(on_error, file, f"hdu {number}", f"its data cannot be read ({reason(exc)})")
                        continue
                    if window is None:
                        per_batch = extract._size(4 * data.size, batch_size, memory_budget)
                        pending.append((f"{name}:{number}", np.asarray(data, dtype=np.float32), {}))
                        if len(pending) >= per_batch:
                            yield flush()
                        continue
                    per_batch = extract._size(per_record, batch_size, memory_budget)
                    sky = _sky(item.header)
                    height, width = data.shape
                    for y in range(0, height - window + 1, step):  # type: ignore[operator]
                        for x in range(0, width - window + 1, step):  # type: ignore[operator]
                            cut = np.array(data[y:y + window, x:x + window], dtype=np.float32)
                            cx, cy = x + (window - 1) / 2, y + (window - 1) / 2
                            extra: dict[str, Any] = {"x": cx, "y": cy, "file": name}
                            if sky is not None:
                                ra, dec = sky(cx, cy)
                                extra.update(ra=float(ra), dec=float(dec))
                            pending.append((f"{name}:{number}:{y}:{x}", cut, extra))
                            if len(pending) >= per_batch:
                                yield flush()
        if pending:
            yield flush()
    finally:
        bar.close()
    recording.dataset(root, role="input", records=start)


def _image_hdus(hdul: Any, wanted: int | str | None, extract: Extract, on_error: str, file: Path
                ) -> Iterator[tuple[int, Any]]:
    """The 2-D image HDUs (primary or extensions), or only ``wanted`` (an index or EXTNAME)."""
    from astropy.io.fits import CompImageHDU, ImageHDU, PrimaryHDU

    for number, item in enumerate(hdul):
        if wanted is not None and wanted not in (number, item.name):
            continue
        if not isinstance(item, PrimaryHDU | ImageHDU | CompImageHDU):
            continue
        shape = tuple(item.shape or ())
        if len(shape) == 0:
            continue  # a header-only primary HDU (data in the extensions)
        if len(shape) != 2:
            extract._bad(on_error, file, f"hdu {number}", f"an image of {len(shape)} axes {shape}; blase reads 2-D"
                         " images (pick a plane with hdu= or split the cube)")
            continue
        yield number, item


def _sky(header: Any) -> Any:
    """A function (x, y) -> (ra, dec) in degrees when ``header`` has a celestial WCS, else None."""
    import warnings

    from astropy.wcs import WCS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            wcs = WCS(header)
        except Exception:
            return None
    if not wcs.has_celestial:
        return None
    celestial = wcs.celestial
    return lambda x, y: celestial.wcs_pix2world([[x, y]], 0)[0]


def _objects(images: list[np.ndarray]) -> np.ndarray:
    out = np.empty(len(images), dtype=object)
    for i, image in enumerate(images):
        out[i] = image
    return out
