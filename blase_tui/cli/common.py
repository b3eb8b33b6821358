"""Shared CLI pieces: the project option, consoles, JSON output, and human formats for times and sizes."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from blase_tui.core.project import Project

_state: dict[str, Any] = {"project": None}

# Piped output keeps whole lines (a run id cut to "2026…" is useless to a script); a terminal wraps to fit.
console = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 240)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 240)


def set_project_dir(path: Path | None) -> None:
    _state["project"] = path


def project_dir() -> Path | None:
    """The folder given with ``-C`` / ``BLASE_PROJECT``, or None (then the working directory decides)."""
    return _state["project"]


def project() -> Project:
    """The project named by ``-C PATH`` (or ``BLASE_PROJECT``), else the one holding the working directory."""
    return Project.discover(_state["project"])


def table(*columns: str, wrap: tuple[str, ...] = ()) -> Any:
    """The CLI's plain table: bold headers, no borders; only the ``wrap`` columns wrap."""
    from rich.table import Table

    t = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for col in columns:
        t.add_column(col, no_wrap=col not in wrap)
    return t


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fmt_time(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def fmt_duration(start: float | None, end: float | None) -> str:
    if not start:
        return "-"
    seconds = (end or time.time()) - start
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if v is None:
        return "-"
    return v if isinstance(v, str) else json.dumps(v)


STATUS_STYLE = {"succeeded": "green", "failed": "red", "interrupted": "yellow", "running": "cyan"}


def status_text(status: str) -> str:
    style = STATUS_STYLE.get(status, "")
    return f"[{style}]{status}[/]" if style else status


def parse_pairs(items: list[str] | None, option: str) -> dict[str, str]:
    from blase_tui.errors import ConfigError

    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"{option} {item}: write it as key=value.")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out
