"""Previews of artifact files as Rich renderables: JSON and model cards, text, Markdown, JSON lines, CSV,
Parquet, ``.npy``/``.npz``, images, folders and unknown binaries.

Pure functions with no Textual import, so the CLI could print the same previews. Each reads a bounded amount
of the file (a head, a footer, a memory-mapped slice), never a whole multi-GB file, and never raises: a file
it cannot read becomes a one-line message. Heavy libraries (pyarrow, numpy, Pillow, pygments) are imported
inside the functions that need them so that importing this module costs almost nothing.

    >>> from rich.console import Console
    >>> Console().print(render_preview(Path("runs/latest/train/artifacts/model/cnn.pt.card.json"), width=80))
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.highlighter import JSONHighlighter, RegexHighlighter
from rich.table import Table
from rich.text import Text

from blase_tui.core.fmt import fmt_bytes, fmt_time, fmt_value

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

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
MODEL_SUFFIXES = {".pt": "PyTorch", ".pth": "PyTorch", ".ckpt": "checkpoint", ".keras": "Keras", ".h5": "Keras/HDF5",
                  ".joblib": "joblib", ".pkl": "pickle", ".onnx": "ONNX", ".safetensors": "safetensors"}
SPARK = "▁▂▃▄▅▆▇█"


# ------------------------------------------------------------------ entry point
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
            return _message(f"{path.name}: no such file or folder (it may have been removed).")
        if path.is_dir():
            return _directory(path, width, max_rows)
        return _preview_for(path)(path, width, max_rows)
    except PermissionError:
        return _message(f"{path.name}: permission denied.")
    except Exception as exc:  # a preview must never take the screen down; say what went wrong instead
        return _message(f"{path.name}: cannot preview ({type(exc).__name__}: {exc}).")


def _preview_for(path: Path) -> Callable[[Path, int, int], RenderableType]:
    name = path.name.lower()
    suffix = path.suffix.lower()
    if name.endswith(".card.json"):
        return _card_file
    by_suffix: dict[str, Callable[[Path, int, int], RenderableType]] = {
        ".json": _json_file, ".jsonl": _jsonl, ".ndjson": _jsonl, ".csv": _csv, ".tsv": _csv,
        ".parquet": _parquet, ".pq": _parquet, ".npy": _npy, ".npz": _npz, ".md": _markdown, ".markdown": _markdown,
    }
    if suffix in by_suffix:
        return by_suffix[suffix]
    if suffix in IMAGE_SUFFIXES:
        return _image_file
    if suffix in MODEL_SUFFIXES:
        return _model_file
    if suffix in TEXT_SUFFIXES or suffix in CODE_SUFFIXES:
        return _text
    plugin = _plugin_preview(suffix)
    if plugin is not None:
        return plugin
    return _sniff


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
            return _message(str(exc))
        return fn(path, width, max_rows)

    return render


_installed_previews: list[Any] | None = None


def _previews() -> list[Any]:
    global _installed_previews
    if _installed_previews is None:
        from blase_tui.core import plugins

        _installed_previews = plugins.installed("previews")
    return _installed_previews


# ------------------------------------------------------------------ shared pieces
def _message(text: str) -> Text:
    return Text(text, style="italic", no_wrap=False)


class _Header:
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


def _header(path: Path, kind: str, *facts: str) -> _Header:
    try:
        size = fmt_bytes(path.stat().st_size) if path.is_file() else ""
    except OSError:
        size = ""
    return _Header(path, kind, [f for f in (size, *facts) if f])


def _read_head(path: Path, limit: int = HEAD_BYTES) -> tuple[bytes, bool]:
    """The first ``limit`` bytes and whether that is the whole file."""
    with path.open("rb") as fh:
        data = fh.read(limit + 1)
    return data[:limit], len(data) <= limit


def _head_lines(path: Path, n: int) -> tuple[list[str], bool]:
    """The first ``n`` lines (decoded leniently, each cut at MAX_LINE_CHARS) and whether the file has more."""
    data, whole = _read_head(path)
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if not whole and lines and not text.endswith("\n"):
        lines = lines[:-1] or [lines[0]]  # the last line was cut by the byte limit
    more = len(lines) > n or not whole
    return [line[:MAX_LINE_CHARS] for line in lines[:n]], more


def _tail_lines(path: Path, n: int) -> list[str]:
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(0, size - HEAD_BYTES))
        data = fh.read()
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > HEAD_BYTES:
        lines = lines[1:]  # the first line was cut by the seek
    return [line[:MAX_LINE_CHARS] for line in lines[-n:]]


def _count_lines(path: Path) -> tuple[int, bool]:
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
    head, _ = _read_head(path)
    per_line = len(head) / max(1, head.count(b"\n"))
    return int(size / per_line), False


def _lines_fact(path: Path) -> str:
    n, exact = _count_lines(path)
    return f"{n:,} lines" if exact else f"≈{n:,} lines (estimated)"


def _more_note(text: str) -> Text:
    return Text(text, style="dim italic")


def _is_text(data: bytes) -> bool:
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut by the read limit is still text
        return exc.start >= len(data) - 3
    return True


# ------------------------------------------------------------------ text, markdown, code, json lines
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


def _text(path: Path, width: int, max_rows: int) -> RenderableType:
    """The head of a text file; logs also show their last lines (where a step says how it ended)."""
    suffix = path.suffix.lower()
    lines, more = _head_lines(path, max_rows)
    is_log = suffix in (".log", ".out", ".err") or path.name == "log.txt"
    kind = "log" if is_log else ("text" if suffix not in CODE_SUFFIXES else suffix.lstrip(".").upper())
    parts: list[RenderableType] = [_header(path, kind, _lines_fact(path))]
    if not lines:
        parts.append(_message("(empty)"))
        return Group(*parts)
    if suffix in CODE_SUFFIXES:
        parts.append(_syntax("\n".join(lines), path.name))
    elif is_log:
        parts.append(_highlight_log(lines))
    else:
        parts.append(Text("\n".join(lines)))
    if more and is_log:
        tail = _tail_lines(path, max(3, max_rows // 2))
        parts += [_more_note("⋮"), _highlight_log(tail)]
    elif more:
        parts.append(_more_note(f"⋮ first {len(lines)} lines shown"))
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


def _markdown(path: Path, width: int, max_rows: int) -> RenderableType:
    from rich.markdown import Markdown

    data, whole = _read_head(path)
    text = data.decode("utf-8", errors="replace")
    parts: list[RenderableType] = [_header(path, "Markdown", _lines_fact(path)), Text(""), Markdown(text)]
    if not whole:
        parts.append(_more_note(f"⋮ first {fmt_bytes(len(data))} shown"))
    return Group(*parts)


def _jsonl(path: Path, width: int, max_rows: int) -> RenderableType:
    """Each of the first lines highlighted as JSON (one record per line, like ``events.jsonl``)."""
    lines, more = _head_lines(path, max_rows)
    parts: list[RenderableType] = [_header(path, "JSON lines", _lines_fact(path)), _json_body("\n".join(lines))]
    if more:
        parts.append(_more_note(f"⋮ first {len(lines)} lines shown"))
    return Group(*parts)


def _sniff(path: Path, width: int, max_rows: int) -> RenderableType:
    """A file with an unknown suffix: text if its head decodes as UTF-8, else size and a hex head."""
    head, _ = _read_head(path, 8192)
    if _is_text(head):
        return _text(path, width, max_rows)
    return Group(_header(path, "binary"), _hex(head, width, max_rows))


def _hex(data: bytes, width: int, max_rows: int) -> Text:
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


# ------------------------------------------------------------------ json and model cards
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


def _json_body(text: str) -> Text:
    body = Text(text, no_wrap=False)
    JSONHighlighter().highlight(body)
    return body


def _json_file(path: Path, width: int, max_rows: int) -> RenderableType:
    size = path.stat().st_size
    if size > JSON_PARSE_UP_TO:
        lines, _ = _head_lines(path, max_rows)
        return Group(_header(path, "JSON", "large: first lines shown as text"), _json_body("\n".join(lines)),
                     _more_note("⋮"))
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        lines, _ = _head_lines(path, max_rows)
        return Group(_header(path, "JSON"), Text(f"not valid JSON: {exc}", style="red"), Text("\n".join(lines)))
    if isinstance(data, dict) and {"framework", "metrics", "history"} <= data.keys():
        return render_card(data, path=path, width=width, max_rows=max_rows)
    shown, rounded = _round_floats(_prune(data, max(max_rows, 10)))
    return Group(_header(path, "JSON", "floats to 6 digits" if rounded else ""), _json_body(json_text(shown, width)))


def _card_file(path: Path, width: int, max_rows: int) -> RenderableType:
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _message(f"{path.name}: not a readable model card ({exc}).")
    if not isinstance(data, dict):
        return _json_file(path, width, max_rows)
    return render_card(data, path=path, width=width, max_rows=max_rows)


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


def render_card(card: dict[str, Any], *, path: Path | None = None, width: int = 100, max_rows: int = 20,
                title: str | None = None) -> RenderableType:
    """A model card (written by ``Train.save_model`` beside the model file) as a readable summary: framework
    and architecture, task and classes, input, the kept metrics, epochs, data, provenance and a sparkline of
    each metric over the training history."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column(overflow="fold")

    model = card.get("model") if isinstance(card.get("model"), dict) else {}
    framework = [str(card.get("framework") or "unknown framework")]
    if model.get("class"):
        framework.append(str(model["class"]))
    if isinstance(model.get("parameters"), int):
        framework.append(f"{model['parameters']:,} parameters")
    if model.get("device"):
        framework.append(str(model["cuda"] or model["device"]) if model.get("cuda") else str(model["device"]))
    grid.add_row("framework", " · ".join(framework))
    if isinstance(model.get("params"), dict) and model["params"]:  # scikit-learn hyper-parameters
        hp = ", ".join(f"{k}={v}" for k, v in list(model["params"].items())[:12])
        grid.add_row("hyper-params", hp + (" …" if len(model["params"]) > 12 else ""))

    task = [str(card.get("task") or "")]
    classes = card.get("classes")
    if isinstance(classes, list) and classes:
        shown = " ".join(str(c) for c in classes[:20]) + (" …" if len(classes) > 20 else "")
        task.append(f"{len(classes)} classes: {shown}")
    grid.add_row("task", " · ".join(t for t in task if t) or "-")

    inp = card.get("input")
    if isinstance(inp, dict):
        shape = "×".join(str(s) for s in inp.get("shape") or []) or "scalar"
        text = f"{inp.get('column', '?')} {shape} {inp.get('dtype', '')}".strip()
        if inp.get("target"):
            text += f" → {inp['target']}"
        grid.add_row("input", text)

    metrics = card.get("metrics") if isinstance(card.get("metrics"), dict) else {}
    shown_metrics = {k: v for k, v in metrics.items() if k not in ("epoch", "seconds")}
    if shown_metrics:
        line = Text()
        for i, (k, v) in enumerate(shown_metrics.items()):
            if i:
                line.append("  ")
            line.append(f"{k} ")
            line.append(fmt_value(v), "bold")
        grid.add_row("metrics", line)

    epochs = card.get("epochs")
    n_epochs = len(epochs) if isinstance(epochs, list) else epochs
    epoch_text = [f"{n_epochs} run" if n_epochs not in (None, []) else ""]
    if card.get("best_epoch") is not None:
        epoch_text.append(f"best epoch {card['best_epoch']} (its weights are kept)")
    if card.get("resumed_from"):
        epoch_text.append(f"resumed from {card['resumed_from']}")
    if any(epoch_text):
        grid.add_row("epochs", " · ".join(t for t in epoch_text if t))

    if card.get("data_manifest_hash"):
        grid.add_row("data", f"training data {_short_hash(str(card['data_manifest_hash']))}")
    if card.get("training_run"):
        step = f" (step run {card['training_step_run']})" if card.get("training_step_run") is not None else ""
        grid.add_row("run", f"{card['training_run']}{step}")
    if card.get("seed") is not None:
        grid.add_row("seed", str(card["seed"]))
    if card.get("frozen_layers"):
        grid.add_row("frozen", str(card["frozen_layers"]))
    packages = card.get("packages")
    if isinstance(packages, dict) and packages:
        grid.add_row("packages", " · ".join(f"{k} {v}" for k, v in packages.items()))
    if isinstance(card.get("created"), int | float):
        grid.add_row("created", fmt_time(card["created"]))

    parts: list[RenderableType] = []
    if path is not None:
        parts.append(_header(path, title or "model card"))
    parts.append(grid)
    history = card.get("history")
    if isinstance(history, list) and len(history) > 1:
        parts += [Text(""), _history_sparklines(history, width, max_rows)]
    return Group(*parts)


