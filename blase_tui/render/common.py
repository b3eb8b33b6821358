"""What every preview shares: the bounded reads (a head, a tail, a line count), the header line, the
one-line message a preview gives instead of raising, a hex dump and the sparkline."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from blase_tui.core.fmt import fmt_bytes
from blase_tui.models.frameworks import FILE_KINDS

HEAD_BYTES = 64 * 1024
"""How much of a text file a preview reads: enough for any sensible head, small for a minified 1 GB line."""
COUNT_LINES_UP_TO = 64 * 1024 * 1024
"""Files up to this size get an exact line count (about 50 ms); bigger ones an estimate from the head."""
JSON_PARSE_UP_TO = 8 * 1024 * 1024
"""JSON up to this size is parsed and pretty-printed (pruned); bigger JSON is shown as its first lines."""
NPY_STATS_BYTES = 512 * 1024 * 1024
"""Array statistics cover at most this many bytes from the start, so a 50 GB array still previews in ~1 s."""
NPY_CHUNK_BYTES = 8 * 1024 * 1024
DIR_SCAN_LIMIT = 10_000
MAX_LINE_CHARS = 2_000
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
TEXT_SUFFIXES = {".txt", ".log", ".md", ".markdown", ".rst", ".out", ".err"}
CODE_SUFFIXES = {".py", ".toml", ".yaml", ".yml", ".sh", ".sql", ".ini", ".cfg", ".tcss", ".css", ".html", ".xml"}
MODEL_SUFFIXES = FILE_KINDS  # model files, by suffix, as a preview names their kind
SPARK = "▁▂▃▄▅▆▇█"


def message(text: str) -> Text:
    return Text(text, style="italic", no_wrap=False)


class Header:
    """The first line of every preview: the file's name, its kind, then its size and the cheap facts (rows,
    shape...). When that does not fit the width the facts move to a second line instead of wrapping
    mid-phrase."""

    def __init__(self, path: Path, kind: str, facts: Sequence[str]) -> None:
        self.title = Text.assemble((path.name, "bold"), "  ", (kind, "cyan"))
        self.facts = Text(overflow="fold")
        for fact in facts:
            if self.facts:
                self.facts.append("  ·  ", "dim")
            self.facts.append(fact)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.facts:
            yield self.title
        elif self.title.cell_len + 5 + self.facts.cell_len <= options.max_width:
            yield Text.assemble(self.title, ("  ·  ", "dim"), self.facts)
        else:
            yield self.title
            yield self.facts


def header(path: Path, kind: str, *facts: str) -> Header:
    try:
        size = fmt_bytes(path.stat().st_size) if path.is_file() else ""
    except OSError:
        size = ""
    return Header(path, kind, [f for f in (size, *facts) if f])


def read_head(path: Path, limit: int = HEAD_BYTES) -> tuple[bytes, bool]:
    """The first ``limit`` bytes and whether that is the whole file."""
    with path.open("rb") as fh:
        data = fh.read(limit + 1)
    return data[:limit], len(data) <= limit


def head_lines(path: Path, n: int) -> tuple[list[str], bool]:
    """The first ``n`` lines (decoded leniently, each cut at MAX_LINE_CHARS) and whether the file has more."""
    data, whole = read_head(path)
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if not whole and lines and not text.endswith("\n"):
        lines = lines[:-1] or [lines[0]]  # the last line was cut by the byte limit
    more = len(lines) > n or not whole
    return [line[:MAX_LINE_CHARS] for line in lines[:n]], more


def tail_lines(path: Path, n: int) -> list[str]:
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(0, size - HEAD_BYTES))
        data = fh.read()
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > HEAD_BYTES:
        lines = lines[1:]  # the first line was cut by the seek
    return [line[:MAX_LINE_CHARS] for line in lines[-n:]]


def count_lines(path: Path) -> tuple[int, bool]:
    """(lines, exact): an exact count read in 1 MiB chunks for files up to COUNT_LINES_UP_TO, else an estimate
    from the head's average line length."""
    size = path.stat().st_size
    if size <= COUNT_LINES_UP_TO:
        n = 0
        last = b"\n"
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                n += chunk.count(b"\n")
                last = chunk[-1:]
        return n + (last != b"\n"), True
    head, _ = read_head(path)
    per_line = len(head) / max(1, head.count(b"\n"))
    return int(size / per_line), False


def lines_fact(path: Path) -> str:
    n, exact = count_lines(path)
    return f"{n:,} lines" if exact else f"≈{n:,} lines (estimated)"


def more_note(text: str) -> Text:
    return Text(text, style="dim italic")


def is_text(data: bytes) -> bool:
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut by the read limit is still text
        return exc.start >= len(data) - 3
    return True


def hex_dump(data: bytes, width: int, max_rows: int) -> Text:
    """An ``xxd``-style dump: offset, hex bytes, printable characters."""
    per_line = 16 if width >= 76 else 8
    out = Text()
    for i in range(0, min(len(data), per_line * min(max_rows, 16)), per_line):
        chunk = data[i:i + per_line]
        hex_part = " ".join(f"{b:02x}" for b in chunk).ljust(per_line * 3 - 1)
        printable = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        out.append(f"{i:08x}  ", "dim")
        out.append(hex_part, "cyan")
        out.append(f"  {printable}\n")
    out.rstrip()
    return out



def sparkline(values: Sequence[float], width: int = 24) -> str:
    """Values as a row of eighth-blocks, at most ``width`` wide (bucket means when there are more)."""
    vals = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]
    if not vals:
        return ""
    if len(vals) > width:
        step = len(vals) / width
        vals = [sum(b) / len(b) for b in (vals[int(i * step):int((i + 1) * step)] for i in range(width)) if b]
    lo, hi = min(vals), max(vals)
    span = hi - lo or 1.0
    return "".join(SPARK[min(7, int((v - lo) / span * 7.999))] for v in vals)
