"""Compare: `blase runs diff A B` side by side — what differs in params, metrics, code, data, environment
and git, with the count of what is the same."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Footer, Static

from blase_tui.core.fmt import STATUS_STYLE, delta_text, fmt_run_tail
from blase_tui.core.project import Project
from blase_tui.tui.screens.base import BlaseScreen
from blase_tui.tui.widgets.metric_plot import MetricPlot


def _delta(metric: str, a: Any, b: Any, width: int) -> Text:
    """B's change from A, marked ✓ better or ✗ worse (the words when they fit; lower is better for losses)."""
    found = delta_text(metric, a, b)
    if found is None:
        return Text("")
    text, verdict = found
    if verdict == "same":
        return Text(text, style="dim")
    sign, colour = ("✓", "green") if verdict == "better" else ("✗", "red")
    mark = f" {sign} {verdict}" if len(text) + len(verdict) + 3 <= width else f" {sign}"
    return Text.assemble(text, (mark, colour))


def _shorten(key: str, width: int) -> str:
    """An item name in ``width`` cells: whole when it fits, else its step (the part before the first ``.`` or
    ``/``) and its end, which tell two items apart (``etl.…_images.directory``, not ``…oad_images.directory``)."""
    if len(key) <= width:
        return key
    cut = min((i for i in (key.find("."), key.find("/")) if i > 0), default=-1)
    head = key[:cut + 1] if 0 < cut + 1 <= width // 2 else ""
    return head + "…" + key[len(key) - (width - len(head) - 1):]


def _wrap_list(text: str, width: int) -> list[str]:
    """``a, b, c`` on as few lines of ``width`` cells as it takes, broken after a comma, never inside an item."""
    lines: list[str] = []
    for part in text.split(", "):
        if lines and len(lines[-1]) + 2 + len(part) <= width:
            lines[-1] += ", " + part
        else:
            if lines:
                lines[-1] += ","
            lines.append(part)
    return lines


class CompareScreen(BlaseScreen):
    """Two runs side by side: only what differs, section by section, and how each metric moved from A to B
    (better or worse: lower is better for losses, errors and times); a metric's row, highlighted, draws its
    curve in both runs on one chart. s swaps the sides."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="compare.back", tooltip="Back to the runs"),
        Binding("s", "swap", "Swap", id="compare.swap", tooltip="Swap A and B"),
    ]

    class Diff(Message):
        def __init__(self, result: dict[str, Any]) -> None:
            super().__init__()
            self.result = result

    class Curves(Message):
        """The history of one metric in A and in B (iterations and values each; empty when a run lacks it)."""

        def __init__(self, key: str, curves: list[tuple[str, list[float], list[float]]]) -> None:
            super().__init__()
            self.key, self.curves = key, curves

    def __init__(self, project: Project, a: str, b: str, project_b: Project | None = None) -> None:
        super().__init__()
        self.project, self.a, self.b = project, a, b
        self.project_b = project_b or project  # B of another project (the every-project runs table)

    def compose(self) -> ComposeResult:
        names = self.project.name if self.project_b is self.project else f"{self.project.name} and {self.project_b.name}"
        yield Static(f"blase · {names} · compare", classes="title")
        yield Static("reading both runs…", id="compare-head", classes="hint")
        table: DataTable[Any] = DataTable(id="compare-table", cursor_type="row", zebra_stripes=True)
        yield table
        plot = MetricPlot(id="compare-plot")
        plot.display = False  # shown while a metric's row is highlighted: its curve in A and in B, overlaid
        yield plot
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="diff", exit_on_error=False)
    def load(self) -> None:
        from blase_tui.store.diff import diff_runs

        self.post_message(self.Diff(diff_runs(self.project.store, self.a, self.b, self.project_b.store)))

    def on_compare_screen_diff(self, message: Diff) -> None:
        from blase_tui.core.fmt import cell
        from blase_tui.store.diff import summary

        r = message.result
        narrow = self.size.width < 100
        a, b = (fmt_run_tail(r["a"]), fmt_run_tail(r["b"])) if narrow else (r["a"], r["b"])
        head = Text.assemble(
            ("A ", "bold"), a, " ", (r["status"][0], STATUS_STYLE.get(r["status"][0], "")), "    ",
            ("B ", "bold"), b, " ", (r["status"][1], STATUS_STYLE.get(r["status"][1], "")),
        )
        self.query_one("#compare-head", Static).update(head)
        table = self.query_one(DataTable)
        table.clear(columns=True)
        self.row_items: list[tuple[str, str]] = []  # (section, key) of each table row
        # fixed widths so both sides stay on screen at 80 columns; long item names are cut at the end
        rest = max(48, self.size.width - 10 - 14)
        item_w = rest * 38 // 100
        side_w = rest * 22 // 100
        delta_w = rest - item_w - 2 * side_w
        table.add_column("section", key="section", width=11)
        table.add_column("item", key="item", width=item_w)
        table.add_column(Text("A", style="bold"), key="a", width=side_w)
        table.add_column(Text("B", style="bold"), key="b", width=side_w)
        table.add_column(Text("B vs A", style="bold"), key="delta", width=delta_w)
        for section, data in r["sections"].items():
            changed = data["changed"]
            lines = _wrap_list(summary(data), item_w - 1)  # `1 differs, 27 only in B,` / `12 the same` at 80 columns
            table.add_row(Text(section, style="bold magenta"), Text("\n".join(lines), style="dim"), "", "", "",
                          height=len(lines))
            self.row_items.append(("", ""))
            for key, (va, vb) in changed.items():  # the values that differ first, then what one run lacks
                self.row_items.append((section, key))
                fa, fb = cell(section, va), cell(section, vb)
                table.add_row("", _shorten(key, item_w),
                              Text(fa, style="red") if fa is not None else Text("absent", style="dim"),
                              Text(fb, style="green") if fb is not None else Text("absent", style="dim"),
                              _delta(key, va, vb, delta_w) if section == "metrics" else "")
        table.focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        items = getattr(self, "row_items", [])
        section, key = items[event.cursor_row] if 0 <= event.cursor_row < len(items) else ("", "")
        plot = self.query_one("#compare-plot", MetricPlot)
        if section != "metrics":
            plot.display = False
            return
        self.load_curves(key)

    @work(thread=True, exclusive=True, group="curves", exit_on_error=False)
    def load_curves(self, key: str) -> None:
        """``step.metric``'s history in each run (the step's last execution there)."""
        step, _, metric = key.partition("/")
        curves = []
        for side, run_id, store in (("A", self.a, self.project.store), ("B", self.b, self.project_b.store)):
            executions = [r for r in store.step_runs(run_id) if r.step == step]
            points = store.metric_series(run_id, executions[-1].id, metric) if executions else []
            xs = [float(p.iteration) if p.iteration is not None else float(i) for i, p in enumerate(points)]
            curves.append((f"{side} {fmt_run_tail(run_id)}", xs, [float(p.value) for p in points]))
        self.post_message(self.Curves(key, curves))

    def on_compare_screen_curves(self, message: Curves) -> None:
        plot = self.query_one("#compare-plot", MetricPlot)
        plot.clear()
        plot.title = f"{message.key}: A and B"
        for name, xs, ys in message.curves:
            if ys:
                plot.set_series(name, xs, ys)
        plot.display = any(ys for _, _, ys in message.curves)

    def action_swap(self) -> None:
        self.a, self.b = self.b, self.a
        self.load()

    def action_back(self) -> None:
        self.app.pop_screen()
