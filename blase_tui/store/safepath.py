"""The one guard for names and paths read from disk: ``run.json``, the journal, an events file, an imported MLflow
run, a deployment archive, a config. Each is checked before any file is touched:

- **relative** (no leading ``/``, no drive letter), **normalised** (``a//./b`` is ``a/b``), and never climbing
  out with ``..``;
- **printable**: no control characters (a newline could fake lines in ``runs show``, a NUL breaks the file
  system calls) and no invisible formatting characters (a right-to-left override makes ``txt.exe`` read as
  ``exe.txt``);
- **not too long** for the file system (255 bytes a component, 4,096 in all);
- **inside the place it belongs** once joined to it, links followed: ``inside(base, name)`` refuses a name that
  leads out through a symbolic link in ``base``.

A refusal is an ``UnsafePath`` (a ``BlaseError``): one sentence naming the thing, where it came from and why.

>>> inside(Path("runs/r1/train/artifacts"), "model/m.pt")          # doctest: +SKIP
PosixPath('runs/r1/train/artifacts/model/m.pt')
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from blase_tui.errors import BlaseError

MAX_COMPONENT = 255  # bytes, as most file systems allow
MAX_PATH = 4096
_HEX64 = re.compile(r"[0-9a-f]{64}")


class UnsafePath(BlaseError):
    """A name or path read from disk that would reach outside the place it belongs, or cannot be a file name."""


def _why(text: str) -> str | None:
    """Why ``text`` cannot be a relative name, or None when it can."""
    if not text.strip():
        return "it is empty"
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf", "Zl", "Zp"):
            return f"it holds the control character U+{ord(ch):04X}"
        if category in ("Cn", "Co", "Cs"):
            return f"it holds U+{ord(ch):04X}, which is no character"
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        return "it is an absolute path"
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts:
        return "it names no file"
    if ".." in parts:
        return "it climbs out with '..'"
    if any(len(p.encode("utf-8", "surrogateescape")) > MAX_COMPONENT for p in parts):
        return f"a part of it is longer than {MAX_COMPONENT} bytes"
    if len(text.encode("utf-8", "surrogateescape")) > MAX_PATH:
        return f"it is longer than {MAX_PATH} bytes"
    return None


def shown(text: object, limit: int = 80) -> str:
    """``text`` as it can be printed in one line of an error: control characters escaped, cut to ``limit``."""
    value = repr(str(text))
    return value if len(value) <= limit else value[:limit - 4] + "...'"


def relative_name(name: object, *, what: str = "name") -> str:
    """``name`` as a normalised relative path (``a/b``); ``what`` names it in the refusal (``artifact name
    in run.json of run 20261206-...``)."""
    text = str(name).replace("\\", "/")
    why = _why(text)
    if why is not None:
        raise UnsafePath(f"{what} {shown(name)} cannot be used: {why}; it must be a relative path inside its"
                         " folder, of printable characters.")
    return "/".join(p for p in text.split("/") if p not in ("", "."))


def inside(base: Path, name: object, *, what: str = "name") -> Path:
    """``base / name``, after ``relative_name``, and only when it stays inside ``base`` with every link in the
    part that exists today followed."""
    rel = relative_name(name, what=what)
    target = base / rel
    root = base.resolve()
    existing = target
    while not existing.exists() and not existing.is_symlink() and existing != base:
        existing = existing.parent
    if not existing.resolve().is_relative_to(root):
        raise UnsafePath(f"{what} {shown(name)} cannot be used: it leads out of {base} through a link; remove the"
                         " link or pick another name.")
    return target


def is_digest(value: object) -> bool:
    """Whether ``value`` is a content hash as the store names its objects (64 hexadecimal digits)."""
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None
