"""Previews of artifact files as Rich renderables: JSON and model cards, text, Markdown, JSON lines, CSV,
Parquet, ``.npy``/``.npz``, images, folders and unknown binaries.

Pure functions with no Textual import: the TUI's artifact pane and ``blase runs artifact`` print the same
previews, one file per kind. Each reads a bounded amount
of the file (a head, a footer, a memory-mapped slice), never a whole multi-GB file, and never raises: a file
it cannot read becomes a one-line message. Heavy libraries (pyarrow, numpy, Pillow, pygments) are imported
inside the functions that need them so that importing this module costs almost nothing.

    >>> from rich.console import Console
    >>> Console().print(render_preview(Path("runs/latest/train/artifacts/model/cnn.pt.card.json"), width=80))
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import RenderableType

from blase_tui.render.array import array_stats, describe_array, npy_file, npz_file, value_counts
from blase_tui.render.card import model_file, render_card
from blase_tui.render.common import (
    CODE_SUFFIXES,
    IMAGE_SUFFIXES,
    MODEL_SUFFIXES,
    TEXT_SUFFIXES,
    message,
    sparkline,
)
from blase_tui.render.folder import folder_listing
from blase_tui.render.image import image_file, render_array_image, render_image_bytes
from blase_tui.render.jsonfile import card_file, json_file, json_text
from blase_tui.render.table import csv_file, parquet_file
from blase_tui.render.text import jsonl_file, markdown_file, sniff, text_file

__all__ = ["IMAGE_SUFFIXES", "array_stats", "describe_array", "json_text", "render_array_image", "render_card",
           "render_image_bytes", "render_preview", "sparkline", "value_counts"]


def render_preview(path: Path, *, width: int = 100, max_rows: int = 20) -> RenderableType:
    """A preview of ``path`` sized for ``width`` terminal columns, showing at most ``max_rows`` rows of a
    table (or lines of text); an image fits ``width`` columns by about ``2 * max_rows`` pixel rows.

    Never raises: a missing, unreadable or malformed file gives a one-line message.

    >>> render_preview(Path("runs/20261123-1634/evaluate/artifacts/evaluation/predictions.parquet"), width=80)
    """
    path = Path(path)
    width = max(20, int(width))
    max_rows = max(1, int(max_rows))
    try:
        if not path.exists():
            return message(f"{path.name}: no such file or folder (it may have been removed).")
        if path.is_dir():
            return folder_listing(path, width, max_rows)
        return _preview_for(path)(path, width, max_rows)
    except PermissionError:
        return message(f"{path.name}: permission denied.")
    except Exception as exc:  # a preview must never take the screen down; say what went wrong instead
        return message(f"{path.name}: cannot preview ({type(exc).__name__}: {exc}).")


def _preview_for(path: Path) -> Callable[[Path, int, int], RenderableType]:
    name = path.name.lower()
    suffix = path.suffix.lower()
    if name.endswith(".card.json"):
        return card_file
    by_suffix: dict[str, Callable[[Path, int, int], RenderableType]] = {
        ".json": json_file, ".jsonl": jsonl_file, ".ndjson": jsonl_file, ".csv": csv_file, ".tsv": csv_file,
        ".parquet": parquet_file, ".pq": parquet_file, ".npy": npy_file, ".npz": npz_file, ".md": markdown_file, ".markdown": markdown_file,
    }
    if suffix in by_suffix:
        return by_suffix[suffix]
    if suffix in IMAGE_SUFFIXES:
        return image_file
    if suffix in MODEL_SUFFIXES:
        return model_file
    if suffix in TEXT_SUFFIXES or suffix in CODE_SUFFIXES:
        return text_file
    plugin = _plugin_preview(suffix)
    if plugin is not None:
        return plugin
    return sniff


def _plugin_preview(suffix: str) -> Callable[[Path, int, int], RenderableType] | None:
    """A preview an installed plugin provides for ``suffix`` (entry point group ``blase.previews``); a plugin
    that does not load is said in the preview, in one line."""
    from blase_tui.core import plugins

    if suffix not in {p.name for p in _previews()}:
        return None

    def render(path: Path, width: int, max_rows: int) -> RenderableType:
        try:
            fn = plugins.load("previews", suffix, what=f"the preview of {suffix} files")
        except plugins.PluginError as exc:
            return message(str(exc))
        return fn(path, width, max_rows)

    return render


_installed_previews: list[Any] | None = None


def _previews() -> list[Any]:
    global _installed_previews
    if _installed_previews is None:
        from blase_tui.core import plugins

        _installed_previews = plugins.installed("previews")
    return _installed_previews
