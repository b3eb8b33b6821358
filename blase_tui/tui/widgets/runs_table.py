"""The runs table: a Line-API scroll view that draws only the visible rows (like Toolong's log view), so
10,000 runs cost the same to paint as 40. Rows live in a dict keyed by run id; a change updates one row
and re-sorts the id list, never rebuilding widgets."""

from __future__ import annotations

import bisect
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from blase_tui.core.fmt import STATUS_STYLE, fmt_run_tail, fmt_seconds, fmt_value, lower_is_better
from blase_tui.store.query import shown_name


@dataclass
class Column:
    key: str
    title: str
    width: int  # 0 = share the space left
    get: Callable[[dict[str, Any], float], str]
    sort: Callable[[dict[str, Any]], Any] = field(default=lambda r: 0)
    drop: int = 0  # on a narrow terminal, columns with the highest number go first (0 = always shown)


def _started(r: dict[str, Any], now: float) -> str:
    return time.strftime("%m-%d %H:%M:%S", time.localtime(r["started"])) if r.get("started") else "-"


def _duration(r: dict[str, Any], now: float) -> str:
    if not r.get("started"):
        return "-"
    return fmt_seconds(max(0.0, (r.get("ended") or now) - r["started"]))


ALL_COLUMNS = [
    # two cells before the id hold the compare mark (A or B), so a marked run's id shows whole
    Column("id", "  run", 27, lambda r, n: "  " + r["id"], lambda r: r["id"]),
    # the random tail alone, on narrow terminals (any command takes it: `blase runs show wf20v3`)
    Column("id", "run", 8, lambda r, n: fmt_run_tail(r["id"]), lambda r: r["id"]),
    Column("status", "status", 11, lambda r, n: r["status"], lambda r: r["status"]),
    Column("name", "name", 0, lambda r, n: shown_name(r), lambda r: shown_name(r), drop=4),
    Column("steps", "steps", 0, lambda r, n: " ".join(r.get("steps", [])), lambda r: len(r.get("steps", [])), drop=1),
    Column("started", "started", 14, _started, lambda r: r.get("started") or 0, drop=5),
    Column("duration", "duration", 10, _duration,
           lambda r: ((r.get("ended") or time.time()) - (r.get("started") or 0)), drop=2),
]


BASE_COLUMNS = [c for c in ALL_COLUMNS if c.width != 8]
SHORT_ID = next(c for c in ALL_COLUMNS if c.width == 8)
MAX_METRICS = 8
EXTRA_METRIC_DROP = 9  # the drop numbers of the fourth and later metric columns
FLEX_MAX = 40  # the steps and name columns stop growing here: a wide terminal shows more metrics instead


MetricRef = tuple[str, str]  # (step, key): the step that logged it ("" outside a step) and the metric's name
METRIC_TITLE_MAX = 18


def metric_title(ref: MetricRef, shared: bool) -> str:
    """``loss``, or ``evaluate/loss`` when more than one step logs ``loss`` (the header says which step's value
    the column holds); past 18 cells the step's name gives way, never the metric's (``evalu…/accuracy``)."""
    step, key = ref
    if not (shared and step):
        return key
    title = f"{step}/{key}"
    if len(title) <= METRIC_TITLE_MAX:
        return title
    room = METRIC_TITLE_MAX - len(key) - 2
    return f"{step[:room]}…/{key}" if room >= 2 else title


def metric_column(ref: MetricRef, shared: bool = False, first: bool = False, index: int = 0) -> Column:
    def get(r: dict[str, Any], now: float) -> str:
        v = r.get("step_metrics", {}).get(ref)
        return metric_cell(v) if v is not None else ""

    def sort(r: dict[str, Any]) -> Any:
        return r.get("step_metrics", {}).get(ref)  # None: the run has no such metric (sorted last, either way)

    title = metric_title(ref, shared)
    return Column(f"metric:{ref[0]}/{ref[1]}", title, max(8, min(len(title), METRIC_TITLE_MAX)), get, sort,
                  drop=3 if first else 6 + index)