def _short_hash(digest: str) -> str:
    from blase_tui.core.fmt import fmt_hash

    return fmt_hash(digest)


def _history_sparklines(history: list[dict[str, Any]], width: int, max_rows: int) -> Table:
    """One row per metric: first value, its course over the epochs as a sparkline, last value."""
    keys = [k for k in history[0] if k not in ("epoch", "seconds")]
    spark_width = max(8, min(len(history), width - 40))
    table = Table(box=None, padding=(0, 1), show_header=True, header_style="dim", title_justify="left")
    table.add_column(f"history ({len(history)} epochs)", style="bold", no_wrap=True)
    table.add_column("first", justify="right")
    table.add_column("", no_wrap=True, style="cyan")
    table.add_column("last", justify="right")
    table.add_column("best", justify="right")
    for k in keys[:max_rows]:
        vals = [row.get(k) for row in history]
        finite = [float(v) for v in vals if isinstance(v, int | float) and math.isfinite(v)]
        if not finite:
            continue
        # losses and errors improve downwards, everything else (accuracy, f1, auc) upwards
        lower_better = any(w in k.lower() for w in ("loss", "error", "mae", "mse", "rmse"))
        best = min(finite) if lower_better else max(finite)
        table.add_row(k, fmt_value(finite[0]), sparkline(finite, spark_width), fmt_value(finite[-1]), fmt_value(best))
    return table


