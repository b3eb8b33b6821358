"""Shared CLI pieces: the project option, consoles, JSON output, and human formats for times and sizes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from blase_tui.core.fmt import STATUS_STYLE, fmt_bytes, fmt_duration, fmt_time, fmt_value  # noqa: F401  (re-exported)
from blase_tui.core.project import Project
from blase_tui.errors import ConfigError

_state: dict[str, Any] = {"project": None}


def __getattr__(name: str) -> Any:
    """``console`` and ``err_console``, made on first use: rich costs ~20 ms to import, which the commands
    started most often (cli/hot.py) never pay."""
    if name not in ("console", "err_console"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from rich.console import Console

    # Piped output keeps whole lines (a run id cut to "2026…" is useless to a script); a terminal wraps to fit.
    if name == "console":
        made = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 240)
    else:
        made = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 240)
    globals()[name] = made
    return made


def set_project_dir(path: Path | None) -> None:
    _state["project"] = path


def project_dir() -> Path | None:
    """The folder given with ``-C`` / ``BLASE_PROJECT``, or None (then the working directory decides)."""
    return _state["project"]


def project_root() -> Path | None:
    """The root of the project ``-C`` (or ``BLASE_PROJECT``) names, else of the one holding the working directory;
    None outside any project."""
    from blase_tui.core.config import find_project_root

    given = _state["project"]
    return find_project_root(Path(given).expanduser()) if given is not None else find_project_root()


def project() -> Project:
    """The project named by ``-C PATH`` (or ``BLASE_PROJECT``), else the one holding the working directory."""
    return open_project(_state["project"])


def open_project(given: Path | str | None) -> Project:
    """The project ``given`` (a folder, from ``-C`` or ``BLASE_PROJECT``) names, else the working directory's."""
    if given is not None and not Path(given).expanduser().exists():
        raise ConfigError(f"{given} (given with -C or BLASE_PROJECT) does not exist; give the path of a project"
                          " folder.")
    return Project.discover(Path(given) if given is not None else None)


def table(*columns: str, wrap: tuple[str, ...] = ()) -> Any:
    """The CLI's plain table: bold headers, no borders; only the ``wrap`` columns wrap."""
    from rich.table import Table

    t = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for col in columns:
        t.add_column(col, no_wrap=col not in wrap)
    return t


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def status_text(status: str) -> str:
    style = STATUS_STYLE.get(status, "")
    return f"[{style}]{status}[/]" if style else status


def parse_pairs(items: list[str] | None, option: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"{option} {item}: write it as key=value.")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out


def refuse_untrusted_model_file(model: str | Path, framework: str | None, trust: bool, verb: str) -> None:
    """Before a command opens a run for it: a model file that is not registered and whose loading runs code from
    it (a pickle, a skops file of types skops does not trust) is refused without ``--trust``, in one line."""
    path = Path(model)
    if trust or not path.is_file():
        return
    from blase_tui.frameworks.formats import describe
    from blase_tui.models.frameworks import resolve
    from blase_tui.store import models
    from blase_tui.store.hashing import hash_file

    fw = resolve(framework, path=path)
    if models.by_file_hash(project().store, hash_file(path)) is not None:
        return  # a registered version: this project's own
    fmt = describe(path, fw.name)
    if fmt.runs_code:
        raise ConfigError(untrusted_line(path, fmt.note, verb, fmt.name == "pickle"))


def untrusted_line(path: Path | str, what: str, verb: str, pickle: bool) -> str:
    """The one line refusing a model file whose loading runs code."""
    return (f"{path} is {what}, whose loading runs code from the file; {verb} it only if you trust where it came"
            f" from: add --trust{' (or save it as .skops, which runs no code)' if pickle else ''}.")
