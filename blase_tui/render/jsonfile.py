"""JSON files: pretty-printed with short rows kept on one line, long lists pruned, floats shortened only
where that changes nothing a reader needs; a file that is a model card shows as one."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.highlighter import JSONHighlighter
from rich.text import Text

from blase_tui.render.card import render_card
from blase_tui.render.common import JSON_PARSE_UP_TO, MAX_LINE_CHARS, head_lines, header, message, more_note


def _prune(value: Any, max_items: int, depth: int = 0) -> Any:
    """Long lists and dicts cut to their first ``max_items`` with a marker, so a 5 MB JSON stays readable."""
    if depth > 12:
        return "…"
    if isinstance(value, list):
        kept = [_prune(v, max_items, depth + 1) for v in value[:max_items]]
        return kept + ([f"… {len(value) - max_items:,} more items"] if len(value) > max_items else [])
    if isinstance(value, dict):
        items = list(value.items())
        kept_d = {k: _prune(v, max_items, depth + 1) for k, v in items[: max_items * 2]}
        if len(items) > max_items * 2:
            kept_d["…"] = f"{len(items) - max_items * 2:,} more keys"
        return kept_d
    if isinstance(value, str) and len(value) > MAX_LINE_CHARS:
        return value[:MAX_LINE_CHARS] + "…"
    return value


def _round_floats(value: Any) -> tuple[Any, bool]:
    """Floats to 6 significant digits, never fewer than the integer part and two decimals
    (0.9666666666666667 → 0.966667, but a time 1796032431.4712 → 1796032431.47, not 1.79603e+09), so rows of
    metrics fit a line without the preview changing what a number says; says whether any changed."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return value, False
        whole = len(str(int(abs(value)))) if abs(value) >= 1 else 0
        short = float(f"{value:.{max(6, whole + 2)}g}")
        return short, short != value
    if isinstance(value, list):
        pairs = [_round_floats(v) for v in value]
        return [p[0] for p in pairs], any(p[1] for p in pairs)
    if isinstance(value, dict):
        pairs_d = {k: _round_floats(v) for k, v in value.items()}
        return {k: p[0] for k, p in pairs_d.items()}, any(p[1] for p in pairs_d.values())
    return value, False


def json_text(value: Any, width: int = 100, indent: int = 0, lead: int = 0) -> str:
    """JSON indented like ``json.dumps(indent=2)``, except that any list or object that fits on the rest of
    its line stays on one line, so a confusion matrix reads as rows instead of a column of numbers. ``lead`` is
    what already stands on the first line after the indent (an object's key)."""
    one = json.dumps(value, ensure_ascii=False)
    if indent + lead + len(one) <= width or not isinstance(value, list | dict) or not value:
        return one
    pad = " " * (indent + 2)
    if isinstance(value, list) and not any(isinstance(v, list | dict) for v in value):
        # a long list of numbers or strings: packed into lines like numpy prints arrays
        rows, row = [], pad
        for i, v in enumerate(value):
            item = json.dumps(v, ensure_ascii=False) + ("," if i < len(value) - 1 else "")
            if row.strip() and len(row) + 1 + len(item) > width:
                rows.append(row)
                row = pad
            row += ("" if row == pad else " ") + item
        rows.append(row)
        return "[\n" + "\n".join(rows) + f"\n{' ' * indent}]"
    if isinstance(value, list):
        body = ",\n".join(pad + json_text(v, width, indent + 2) for v in value)
        return f"[\n{body}\n{' ' * indent}]"
    lines = []
    for k, v in value.items():
        key = json.dumps(str(k), ensure_ascii=False) + ": "
        lines.append(pad + key + json_text(v, width, indent + 2, len(key)))
    return "{\n" + ",\n".join(lines) + f"\n{' ' * indent}}}"


def json_body(text: str) -> Text:
    body = Text(text, no_wrap=False)
    JSONHighlighter().highlight(body)
    return body


def json_file(path: Path, width: int, max_rows: int) -> RenderableType:
    size = path.stat().st_size
    if size > JSON_PARSE_UP_TO:
        lines, _ = head_lines(path, max_rows)
        return Group(header(path, "JSON", "large: first lines shown as text"), json_body("\n".join(lines)),
                     more_note("⋮"))
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        lines, _ = head_lines(path, max_rows)
        return Group(header(path, "JSON"), Text(f"not valid JSON: {exc}", style="red"), Text("\n".join(lines)))
    if isinstance(data, dict) and {"framework", "metrics", "history"} <= data.keys():
        return render_card(data, path=path, width=width, max_rows=max_rows)
    shown, rounded = _round_floats(_prune(data, max(max_rows, 10)))
    return Group(header(path, "JSON", "floats to 6 digits" if rounded else ""), json_body(json_text(shown, width)))


def card_file(path: Path, width: int, max_rows: int) -> RenderableType:
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return message(f"{path.name}: not a readable model card ({exc}).")
    if not isinstance(data, dict):
        return json_file(path, width, max_rows)
    return render_card(data, path=path, width=width, max_rows=max_rows)