def _model_file(path: Path, width: int, max_rows: int) -> RenderableType:
    """A saved model: its card when one lies beside it (``model.pt.card.json``), else size and a hex head."""
    kind = f"{MODEL_SUFFIXES.get(path.suffix.lower(), 'model')} model"
    card_path = path.with_name(path.name + ".card.json")
    if card_path.is_file():
        try:
            card = json.loads(card_path.read_bytes())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            card = None
        if isinstance(card, dict):
            return Group(_header(path, kind, f"card: {card_path.name}"),
                         render_card(card, width=width, max_rows=max_rows))
    head, _ = _read_head(path, 256)
    return Group(_header(path, kind, "no model card beside it"), _hex(head, width, min(max_rows, 4)))


# ------------------------------------------------------------------ tables: csv and parquet
def _fit_columns(schema: Any, width: int) -> int:
    """How many leading columns of an Arrow ``schema`` fit ``width``: each needs its name, its type or a
    typical value (numbers ~8 characters, text ~14), whichever is wider, plus a space."""
    import pyarrow.types as pat

    used, n = 0, 0
    for field in schema:
        value = 8 if pat.is_integer(field.type) or pat.is_floating(field.type) else 14
        used += max(len(field.name), len(_short_type(field.type)), value) + 1
        if used > width and n:
            break
        n += 1
    return max(1, n)


