"""One bar per stage of a step (extract, transform, train epoch, ...), with rate and ETA, from its
``progress`` events. Only the newest event of each stage is kept."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from blase_tui.core.fmt import eta_seconds, fmt_seconds


def render_progress(stages: dict[str, dict[str, Any]], *, bar_width: int = 24) -> RenderableType:
    if not stages:
        return Text("no progress reported yet", style="dim")
    t = Table(box=None, show_header=False, padding=(0, 1), expand=False)
    t.add_column(style="bold", no_wrap=True, max_width=22)
    t.add_column(no_wrap=True)
    t.add_column(no_wrap=True, justify="right")
    t.add_column(no_wrap=True)
    for stage, e in stages.items():
        total, done = e.get("total"), e.get("done", 0)
        finished = bool(e.get("finished"))
        if total:
            bar = ProgressBar(total=float(total), completed=float(done), width=bar_width)
            count = f"{done}/{total} {100 * done / total:.0f}%"
        else:
            # unknown total: a pulsing bar until the stage finishes
            bar = ProgressBar(total=None if not finished else 1.0, completed=1.0 if finished else 0, width=bar_width)
            count = f"{done}"
        rate = f"{e.get('rate') or 0:.1f} {e.get('unit', 'items')}/s"
        eta = eta_seconds(e)
        tail = "done" if finished else (f"eta {fmt_seconds(eta)}" if eta is not None else "")
        t.add_row(stage, bar, count, Text(f"{rate}  {tail}", style="dim" if finished else ""))
    return t


class ProgressPane(Static):
    """Call ``feed(event)`` for each progress event, then ``flush()`` once per batch of events."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.stages: dict[str, dict[str, Any]] = {}
        self.border_title = "progress"

    def on_mount(self) -> None:
        self.flush()

    def feed(self, event: dict[str, Any]) -> None:
        self.stages[event["stage"]] = event

    def flush(self) -> None:
        self.update(render_progress(self.stages, bar_width=max(10, min(40, self.size.width // 3 or 24))))

    def percent(self, stage: str) -> float | None:
        e = self.stages.get(stage)
        if not e or not e.get("total"):
            return None
        return 100.0 * e.get("done", 0) / e["total"]