def metric_cell(v: Any) -> str:
    """A metric in at most 8 cells, so none is cut: 0.2871, 1234, -3.98e-7, 1.23e8 (not `3.979e-…`)."""
    if not isinstance(v, float) or v == 0 or 1e-3 <= abs(v) < 1e4:
        return fmt_value(v)
    import re

    return re.sub(r"e\+?(-?)0*(\d)", r"e\1\2", f"{v:.2e}")


QUALITY = ("acc", "loss", "f1", "auc", "r2", "rmse", "mae", "mse", "precision", "recall", "score", "error")
BOOKKEEPING = ("seconds", "time", "records", "columns", "rows", "epoch", "learning_rate", "lr", "excluded", "bytes")


def metric_tier(key: str) -> int:
    """0 for quality measures, 2 for counts and timings, 1 for the rest."""
    k = key.lower()
    if any(word in k for word in QUALITY):
        return 0
    if any(k == word or k.endswith("_" + word) or k.startswith(word + "_") for word in BOOKKEEPING):
        return 2
    return 1


OPS = (">=", "<=", ">", "<", "=")


def _compare(have: Any, op: str, text: str) -> bool:
    """``have OP text``: as numbers when both are, else (for ``=``) as text."""
    try:
        target = float(text)
        number = float(have) if not isinstance(have, bool) and isinstance(have, int | float) else None
    except (TypeError, ValueError):
        target, number = None, None
    if target is not None and number is not None:
        return {">=": number >= target, "<=": number <= target, ">": number > target, "<": number < target,
                "=": number == target}[op]
    return op == "=" and str(have).lower() == text.lower()


def _value_of(row: dict[str, Any], key: str) -> tuple[bool, Any]:
    """A metric (``accuracy`` also reads ``evaluate/accuracy``), else a param (``lr`` also reads ``train.lr``)."""
    metrics, params = row.get("metrics", {}), row.get("params", {})
    if key in metrics:
        return True, metrics[key]
    if "/" not in key:  # the last step's
        found = next((val for k, val in reversed(metrics.items()) if k.endswith("/" + key)), None)
        if found is not None:
            return True, found
    if key in params:
        return True, params[key]
    found = next((val for k, val in reversed(params.items()) if k.endswith("." + key)), None)
    return (found is not None), found


def matches(row: dict[str, Any], words: list[str]) -> bool:
    """Every word must appear in the id, name, status or steps, or hold as ``key=value`` / ``key>value`` on a
    metric or a param (``learning_rate=0.002``, ``optimizer=adam``, ``accuracy>0.9``)."""
    hay = " ".join([row["id"], shown_name(row), row["status"], " ".join(row.get("steps", [])),
                    row.get("project", "")]).lower()
    for w in words:
        op = next((o for o in OPS if o in w), None)
        if op is None:
            if w not in hay:
                return False
            continue
        k, _, v = w.partition(op)
        found, have = _value_of(row, k)
        if not found or have is None or not _compare(have, op, v):
            return False
    return True


def filter_problem(rows: Any, words: list[str]) -> str | None:
    """Why a filter cannot mean what was typed, in one line: a comparison whose value is not a number, or
    that names a metric or param no run has (with the ones there are); None when it is fine."""
    metrics: set[str] = set()
    params: set[str] = set()
    for row in rows:
        metrics.update(row.get("metrics", {}))
        params.update(row.get("params", {}))
    names = metrics | params | {k.rsplit("/", 1)[-1] for k in metrics} | {k.rsplit(".", 1)[-1] for k in params}
    for w in words:
        op = next((o for o in OPS if o in w), None)
        if op is None:
            continue
        k, _, v = w.partition(op)
        if k not in names:
            shown = ", ".join(sorted({k.rsplit("/", 1)[-1] for k in metrics})[:6]) or "none yet"
            some = ", ".join(sorted({k.rsplit(".", 1)[-1] for k in params})[:6]) or "none yet"
            return f"`{w}`: no run has a metric or param `{k}` (metrics: {shown}; params: {some})"
        if op != "=":
            try:
                float(v)
            except ValueError:
                return f"`{w}`: {v or 'nothing'} is not a number (name{op}number, e.g. loss<0.1)"
    return None


