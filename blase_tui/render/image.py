"""Images drawn in half-block characters: files (any Pillow format, 16-bit and float stretched), encoded
bytes (an alert's cutout) and arrays (a difference image with negative values and NaNs)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType

from blase_tui.render.common import header, message

if TYPE_CHECKING:
    from PIL.Image import Image


def _fit_image(w: int, h: int, max_cols: int, max_lines: int) -> tuple[int, int]:
    """(columns, pixel rows) that fit ``max_cols`` × ``max_lines`` terminal cells keeping the aspect ratio; a
    half-block cell holds two pixel rows, so one pixel is about square on a 1:2 cell."""
    scale = min(max_cols / w, 2 * max_lines / h)
    cols = max(1, min(max_cols, round(w * scale)))
    rows = max(2, min(2 * max_lines, round(h * scale)))
    return cols, rows + rows % 2


def pixels(img: Image, max_cols: int, max_lines: int) -> RenderableType:
    from PIL import Image as PILImage
    from rich_pixels import Pixels

    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # 16-bit and float images (microscopy, astronomy) would clip to white as 8-bit: stretch them instead
        import numpy as np

        return render_array_image(np.asarray(img), max_cols, max_lines)
    cols, rows = _fit_image(img.width, img.height, max_cols, max_lines)
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.mode or "transparency" in img.info else "RGB")
    # enlarging keeps pixels crisp (a 21×21 stamp should look like one); shrinking averages them
    upscale = cols >= img.width
    resample = PILImage.Resampling.NEAREST if upscale else PILImage.Resampling.LANCZOS
    img = img.resize((cols, rows), resample=resample, reducing_gap=None if upscale else 3.0)
    return Pixels.from_image(img)


def image_file(path: Path, width: int, max_rows: int) -> RenderableType:
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(path) as img:
            facts = [f"{img.width}×{img.height}", img.mode]
            if getattr(img, "n_frames", 1) > 1:
                facts.append(f"{img.n_frames} frames (first shown)")
            cols, rows = _fit_image(img.width, img.height, width, max_rows)
            img.draft("RGB", (cols, rows))  # JPEG decodes straight at a reduced scale: a 50 MP photo stays cheap
            img.load()
            picture = pixels(img, width, max_rows)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as exc:
        return message(f"{path.name}: not a readable image ({image_error(exc)}).")
    return Group(header(path, (img.format or path.suffix.lstrip(".")).upper() + " image", *facts), picture)


def image_error(exc: BaseException) -> str:
    text = str(exc).split("\n")[0]
    # Pillow names the temporary path it was given; the user knows which file this is
    return re.sub(r"cannot identify image file .*", "not a known image format", text) or type(exc).__name__


def render_image_bytes(data: bytes, width: int = 40, height: int = 20) -> RenderableType:
    """An encoded image (PNG, JPEG... e.g. an alert's cutout stamp) drawn in half-blocks to fit ``width``
    columns × ``height`` lines. Undecodable bytes give a one-line message."""
    import io

    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(io.BytesIO(data)) as img:
            img.load()
            return pixels(img, width, height)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as exc:
        return message(f"not a readable image ({image_error(exc)}).")


def render_array_image(arr: Any, width: int = 40, height: int = 20, *, clip: tuple[float, float] = (1.0, 99.5)
                       ) -> RenderableType:
    """A 2-D array (a stamp, a digit, a difference image with negative values and NaNs) or an (H, W, 3|4)
    array drawn in half-blocks to fit ``width`` columns × ``height`` lines. Non-``uint8`` data is stretched
    between the ``clip`` percentiles of its finite values (like an astronomer's display scale), NaN black."""
    import numpy as np
    from PIL import Image as PILImage

    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))) or min(a.shape[:2]) == 0:
        return message(f"cannot draw an array of shape {a.shape} as an image.")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
            return message(f"cannot draw an array of dtype {a.dtype} as an image.")
        f = a.astype(np.float64)
        finite = np.isfinite(f)
        if finite.any():
            lo, hi = np.percentile(f[finite], clip)
            if hi <= lo:
                lo, hi = float(f[finite].min()), float(f[finite].max())
            scaled = (f - lo) / (hi - lo) if hi > lo else np.zeros_like(f)
        else:
            scaled = np.zeros_like(f)
        a = (np.clip(np.nan_to_num(scaled, nan=0.0, posinf=1.0, neginf=0.0), 0, 1) * 255).astype(np.uint8)
    mode = "L" if a.ndim == 2 else ("RGB" if a.shape[2] == 3 else "RGBA")
    return pixels(PILImage.fromarray(np.ascontiguousarray(a), mode=mode), width, height)
