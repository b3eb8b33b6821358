"""Text, logs (head and tail, levels highlighted), code, Markdown, JSON lines and files of unknown kind."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rich.console import Group, RenderableType
from rich.highlighter import RegexHighlighter
from rich.text import Text

from blase_tui.core.fmt import fmt_bytes
from blase_tui.render.common import (
    CODE_SUFFIXES,
    head_lines,
    header,
    hex_dump,
    is_text,
    lines_fact,
    message,
    more_note,
    read_head,
    tail_lines,
)
from blase_tui.render.jsonfile import json_body


class _LogHighlighter(RegexHighlighter):
    """Levels and numbers in log lines, so errors and metric values stand out."""

    base_style = "log."
    highlights = [
        r"(?P<error>\b(ERROR|CRITICAL|FATAL|Traceback)\b.*)",
        r"(?P<warning>\b(WARNING|WARN)\b)",
        r"(?P<info>\b(INFO|DEBUG)\b)",
        r"(?m)(?P<time>^(\d{4}-\d\d-\d\d[ T])?\d\d:\d\d:\d\d([.,]\d+)?)",
        r"(?P<number>(?<![\w.:-])-?\d+(\.\d+)?(e-?\d+)?(?![\w:-]))",
    ]


_LOG_STYLES = {"log.error": "bold red", "log.warning": "yellow", "log.info": "green", "log.time": "dim",
               "log.number": "cyan"}


def _highlight_log(lines: Iterable[str]) -> Text:
    text = Text("\n".join(lines))
    _LogHighlighter().highlight(text)
    # RegexHighlighter names styles; resolve them here so the preview does not depend on a theme
    text.spans = [span._replace(style=_LOG_STYLES.get(str(span.style), span.style)) for span in text.spans]
    return text


def text_file(path: Path, width: int, max_rows: int) -> RenderableType:
    """The head of a text file; logs also show their last lines (where a step says how it ended)."""
    suffix = path.suffix.lower()
    lines, more = head_lines(path, max_rows)
    is_log = suffix in (".log", ".out", ".err") or path.name == "log.txt"
    kind = "log" if is_log else ("text" if suffix not in CODE_SUFFIXES else suffix.lstrip(".").upper())
    parts: list[RenderableType] = [header(path, kind, lines_fact(path))]
    if not lines:
        parts.append(message("(empty)"))
        return Group(*parts)
    if suffix in CODE_SUFFIXES:
        parts.append(_syntax("\n".join(lines), path.name))
    elif is_log:
        parts.append(_highlight_log(lines))
    else:
        parts.append(Text("\n".join(lines)))
    if more and is_log:
        tail = tail_lines(path, max(3, max_rows // 2))
        parts += [more_note("⋮"), _highlight_log(tail)]
    elif more:
        parts.append(more_note(f"⋮ first {len(lines)} lines shown"))
    return Group(*parts)


def _syntax(code: str, filename: str) -> RenderableType:
    from pygments.lexers import get_lexer_for_filename
    from pygments.util import ClassNotFound
    from rich.syntax import Syntax

    try:
        lexer = get_lexer_for_filename(filename, code)
    except ClassNotFound:
        return Text(code)
    # default background: the preview sits on the app's own surface colour
    return Syntax(code, lexer, word_wrap=True, background_color="default", theme="ansi_dark")


def markdown_file(path: Path, width: int, max_rows: int) -> RenderableType:
    from rich.markdown import Markdown

    data, whole = read_head(path)
    text = data.decode("utf-8", errors="replace")
    parts: list[RenderableType] = [header(path, "Markdown", lines_fact(path)), Text(""), Markdown(text)]
    if not whole:
        parts.append(more_note(f"⋮ first {fmt_bytes(len(data))} shown"))
    return Group(*parts)


def jsonl_file(path: Path, width: int, max_rows: int) -> RenderableType:
    """Each of the first lines highlighted as JSON (one record per line, like ``events.jsonl``)."""
    lines, more = head_lines(path, max_rows)
    parts: list[RenderableType] = [header(path, "JSON lines", lines_fact(path)), json_body("\n".join(lines))]
    if more:
        parts.append(more_note(f"⋮ first {len(lines)} lines shown"))
    return Group(*parts)


def sniff(path: Path, width: int, max_rows: int) -> RenderableType:
    """A file with an unknown suffix: text if its head decodes as UTF-8, else size and a hex head."""
    head, _ = read_head(path, 8192)
    if is_text(head):
        return text_file(path, width, max_rows)
    return Group(header(path, "binary"), hex_dump(head, width, max_rows))
