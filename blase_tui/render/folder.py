"""Folders: folders first, then files, with sizes and modification times."""

from __future__ import annotations

import os
import time
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from blase_tui.core.fmt import fmt_bytes
from blase_tui.render.common import DIR_SCAN_LIMIT, header, message, more_note


def folder_listing(path: Path, width: int, max_rows: int) -> RenderableType:
    """Folders first, then files, by name: at most ``max_rows`` entries of the first DIR_SCAN_LIMIT read."""
    entries: list[os.DirEntry[str]] = []
    truncated = False
    with os.scandir(path) as it:
        for entry in it:
            if len(entries) >= DIR_SCAN_LIMIT:
                truncated = True
                break
            entries.append(entry)

    def is_dir(e: os.DirEntry[str]) -> bool:
        try:
            return e.is_dir()
        except OSError:
            return False

    entries.sort(key=lambda e: (not is_dir(e), e.name.lower()))
    table = Table(box=None, padding=(0, 2), header_style="dim", show_edge=False)
    table.add_column("name", overflow="fold")
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("modified", no_wrap=True, style="dim")
    for e in entries[:max_rows]:
        try:
            st = e.stat()
        except OSError:
            table.add_row(e.name, "?", "")
            continue
        d = is_dir(e)
        table.add_row(Text(e.name + ("/" if d else ""), style="bold blue" if d else ""),
                      "" if d else fmt_bytes(st.st_size), time.strftime("%Y-%m-%d %H:%M", time.localtime(st.st_mtime)))
    count = f"{len(entries):,}{'+' if truncated else ''} entries"
    parts: list[RenderableType] = [header(path, "folder", count)]
    parts.append(table if entries else message("(empty folder)"))
    if len(entries) > max_rows:
        parts.append(more_note(f"⋮ {len(entries) - max_rows:,}{'+' if truncated else ''} more"))
    return Group(*parts)
