"""NumPy arrays (``.npy`` memory-mapped, ``.npz`` from member headers): statistics over a bounded, chunked
read, label counts, and the first record drawn when the array is a stack of images."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from blase_tui.core.fmt import fmt_value
from blase_tui.render.common import NPY_CHUNK_BYTES, NPY_STATS_BYTES, header, message, more_note
from blase_tui.render.image import render_array_image

if TYPE_CHECKING:
    import numpy as np


def npy_file(path: Path, width: int, max_rows: int) -> RenderableType:
    """Shape, dtype, statistics over a memory map (chunked, at most NPY_STATS_BYTES), a sample, and the
    first record drawn as an image when the array looks like a stack of images."""
    import numpy as np

    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc) or "Python objects" in str(exc):
            shape, dtype = _npy_header(path)
            return Group(header(path, "array", f"{shape} {dtype}"),
                         message("an array of Python objects: contents not shown (loading it needs pickle)."))
        raise
    facts = [f"{_shape(arr.shape)} {arr.dtype}"]
    if arr.ndim > 1 and np.isfortran(arr):
        facts.append("Fortran order")
    parts: list[RenderableType] = [header(path, "array", *facts)]
    parts += describe_array(arr, width=width, max_rows=max_rows)
    return Group(*parts)


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(f"{s:,}" for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _npy_header(path: Path) -> tuple[str, str]:
    import numpy as np

    with path.open("rb") as fh:
        version = np.lib.format.read_magic(fh)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _fortran, dtype = reader(fh)
    return _shape(shape), str(dtype)


def array_stats(arr: np.ndarray, *, max_bytes: int = NPY_STATS_BYTES, chunk_bytes: int = NPY_CHUNK_BYTES) -> dict[str, Any]:
    """min, max, mean, std and NaN count of a numeric (possibly memory-mapped) array, read in chunks of
    ``chunk_bytes`` over at most its first ``max_bytes``; ``values`` says how many were covered. Means and
    variances are merged per chunk (Chan et al.) so float32 data does not lose precision."""
    import numpy as np

    flat = arr.reshape(-1) if arr.flags.c_contiguous else arr.ravel(order="K")
    total = flat.size
    limit = min(total, max(1, max_bytes // max(1, arr.dtype.itemsize)))
    step = max(1, chunk_bytes // max(1, arr.dtype.itemsize))
    is_float = np.issubdtype(arr.dtype, np.floating)
    n = 0
    mean = m2 = 0.0
    lo, hi = math.inf, -math.inf
    nans = infs = 0
    for start in range(0, limit, step):
        chunk = np.asarray(flat[start:min(limit, start + step)])
        if is_float:
            finite = np.isfinite(chunk)
            if not finite.all():
                nan_mask = np.isnan(chunk)
                nans += int(nan_mask.sum())
                infs += int((~finite & ~nan_mask).sum())
                chunk = chunk[finite]
        if chunk.size == 0:
            continue
        c = chunk.astype(np.float64, copy=False)
        c_n = c.size
        c_mean = float(c.mean())
        c_m2 = float(((c - c_mean) ** 2).sum())
        delta = c_mean - mean
        total_n = n + c_n
        mean += delta * c_n / total_n
        m2 += c_m2 + delta * delta * n * c_n / total_n
        n = total_n
        lo, hi = min(lo, float(c.min())), max(hi, float(c.max()))
    return {"values": limit, "of": total, "count": n, "min": lo if n else None, "max": hi if n else None,
            "mean": mean if n else None, "std": math.sqrt(m2 / n) if n else None, "nan": nans, "inf": infs}


def value_counts(arr: np.ndarray, *, max_values: int = 20, max_bytes: int = NPY_STATS_BYTES) -> dict[Any, int] | None:
    """Counts of each value of a 1-D label-like array (integers, strings, booleans) over at most its first
    ``max_bytes``, or None as soon as it has more than ``max_values`` distinct values."""
    import numpy as np

    if arr.ndim != 1 or arr.dtype.kind not in "biuUS":
        return None
    limit = min(arr.shape[0], max(1, max_bytes // max(1, arr.dtype.itemsize)))
    step = max(1, NPY_CHUNK_BYTES // max(1, arr.dtype.itemsize))
    counts: dict[Any, int] = {}
    for start in range(0, limit, step):
        values, n = np.unique(np.asarray(arr[start:min(limit, start + step)]), return_counts=True)
        for v, c in zip(values.tolist(), n.tolist(), strict=True):
            counts[v] = counts.get(v, 0) + c
        if len(counts) > max_values:
            return None
    return counts


def describe_array(arr: np.ndarray, *, width: int = 100, max_rows: int = 20) -> list[RenderableType]:
    """Statistics (numbers), value counts (labels), a picture of the first record (image stacks) or else a
    sample of the first values."""
    parts: list[RenderableType] = []
    if arr.size == 0:
        return [message("(empty array)")]
    if arr.dtype.kind in "iuf":
        stats = array_stats(arr)
        grid = Table.grid(padding=(0, 2))
        for _ in range(5):
            grid.add_column(justify="right")
        grid.add_row(*(Text(k, style="bold cyan") for k in ("min", "max", "mean", "std", "NaN")))
        nan = f"{stats['nan']:,}" + (f" (+{stats['inf']:,} inf)" if stats["inf"] else "")
        grid.add_row(*(fmt_value(stats[k]) for k in ("min", "max", "mean", "std")), nan)
        parts.append(grid)
        if stats["values"] < stats["of"]:
            parts.append(more_note(f"statistics over the first {stats['values']:,} of {stats['of']:,} values"))
    counts = value_counts(arr)
    if counts:
        line = Text.assemble(("values  ", "bold cyan"))
        for i, (v, c) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))):
            line.append("  " if i else "")
            line.append(str(v), "bold")
            line.append(f" ×{c:,}", "dim")
        parts.append(line)
    image = _first_image(arr)
    if image is not None:
        label, picture = image
        parts += [Text(label, style="dim"), render_array_image(picture, width=min(width, 48),
                                                                height=max(4, min(max_rows, 16)))]
    else:
        parts += [Text("first values", style="dim"), Text(_sample(arr, width, max_rows))]
    return parts


def _sample(arr: np.ndarray, width: int, max_rows: int) -> str:
    import numpy as np

    head = np.asarray(arr[: min(len(arr), 10 if arr.ndim == 1 else 2)])
    text = np.array2string(head, max_line_width=max(20, width - 2), threshold=40, edgeitems=3, precision=4)
    lines = text.splitlines()
    return "\n".join(lines[:max_rows] + (["…"] if len(lines) > max_rows else []))


def _first_image(arr: np.ndarray) -> tuple[str, np.ndarray] | None:
    """The picture to draw for an image-like array: a 2-D array itself, one (H, W, C) image, or the first
    record of an (N, H, W[, C]) or (N, C, H, W) stack."""
    import numpy as np

    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        return None

    def picture(h: int, w: int) -> bool:
        return h >= 8 and w >= 8 and max(h, w) / min(h, w) <= 4

    s = arr.shape
    if arr.ndim == 2 and picture(*s):
        return "as an image", arr
    if arr.ndim == 3 and s[2] in (3, 4) and picture(s[0], s[1]):
        return "as an image", arr
    if arr.ndim == 3 and picture(s[1], s[2]):
        return "record 0 as an image", arr[0]
    if arr.ndim == 4 and s[3] in (1, 3, 4) and picture(s[1], s[2]):
        return "record 0 as an image", arr[0]
    if arr.ndim == 4 and s[1] in (1, 3) and picture(s[2], s[3]):
        return "record 0 as an image", np.moveaxis(np.asarray(arr[0]), 0, -1)
    return None


def npz_file(path: Path, width: int, max_rows: int) -> RenderableType:
    """The arrays in an ``.npz`` with their shapes and dtypes, read from each member's header only."""
    import zipfile

    import numpy as np

    table = Table(box=None, padding=(0, 2), header_style="bold")
    table.add_column("array")
    table.add_column("shape", justify="right")
    table.add_column("dtype")
    with zipfile.ZipFile(path) as zf:
        members = [m for m in zf.infolist() if m.filename.endswith(".npy")]
        for m in members[: max_rows]:
            with zf.open(m) as fh:
                version = np.lib.format.read_magic(fh)
                reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape, _fortran, dtype = reader(fh)
            table.add_row(m.filename[:-4], _shape(shape), str(dtype))
    parts: list[RenderableType] = [header(path, "arrays (npz)", f"{len(members)} arrays"), table]
    if len(members) > max_rows:
        parts.append(more_note(f"⋮ first {max_rows} arrays shown"))
    return Group(*parts)