class RunsTable(ScrollView, can_focus=True):
    """Newest runs first; ``upsert`` adds or updates rows in place, ``set_filter`` and ``sort_by`` re-order."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="runs.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="runs.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="runs.pageup"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="runs.pagedown"),
        Binding("home", "jump(0)", "First", show=False, id="runs.home"),
        Binding("end", "jump(-1)", "Last", show=False, id="runs.end"),
        Binding("enter", "open", "Open", id="runs.open", tooltip="Open the run under the cursor"),
        Binding("space", "mark", "Mark", show=False, id="runs.mark", tooltip="Mark up to two runs to compare"),
    ]

    DEFAULT_CSS = """
    RunsTable { height: 1fr; }
    """

    cursor = reactive(0, always_update=True)

    class Opened(Message):
        """The user pressed enter on a run."""

        def __init__(self, run_id: str) -> None:
            super().__init__()
            self.run_id = run_id

    class Marked(Message):
        """The set of marked runs changed."""

        def __init__(self, marked: list[str]) -> None:
            super().__init__()
            self.marked = marked

    def __init__(self, *, now: Callable[[], float] = time.time, name: str | None = None, id: str | None = None,
                 project_column: bool = False) -> None:
        super().__init__(name=name, id=id)
        self.rows: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.marked: list[str] = []
        self.base = list(BASE_COLUMNS)
        if project_column:  # the every-project table: the project after the status
            self.base.insert(2, Column("project", "project", 12, lambda r, n: r.get("project", ""),
                                       lambda r: r.get("project", "")))
        self.columns: list[Column] = list(self.base)
        self.metric_refs: list[MetricRef] = []  # the metric columns, in order; they change only by choice
        self.chosen = False  # the user picked the columns (m): new metrics add none
        self.ref_counts: Counter[MetricRef] = Counter()  # runs that have each (step, key)
        self.step_place: dict[str, int] = {}  # how late in a run each step comes (a default's tie-break)
        self.sort_key = "id"
        self.sort_reverse = True
        self.words: list[str] = []
        self.problem: str | None = None  # why the filter cannot mean what was typed (filter_problem)
        self.now = now
        self.has_names = False

    # ---- data ----------------------------------------------------------------------------------------------
    def upsert(self, rows: list[dict[str, Any]]) -> None:
        """Add new runs and update known ones. New runs under the default order are inserted by bisection.

        Where the cursor is decides what the user sees move: on the first row (the newest run, with the view at
        the top) it stays on the first row, so the newest run is always in sight, as a log's tail is; anywhere
        else the highlighted run stays highlighted on the same screen line, and new runs come in above or below
        it without moving it."""
        if not rows:
            return
        current = self.current_id
        top = int(self.scroll_offset.y)
        follow = self.cursor == 0 and top == 0
        line = self.cursor - top  # the highlighted run's line on screen
        fresh = [r for r in rows if r["id"] not in self.rows]
        for r in rows:
            old = self.rows.get(r["id"])
            if old is not None:
                self.ref_counts.subtract(old.get("step_metrics", {}).keys())
            self.ref_counts.update(r.get("step_metrics", {}).keys())
            for i, name in enumerate(r.get("steps", [])):
                self.step_place[name] = max(self.step_place.get(name, 0), i)
            self.rows[r["id"]] = r
        self.has_names = self.has_names or any(shown_name(r) for r in rows)
        self._choose_metric_columns()
        if self.sort_key == "id" and self.sort_reverse and not self.words:
            # ids sort by time: new runs go in by bisection on the reversed list, no full sort
            for r in sorted(fresh, key=lambda r: r["id"]):
                pos = bisect.bisect_left(_Rev(self.order), _RevKey(r["id"]))  # type: ignore[call-overload]
                self.order.insert(pos, r["id"])
        else:
            self._reorder()
        self._resize()
        if follow:
            self.cursor = 0
            self.scroll_to(y=0, animate=False, immediate=True)
        elif current is not None and current in self.rows:
            self._place_cursor(current)
            height = max(1, self.size.height - 1)
            self.scroll_to(y=max(0, self.cursor - min(max(0, line), height - 1)), animate=False, immediate=True)
        self._scroll_to_cursor()  # the highlighted run is always on screen
        self.refresh()

    def forget(self, run_ids: set[str]) -> None:
        """Drop runs that are gone from the store (deleted); the cursor stays on the run it was on, or the
        one that took the place of a deleted one."""
        gone = run_ids & set(self.rows)
        if not gone:
            return
        current = self.current_id
        position = self.cursor
        for run_id in gone:
            self.ref_counts.subtract(self.rows.pop(run_id).get("step_metrics", {}).keys())
        self.marked = [m for m in self.marked if m not in gone]
        self._reorder()
        if current in self.rows:
            self._place_cursor(current)
        else:
            self.cursor = max(0, min(position, len(self.order) - 1))
        self._resize()
        self.refresh()

    def _choose_metric_columns(self) -> None:
        """Up to eight metrics, as many as the width holds (three at 120 columns): quality measures (accuracy,
        loss, f1, …) before bookkeeping ones (seconds, records), then the ones most runs have. A metric more
        than one step logs shows the value of the step most runs log it in (the later step on a tie), under a
        header that names the step; the other steps' values of it come after the other metrics (a wide terminal
        shows them). Columns once shown stay, with their meaning: a new metric only takes a free place, and none
        after the user picked the columns (``choose_metrics``)."""
        if not self.chosen:
            shown = {key for _, key in self.metric_refs}
            best: dict[str, MetricRef] = {}
            totals: Counter[str] = Counter()
            for ref, n in self.ref_counts.items():
                if n <= 0 or ref[1] in shown:
                    continue
                totals[ref[1]] += n
                have = best.get(ref[1])
                if have is None or (n, self.step_place.get(ref[0], -1)) > (self.ref_counts[have],
                                                                           self.step_place.get(have[0], -1)):
                    best[ref[1]] = ref
            new = [best[k] for k in sorted(best, key=lambda k: (metric_tier(k), -totals[k], k))]
            # then the same metrics of other steps (evaluate/accuracy beside train/accuracy), for wide terminals
            have = set(self.metric_refs) | set(new)
            others = sorted((ref for ref, n in self.ref_counts.items() if n > 0 and ref not in have),
                            key=lambda ref: (metric_tier(ref[1]), -self.ref_counts[ref], ref))
            self.metric_refs = (self.metric_refs + new + others)[:MAX_METRICS]
        self._metric_columns()

    def metric_steps(self) -> dict[str, set[str]]:
        """Each metric's name and the steps that log it (in the runs loaded)."""
        steps: dict[str, set[str]] = {}
        for (step, key), n in self.ref_counts.items():
            if n > 0:
                steps.setdefault(key, set()).add(step)
        return steps

    def _metric_columns(self) -> None:
        steps = self.metric_steps()
        columns = [metric_column(ref, len(steps.get(ref[1], ())) > 1, i == 0, i) for i, ref in enumerate(self.metric_refs)]
        if [(c.key, c.title) for c in columns] != [(c.key, c.title) for c in self.columns[len(self.base):]]:
            self.columns = list(self.base) + columns

    def known_metrics(self) -> list[tuple[MetricRef, int]]:
        """Every (step, metric) of the runs loaded with the number of runs that have it: the shown ones first,
        in their order, then the others as the automatic choice would rank them."""
        rest = sorted((ref for ref, n in self.ref_counts.items() if n > 0 and ref not in self.metric_refs),
                      key=lambda ref: (metric_tier(ref[1]), -self.ref_counts[ref], ref))
        return [(ref, self.ref_counts[ref]) for ref in [*self.metric_refs, *rest]]

    def choose_metrics(self, refs: list[MetricRef]) -> None:
        """The user's metric columns, in this order; they stay as they are while runs arrive."""
        self.metric_refs = list(refs)[:MAX_METRICS]
        self.chosen = True
        self._metric_columns()
        if self.sort_key.startswith("metric:") and self.sort_key not in {c.key for c in self.columns}:
            self.sort_key, self.sort_reverse = "id", True
            self._reorder()
        self.refresh()

    def _reorder(self) -> None:
        col = next((c for c in self.columns if c.key == self.sort_key), self.columns[0])
        ids = [i for i, r in self.rows.items() if not self.words or matches(r, self.words)]
        if col.key == "id":
            ids.sort(reverse=self.sort_reverse)
        else:
            keyed = {i: col.sort(self.rows[i]) for i in ids}
            have = sorted((i for i in ids if keyed[i] is not None), key=lambda i: (keyed[i], i),
                          reverse=self.sort_reverse)
            ids = have + sorted((i for i in ids if keyed[i] is None), reverse=True)  # without a value: last
        self.order = ids

    def set_filter(self, text: str) -> None:
        """Keep only runs matching every word (see :func:`matches`)."""
        self.words = [w.lower() if not any(op in w for op in "<>=") else w for w in text.split()]
        self.problem = filter_problem(self.rows.values(), self.words)
        current = self.current_id
        self._reorder()
        self._place_cursor(current)
        self._resize()
        self.refresh()

    def sort_by(self, key: str) -> None:
        """Sort by a column key, in the direction that puts the interesting runs first: newest, longest,
        best metric (lowest for losses and errors); the same key again flips the direction."""
        if key == self.sort_key:
            self.sort_reverse = not self.sort_reverse
        else:
            lower_better = key.startswith("metric:") and lower_is_better(key)  # metric:step/key
            self.sort_key = key
            self.sort_reverse = (key in ("id", "started", "duration") or key.startswith("metric:")) and not lower_better
        self._reorder()
        self.cursor = 0
        self.scroll_to(y=0, animate=False)
        self.refresh()

    def reverse(self) -> None:
        self.sort_by(self.sort_key)

    def cycle_sort(self) -> str:
        """Sort by the next column on screen."""
        keys = []
        for c in self.visible_columns(self._width() or 120):
            if c.key not in keys:
                keys.append(c.key)
        nxt = keys[(keys.index(self.sort_key) + 1) % len(keys)] if self.sort_key in keys else keys[0]
        self.sort_key = ""  # so sort_by takes the default direction of the new column
        self.sort_by(nxt)
        return next(c.title for c in self.columns if c.key == nxt)

    @property
    def current_id(self) -> str | None:
        return self.order[self.cursor] if self.order and 0 <= self.cursor < len(self.order) else None

    def _place_cursor(self, run_id: str | None) -> None:
        if run_id is not None and run_id in self.rows:
            try:
                self.cursor = self.order.index(run_id)
                return
            except ValueError:
                pass
        self.cursor = min(self.cursor, max(0, len(self.order) - 1))

    def _width(self) -> int:
        """The cells the rows have: the widget less its scrollbar (a column drawn under it is cut)."""
        return self.scrollable_content_region.width or self.size.width

    def _resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.order) + 1)

    def on_resize(self) -> None:
        self._resize()

    # ---- drawing -------------------------------------------------------------------------------------------
    def visible_columns(self, total: int) -> list[Column]:
        """The columns that fit ``total`` cells: the name column only when some run has a name; then the
        highest ``drop`` numbers leave first (later metrics before earlier ones)."""
        cols = [c for c in self.columns if c.key != "name" or self.has_names]

        def need(cs: list[Column]) -> int:
            return sum((c.width or 12) + 1 for c in cs)

        while need(cols) > total:  # metrics beyond the third give way first, before the full run id
            extra = [c for c in cols if c.drop >= EXTRA_METRIC_DROP]
            if not extra:
                break
            cols.remove(max(reversed(extra), key=lambda c: c.drop))
        if need(cols) > total:
            cols[0] = SHORT_ID
        while need(cols) > total:
            droppable = [c for c in cols if c.drop]
            if not droppable:
                break
            cols.remove(max(reversed(droppable), key=lambda c: c.drop))
        return cols

    def _widths(self, cols: list[Column], total: int) -> list[int]:
        fixed = sum(c.width + 1 for c in cols if c.width)
        flex = [c for c in cols if not c.width]
        share = max(0, total - fixed - len(flex)) // max(1, len(flex))
        return [c.width if c.width else max(6, min(FLEX_MAX, share)) for c in cols]

    def _line(self, cells: list[str], widths: list[int], styles: list[Style | None], base: Style) -> Strip:
        segments = []
        for text, width, style in zip(cells, widths, styles, strict=True):
            t = text if len(text) <= width else text[: max(0, width - 1)] + "…"
            segments.append(Segment(t.ljust(width) + " ", base + style if style else base))
        strip = Strip(segments)
        return strip.crop_extend(0, self._width(), base)

    def render_line(self, y: int) -> Strip:
        cols = self.visible_columns(self._width())
        widths = self._widths(cols, self._width())
        header_style = Style(bold=True, reverse=False) + Style.parse("underline")
        if y == 0:
            titles = []
            for c, w in zip(cols, widths, strict=True):
                if c.key == self.sort_key:  # the arrow always shows: the title gives way
                    arrow = "▼" if self.sort_reverse else "▲"
                    title = c.title if len(c.title) + 2 <= w else c.title[: max(1, w - 3)] + "…"
                    titles.append(f"{title} {arrow}")
                else:
                    titles.append(c.title)
            return self._line(titles, widths, [None] * len(widths), header_style)
        index = self.scroll_offset.y + y - 1
        if index >= len(self.order):
            return Strip.blank(self._width(), Style())
        run_id = self.order[index]
        row = self.rows[run_id]
        now = self.now()
        cells = [c.get(row, now) for c in cols]
        styles: list[Style | None] = [None] * len(cells)
        if run_id in self.marked:  # the compare side as a letter, not only a colour: A or B before the id
            side = "AB"[self.marked.index(run_id)]
            # the short column keeps the whole tail (what `blase runs show` takes) beside the letter
            cells[0] = f"{side} {fmt_run_tail(run_id)}" if cols[0] is SHORT_ID else f"{side} {run_id}"
            styles[0] = Style(color="magenta", bold=True, underline=True)
        colour = STATUS_STYLE.get(row["status"])
        styles[1] = Style.parse(colour) if colour else None
        base = Style()
        if index == self.cursor:
            base = self.get_component_rich_style("runs-table--cursor") if self.has_focus else Style(reverse=True, dim=True)
        return self._line(cells, widths, styles, base)

    COMPONENT_CLASSES: ClassVar[set[str]] = {"runs-table--cursor"}

    # ---- keys ----------------------------------------------------------------------------------------------
    def watch_cursor(self, old: int, new: int) -> None:
        self._scroll_to_cursor()
        self.refresh()

    def _scroll_to_cursor(self) -> None:
        height = max(1, self.size.height - 1)
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)

    def action_cursor(self, delta: int) -> None:
        if self.order:
            self.cursor = max(0, min(len(self.order) - 1, self.cursor + delta))

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.size.height - 2))

    def action_jump(self, where: int) -> None:
        if self.order:
            self.cursor = 0 if where == 0 else len(self.order) - 1

    def action_open(self) -> None:
        if self.current_id:
            self.post_message(self.Opened(self.current_id))

    def action_mark(self) -> None:
        run_id = self.current_id
        if run_id is None:
            return
        if run_id in self.marked:
            self.marked.remove(run_id)
        elif len(self.marked) >= 2:  # a third mark would silently drop the first: refuse, and say how
            self.app.notify("Two runs are marked (A and B) already; press space on one of them to unmark it"
                            " first.", severity="warning")
            return
        else:
            self.marked.append(run_id)
        self.post_message(self.Marked(list(self.marked)))
        self.refresh()

    def on_click(self, event: Any) -> None:
        index = self.scroll_offset.y + event.y - 1
        if 0 <= index < len(self.order):
            if index == self.cursor and event.chain >= 2:
                self.action_open()
            self.cursor = index

    def render_text(self, limit: int = 50) -> str:
        """The visible table as plain text (tests and the bench read it)."""
        return "\n".join(Text.assemble(*[(s.text, s.style) for s in self.render_line(y)]).plain
                         for y in range(min(limit, len(self.order) + 1)))


class _Rev:
    """A view of a descending list that bisect can search as if it were ascending."""

    def __init__(self, items: list[str]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> _RevKey:
        return _RevKey(self.items[i])


class _RevKey:
    __slots__ = ("v",)

    def __init__(self, v: str) -> None:
        self.v = v

    def __lt__(self, other: _RevKey) -> bool:
        return self.v > other.v
