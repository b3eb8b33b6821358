"""Process and system memory, CPU and GPU of a running step, from its ``resources`` events."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from blase_tui.core.fmt import fmt_bytes, workers_text


def _style(fraction: float) -> str:
    return "green" if fraction < 0.7 else "yellow" if fraction < 0.9 else "red"


def _bar(fraction: float, width: int = 20) -> ProgressBar:
    fraction = max(0.0, min(1.0, fraction))
    style = _style(fraction)
    return ProgressBar(total=1.0, completed=fraction, width=width, complete_style=style, finished_style=style)


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def _of(used: int, total: int) -> str:
    """``386.6 / 512.0 MiB`` (one unit when both have it), else ``386.6 MiB / 2.0 GiB``."""
    a, b = fmt_bytes(used), fmt_bytes(total)
    unit_a, unit_b = a.rpartition(" ")[2], b.rpartition(" ")[2]
    return f"{a.rpartition(' ')[0]} / {b}" if unit_a == unit_b else f"{a} / {b}"


def render_resources(sample: dict[str, Any] | None, *, budget: int | None = None, peak: int = 0,
                     bar_width: int = 20, compact: bool = False) -> RenderableType:
    """A small table: process memory (against the budget when known), system memory, CPU, each GPU.
    ``compact`` (a short terminal): no bars, two figures a line, each coloured as its bar would be."""
    if not sample:
        return Text("waiting for the first resource sample…", style="dim")
    if compact:
        return _compact(sample, budget, peak)
    t = Table(box=None, show_header=False, padding=(0, 1), expand=False)
    t.add_column(style="bold", no_wrap=True, min_width=8)
    t.add_column(no_wrap=True, min_width=bar_width)
    t.add_column(no_wrap=True, overflow="ellipsis")
    rss = sample.get("rss") or 0
    # the peak shares the process row (one row less: at 80x24 the panes must fit above the log), its unit only
    # when it is not the figure's: "373.5 / 512.0 MiB, peak 380.1"
    at_peak = ""
    if peak:
        value, _, unit = fmt_bytes(peak).rpartition(" ")
        at_peak = f", peak {value}" if unit == fmt_bytes(rss).rpartition(" ")[2] else f", peak {fmt_bytes(peak)}"
    if budget:
        t.add_row("process", _bar(rss / budget, bar_width), f"{_of(rss, budget)}{at_peak}")
    else:
        t.add_row("process", _bar(rss / max(1, sample.get("sys_mem_total") or 1), bar_width),
                  fmt_bytes(rss) + at_peak)
    if sample.get("workers"):  # an executor's workers (their memory is in the process figure above)
        t.add_row("workers", "", workers_text(sample["workers"]))
    used, total = sample.get("sys_mem_used") or 0, sample.get("sys_mem_total") or 0
    t.add_row("system", _bar(used / total if total else 0, bar_width), _of(used, total))
    cpu = float(sample.get("cpu") or 0)
    cores = _cores()
    t.add_row("cpu", _bar(cpu / (100 * cores), bar_width), f"{cpu:.0f}% ({cores} cores = {100 * cores}%)")
    gpus = sample.get("gpu")
    if not gpus:
        t.add_row("gpu", Text("no GPU", style="dim"), "")
    else:
        for i, g in enumerate(gpus):
            util = float(g.get("util") or 0)
            t.add_row(f"gpu{i}", _bar(util / 100, bar_width), f"{util:.0f}% busy")
            mu, mt = g.get("mem_used") or 0, g.get("mem_total") or 0
            t.add_row(f"gpu{i} mem", _bar(mu / mt if mt else 0, bar_width), f"{fmt_bytes(mu)} / {fmt_bytes(mt)}")
    return Group(t)


def _compact(sample: dict[str, Any], budget: int | None, peak: int) -> Text:
    rss = sample.get("rss") or 0
    used, total = sample.get("sys_mem_used") or 0, sample.get("sys_mem_total") or 0
    cpu, cores = float(sample.get("cpu") or 0), _cores()
    at_peak = f", peak {fmt_bytes(peak)}" if peak else ""
    items = [("process", (_of(rss, budget) if budget else fmt_bytes(rss)) + at_peak,
              rss / budget if budget else rss / max(1, total)),
             ("system", _of(used, total), used / total if total else 0.0),
             ("cpu", f"{cpu:.0f}% of {100 * cores}%", cpu / (100 * cores))]
    if sample.get("workers"):
        items.insert(1, ("workers", workers_text(sample["workers"]), 0.0))
    for i, g in enumerate(sample.get("gpu") or []):
        util, mu, mt = float(g.get("util") or 0), g.get("mem_used") or 0, g.get("mem_total") or 0
        items.append((f"gpu{i}", f"{util:.0f}% · {_of(mu, mt)}", max(util / 100, mu / mt if mt else 0.0)))
    if not sample.get("gpu"):
        items.append(("gpu", "none", 0.0))
    out = Text()
    for n, (label, value, fraction) in enumerate(items):
        out.append("\n" if n and n % 2 == 0 else "   " if n else "")
        out.append(f"{label} ", "bold")
        out.append(value, _style(fraction))
    return out


class ResourcePane(Static):
    """Re-renders from ``sample`` (set it to the newest ``resources`` event)."""

    sample: reactive[dict[str, Any] | None] = reactive(None, always_update=True)

    def __init__(self, *, budget: int | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.budget = budget
        self.peak = 0
        self.border_title = "resources" + (f" · memory budget {fmt_bytes(budget)}" if budget else "")

    ended: str | None = None  # the step's final status, once it ended: the figures are no longer live

    def watch_sample(self, sample: dict[str, Any] | None) -> None:
        if sample:
            self.peak = max(self.peak, sample.get("rss") or 0)
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()  # the bars fit the width: draw them again for the new one

    def end(self, status: str) -> None:
        """The step ended: keep its peak, say the figures are its last ones, not live."""
        self.ended = status
        self.border_title = "resources · ended"
        self.redraw()

    def redraw(self) -> None:
        """Draw the figures for the pane's width and the terminal's height (the panes call it on a resize)."""
        if self.ended and self.sample is None:
            return  # on_step_panes_finished says why there are none
        # bars take what the labels and figures leave (about 40 cells)
        width = max(8, min(30, (self.size.width or 60) - 44))
        # stacked on a short terminal (80x24): two figures a line, so the log below keeps its room
        compact = self.app.size.height < 30 and any(
            a.has_class("narrow") for a in self.ancestors if hasattr(a, "has_class"))
        shown = render_resources(self.sample, budget=self.budget, peak=self.peak, bar_width=width, compact=compact)
        if self.ended:
            from rich.console import Group

            when = time.strftime("%H:%M:%S", time.localtime(float((self.sample or {}).get("t") or time.time())))
            how = "was interrupted" if self.ended == "interrupted" else self.ended
            # the peak is on the process row below
            shown = Group(Text(f"the step {how}: its last sample ({when}), not live", style="yellow"), shown)
        self.update(shown)