def _cell(value: Any) -> Text:
    if value is None:
        return Text("–", style="dim")
    if isinstance(value, float):
        return Text("nan" if math.isnan(value) else f"{value:.4g}")
    if isinstance(value, bytes):
        return Text(f"<{len(value):,} bytes>", style="dim")
    text = value if isinstance(value, str) else repr(value)
    return Text(text if len(text) <= 40 else text[:39] + "…")


def _arrow_table(tbl: Any, width: int, hidden: Sequence[str] = (), *, list_hidden: bool = True) -> Table:
    """A pyarrow table (already cut to the rows to show) as a Rich table: names with their types in the
    header, numbers right-aligned, hidden columns named in the caption."""
    import pyarrow.types as pat

    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 1), header_style="bold")
    for field in tbl.schema:
        numeric = pat.is_integer(field.type) or pat.is_floating(field.type) or pat.is_decimal(field.type)
        header = Text.assemble((field.name, "bold"), "\n", (_short_type(field.type), "dim"))
        table.add_column(header, justify="right" if numeric else "left", no_wrap=True, max_width=max(8, width // 3),
                         overflow="ellipsis")
    columns = [col.to_pylist() for col in tbl.columns]
    for i in range(tbl.num_rows):
        table.add_row(*(_cell(col[i]) for col in columns))
    if hidden:
        shown = ", ".join(hidden[:8]) + (" …" if len(hidden) > 8 else "")
        table.caption = f"+{len(hidden)} more columns" + (f": {shown}" if list_hidden else "")
        table.caption_justify = "left"
        table.caption_style = "dim"
    return table


def _short_type(t: Any) -> str:
    text = str(t)
    return {"double": "float64", "float": "float32", "large_string": "string", "large_binary": "binary"}.get(
        text, text if len(text) <= 24 else text[:23] + "…")


def _csv(path: Path, width: int, max_rows: int) -> RenderableType:
    """The head of a CSV through pyarrow's streaming reader (one 1 MiB block), with the row count: exact for
    small files, from a line count up to COUNT_LINES_UP_TO."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    size = path.stat().st_size
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 20),
                                parse_options=pacsv.ParseOptions(delimiter=delimiter))
        batches, rows = [], 0
        whole = size <= 1 << 20
        for batch in reader:
            batches.append(batch)
            rows += batch.num_rows
            if rows >= max_rows and not whole:
                break
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        lines, _ = _head_lines(path, max_rows)
        return Group(_header(path, "CSV"), Text(f"cannot parse as CSV: {exc}", style="red"), Text("\n".join(lines)))
    schema = batches[0].schema if batches else reader.schema
    tbl = pa.Table.from_batches(batches, schema=schema) if batches else schema.empty_table()
    if whole:
        count = f"{tbl.num_rows:,} rows"
    elif size <= COUNT_LINES_UP_TO:
        count = f"≈{max(0, _count_lines(path)[0] - 1):,} rows"
    else:
        count = "rows not counted (large file)"
    names = tbl.schema.names
    fit = _fit_columns(tbl.schema, width)
    head = tbl.select(names[:fit]).slice(0, max_rows)
    parts: list[RenderableType] = [_header(path, "CSV", count, f"{len(names)} columns"),
                                   _arrow_table(head, width, names[fit:])]
    if tbl.num_rows > max_rows or not whole:
        parts.append(_more_note(f"⋮ first {head.num_rows} rows shown"))
    return Group(*parts)


def _parquet(path: Path, width: int, max_rows: int) -> RenderableType:
    """Schema, row count and row groups from the footer; the head read from the first row group only (and
    only the columns that fit), so a 100 GB file previews as fast as a small one."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    md = pf.metadata
    schema = pf.schema_arrow
    names = schema.names
    facts = [f"{md.num_rows:,} rows", f"{md.num_row_groups:,} row group{'s' if md.num_row_groups != 1 else ''}",
             f"{len(names)} columns"]
    fit = _fit_columns(schema, width)
    parts: list[RenderableType] = [_header(path, "Parquet", *facts)]
    if fit < len(names):  # the table cannot show them all: list every column with its type
        cols = Text.assemble(("columns  ", "bold"))
        for i, field in enumerate(schema):
            if i == 60:
                cols.append(f"… +{len(names) - 60} more", "dim")
                break
            cols.append(("  ·  " if i else ""), "dim")
            cols.append(field.name)
            cols.append(f" {_short_type(field.type)}", "dim")
        parts.append(cols)
    if md.created_by:
        parts.append(Text(f"written by {md.created_by}", style="dim"))
    if md.num_row_groups and md.num_rows:
        batch = next(pf.iter_batches(batch_size=max_rows, row_groups=[0], columns=names[:fit]), None)
        if batch is not None:
            import pyarrow as pa

            parts += [Text(""), _arrow_table(pa.Table.from_batches([batch]), width, names[fit:], list_hidden=False)]
            if md.num_rows > batch.num_rows:
                parts.append(_more_note(f"⋮ first {batch.num_rows} of {md.num_rows:,} rows shown"))
    return Group(*parts)


# ------------------------------------------------------------------ numpy
def _npy(path: Path, width: int, max_rows: int) -> RenderableType:
    """Shape, dtype, statistics over a memory map (chunked, at most NPY_STATS_BYTES), a sample, and the
    first record drawn as an image when the array looks like a stack of images."""
    import numpy as np

    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc) or "Python objects" in str(exc):
            shape, dtype = _npy_header(path)
            return Group(_header(path, "array", f"{shape} {dtype}"),
                         _message("an array of Python objects: contents not shown (loading it needs pickle)."))
        raise
    facts = [f"{_shape(arr.shape)} {arr.dtype}"]
    if arr.ndim > 1 and np.isfortran(arr):
        facts.append("Fortran order")
    parts: list[RenderableType] = [_header(path, "array", *facts)]
    parts += describe_array(arr, width=width, max_rows=max_rows)
    return Group(*parts)


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(f"{s:,}" for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _npy_header(path: Path) -> tuple[str, str]:
    import numpy as np

    with path.open("rb") as fh:
        version = np.lib.format.read_magic(fh)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _fortran, dtype = reader(fh)
    return _shape(shape), str(dtype)


def array_stats(arr: np.ndarray, *, max_bytes: int = NPY_STATS_BYTES, chunk_bytes: int = NPY_CHUNK_BYTES) -> dict[str, Any]:
    """min, max, mean, std and NaN count of a numeric (possibly memory-mapped) array, read in chunks of
    ``chunk_bytes`` over at most its first ``max_bytes``; ``values`` says how many were covered. Means and
    variances are merged per chunk (Chan et al.) so float32 data does not lose precision."""
    import numpy as np

    flat = arr.reshape(-1) if arr.flags.c_contiguous else arr.ravel(order="K")
    total = flat.size
    limit = min(total, max(1, max_bytes // max(1, arr.dtype.itemsize)))
    step = max(1, chunk_bytes // max(1, arr.dtype.itemsize))
    is_float = np.issubdtype(arr.dtype, np.floating)
    n = 0
    mean = m2 = 0.0
    lo, hi = math.inf, -math.inf
    nans = infs = 0
    for start in range(0, limit, step):
        chunk = np.asarray(flat[start:min(limit, start + step)])
        if is_float:
            finite = np.isfinite(chunk)
            if not finite.all():
                nan_mask = np.isnan(chunk)
                nans += int(nan_mask.sum())
                infs += int((~finite & ~nan_mask).sum())
                chunk = chunk[finite]
        if chunk.size == 0:
            continue
        c = chunk.astype(np.float64, copy=False)
        c_n = c.size
        c_mean = float(c.mean())
        c_m2 = float(((c - c_mean) ** 2).sum())
        delta = c_mean - mean
        total_n = n + c_n
        mean += delta * c_n / total_n
        m2 += c_m2 + delta * delta * n * c_n / total_n
        n = total_n
        lo, hi = min(lo, float(c.min())), max(hi, float(c.max()))
    return {"values": limit, "of": total, "count": n, "min": lo if n else None, "max": hi if n else None,
            "mean": mean if n else None, "std": math.sqrt(m2 / n) if n else None, "nan": nans, "inf": infs}


def value_counts(arr: np.ndarray, *, max_values: int = 20, max_bytes: int = NPY_STATS_BYTES) -> dict[Any, int] | None:
    """Counts of each value of a 1-D label-like array (integers, strings, booleans) over at most its first
    ``max_bytes``, or None as soon as it has more than ``max_values`` distinct values."""
    import numpy as np

    if arr.ndim != 1 or arr.dtype.kind not in "biuUS":
        return None
    limit = min(arr.shape[0], max(1, max_bytes // max(1, arr.dtype.itemsize)))
    step = max(1, NPY_CHUNK_BYTES // max(1, arr.dtype.itemsize))
    counts: dict[Any, int] = {}
    for start in range(0, limit, step):
        values, n = np.unique(np.asarray(arr[start:min(limit, start + step)]), return_counts=True)
        for v, c in zip(values.tolist(), n.tolist(), strict=True):
            counts[v] = counts.get(v, 0) + c
        if len(counts) > max_values:
            return None
    return counts


def describe_array(arr: np.ndarray, *, width: int = 100, max_rows: int = 20) -> list[RenderableType]:
    """Statistics (numbers), value counts (labels), a picture of the first record (image stacks) or else a
    sample of the first values."""
    parts: list[RenderableType] = []
    if arr.size == 0:
        return [_message("(empty array)")]
    if arr.dtype.kind in "iuf":
        stats = array_stats(arr)
        grid = Table.grid(padding=(0, 2))
        for _ in range(5):
            grid.add_column(justify="right")
        grid.add_row(*(Text(k, style="bold cyan") for k in ("min", "max", "mean", "std", "NaN")))
        nan = f"{stats['nan']:,}" + (f" (+{stats['inf']:,} inf)" if stats["inf"] else "")
        grid.add_row(*(fmt_value(stats[k]) for k in ("min", "max", "mean", "std")), nan)
        parts.append(grid)
        if stats["values"] < stats["of"]:
            parts.append(_more_note(f"statistics over the first {stats['values']:,} of {stats['of']:,} values"))
    counts = value_counts(arr)
    if counts:
        line = Text.assemble(("values  ", "bold cyan"))
        for i, (v, c) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))):
            line.append("  " if i else "")
            line.append(str(v), "bold")
            line.append(f" ×{c:,}", "dim")
        parts.append(line)
    image = _first_image(arr)
    if image is not None:
        label, picture = image
        parts += [Text(label, style="dim"), render_array_image(picture, width=min(width, 48),
                                                                height=max(4, min(max_rows, 16)))]
    else:
        parts += [Text("first values", style="dim"), Text(_sample(arr, width, max_rows))]
    return parts


def _sample(arr: np.ndarray, width: int, max_rows: int) -> str:
    import numpy as np

    head = np.asarray(arr[: min(len(arr), 10 if arr.ndim == 1 else 2)])
    text = np.array2string(head, max_line_width=max(20, width - 2), threshold=40, edgeitems=3, precision=4)
    lines = text.splitlines()
    return "\n".join(lines[:max_rows] + (["…"] if len(lines) > max_rows else []))


def _first_image(arr: np.ndarray) -> tuple[str, np.ndarray] | None:
    """The picture to draw for an image-like array: a 2-D array itself, one (H, W, C) image, or the first
    record of an (N, H, W[, C]) or (N, C, H, W) stack."""
    import numpy as np

    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        return None

    def picture(h: int, w: int) -> bool:
        return h >= 8 and w >= 8 and max(h, w) / min(h, w) <= 4

    s = arr.shape
    if arr.ndim == 2 and picture(*s):
        return "as an image", arr
    if arr.ndim == 3 and s[2] in (3, 4) and picture(s[0], s[1]):
        return "as an image", arr
    if arr.ndim == 3 and picture(s[1], s[2]):
        return "record 0 as an image", arr[0]
    if arr.ndim == 4 and s[3] in (1, 3, 4) and picture(s[1], s[2]):
        return "record 0 as an image", arr[0]
    if arr.ndim == 4 and s[1] in (1, 3) and picture(s[2], s[3]):
        return "record 0 as an image", np.moveaxis(np.asarray(arr[0]), 0, -1)
    return None


def _npz(path: Path, width: int, max_rows: int) -> RenderableType:
    """The arrays in an ``.npz`` with their shapes and dtypes, read from each member's header only."""
    import zipfile

    import numpy as np

    table = Table(box=None, padding=(0, 2), header_style="bold")
    table.add_column("array")
    table.add_column("shape", justify="right")
    table.add_column("dtype")
    with zipfile.ZipFile(path) as zf:
        members = [m for m in zf.infolist() if m.filename.endswith(".npy")]
        for m in members[: max_rows]:
            with zf.open(m) as fh:
                version = np.lib.format.read_magic(fh)
                reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape, _fortran, dtype = reader(fh)
            table.add_row(m.filename[:-4], _shape(shape), str(dtype))
    parts: list[RenderableType] = [_header(path, "arrays (npz)", f"{len(members)} arrays"), table]
    if len(members) > max_rows:
        parts.append(_more_note(f"⋮ first {max_rows} arrays shown"))
    return Group(*parts)


# ------------------------------------------------------------------ images
def _fit_image(w: int, h: int, max_cols: int, max_lines: int) -> tuple[int, int]:
    """(columns, pixel rows) that fit ``max_cols`` × ``max_lines`` terminal cells keeping the aspect ratio; a
    half-block cell holds two pixel rows, so one pixel is about square on a 1:2 cell."""
    scale = min(max_cols / w, 2 * max_lines / h)
    cols = max(1, min(max_cols, round(w * scale)))
    rows = max(2, min(2 * max_lines, round(h * scale)))
    return cols, rows + rows % 2


def _pixels(img: Image, max_cols: int, max_lines: int) -> RenderableType:
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


def _image_file(path: Path, width: int, max_rows: int) -> RenderableType:
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
            picture = _pixels(img, width, max_rows)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as exc:
        return _message(f"{path.name}: not a readable image ({_image_error(exc)}).")
    return Group(_header(path, (img.format or path.suffix.lstrip(".")).upper() + " image", *facts), picture)


def _image_error(exc: BaseException) -> str:
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
            return _pixels(img, width, height)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as exc:
        return _message(f"not a readable image ({_image_error(exc)}).")


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
        return _message(f"cannot draw an array of shape {a.shape} as an image.")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
            return _message(f"cannot draw an array of dtype {a.dtype} as an image.")
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
    return _pixels(PILImage.fromarray(np.ascontiguousarray(a), mode=mode), width, height)


# ------------------------------------------------------------------ folders
def _directory(path: Path, width: int, max_rows: int) -> RenderableType:
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
    parts: list[RenderableType] = [_header(path, "folder", count)]
    parts.append(table if entries else _message("(empty folder)"))
    if len(entries) > max_rows:
        parts.append(_more_note(f"⋮ {len(entries) - max_rows:,}{'+' if truncated else ''} more"))
    return Group(*parts)
