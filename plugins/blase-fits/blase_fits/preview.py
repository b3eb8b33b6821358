"""The TUI's preview of a ``.fits`` artifact: each HDU (kind, shape, a few header cards) and the first image's
statistics, read with memory mapping (a large mosaic is not loaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

HEADER_CARDS = ("OBJECT", "TELESCOP", "INSTRUME", "FILTER", "EXPTIME", "DATE-OBS", "BUNIT")


def render(path: Path, width: int = 100, max_rows: int = 20) -> Any:
    from astropy.io import fits
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    try:
        hdul = fits.open(path, memmap=True, lazy_load_hdus=True)
    except Exception as exc:
        return Text(f"{path.name}: not a readable FITS file ({str(exc).splitlines()[0]})", style="red")
    with hdul:
        table = Table(box=None, header_style="bold", padding=(0, 1))
        for column in ("hdu", "name", "kind", "shape", "type"):
            table.add_column(column, no_wrap=True)
        first = None
        for number, item in enumerate(hdul):
            if number >= max_rows:
                break
            shape = tuple(item.shape or ()) if hasattr(item, "shape") else ()
            table.add_row(str(number), item.name, type(item).__name__, "x".join(map(str, shape)) or "-",
                          str(getattr(item, "data", None).dtype) if shape and hasattr(item, "data") else "-")
            if first is None and len(shape) == 2:
                first = item
        parts: list[Any] = [Text(f"FITS · {len(hdul)} HDU{'s' * (len(hdul) != 1)}", style="bold"), table]
        if first is not None:
            data = np.asarray(first.data[:: max(1, first.shape[0] // 512), :: max(1, first.shape[1] // 512)],
                              dtype=np.float64)  # a sample of the image: a mosaic is not read whole
            finite = data[np.isfinite(data)]
            if finite.size:
                parts.append(Text(f"image {first.name}: min {finite.min():.4g}  median {np.median(finite):.4g}"
                                  f"  max {finite.max():.4g}  ({data.size - finite.size} NaN in the sample)"))
            cards = [f"{k} = {first.header[k]}" for k in HEADER_CARDS if k in first.header]
            if cards:
                parts.append(Text("  ".join(cards)[: width * 2], style="dim"))
        return Group(*parts)
