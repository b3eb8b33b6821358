"""Live panes of one running step: resources, a bar per stage, and the log tail. A thread worker tails the
step's ``events.jsonl`` and posts what arrived every quarter second, so the panes redraw a few times a
second however fast the step writes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from blase_tui.store.events import EventTail
from blase_tui.tui.widgets.metric_plot import MetricPlot
from blase_tui.tui.widgets.progress_pane import ProgressPane
from blase_tui.tui.widgets.resource_pane import ResourcePane
from blase_tui.tui.widgets.wrapped_log import WrappedLog
from blase_tui.tui.worker_errors import ShowsWorkerErrors

INTERVAL = 0.25
LOG_LINES = 2000


class StepPanes(ShowsWorkerErrors, Vertical):
    """``locate()`` returns the events file once the step has begun (None before); ``finished()`` tells when
    the step is over (its process gone), so the tail stops after reading the last events."""

    class Events(Message):
        def __init__(self, panes: StepPanes, events: list[dict[str, Any]]) -> None:
            super().__init__()
            self.panes, self.events = panes, events

    class Finished(Message):
        """The step ended: ``status`` is succeeded, failed or interrupted."""

        def __init__(self, panes: StepPanes, status: str) -> None:
            super().__init__()
            self.panes, self.status = panes, status

    def __init__(self, locate: Callable[[], Path | list[Path] | None], finished: Callable[[], bool], *, title: str = "",
                 budget: int | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.locate = locate
        self.is_finished = finished
        self.title = title
        self.budget = budget
        self.status = "starting"
        self.curves: dict[str, tuple[list[float], list[float]]] = {}  # metric -> (iterations, values)

    def compose(self) -> ComposeResult:
        yield Static(self._status_line(), id="panes-status", classes="section")
        with Horizontal(id="panes-top"):
            yield ResourcePane(budget=self.budget)
            yield ProgressPane()
        # long lines wrap (an error's hint must not fall off the right edge), again when the pane's width changes
        log = WrappedLog(id="panes-log", max_lines=LOG_LINES, auto_scroll=True)
        log.border_title = "log"
        with Horizontal(id="panes-bottom"):
            yield log
            # the step's quality metrics (loss, accuracy, …) as they arrive, beside the log on a wide terminal
            yield MetricPlot(id="panes-chart", xlabel="iteration")

    NARROW = 130
    _follow_log = True  # the log shows its newest lines (until the user scrolls up to read)
    _resized = False  # resized while following: the end moved, the user did not scroll away

    def on_mount(self) -> None:
        self.follow()

    def on_resize(self) -> None:
        # side by side the panes need about 130 columns; below that they stack
        self.set_class(self.size.width < self.NARROW, "narrow")
        self.query_one(ResourcePane).redraw()  # compact on a short terminal, with bars on a tall one
        if self._follow_log:  # a new size re-wraps the log: it was following, so it still ends at the newest line
            self._resized = True
            self.call_after_refresh(self.query_one(WrappedLog).scroll_end, animate=False)

    def _status_line(self) -> str:
        colour = {"running": "cyan", "succeeded": "green", "failed": "red", "interrupted": "yellow"}.get(self.status, "")
        status = f"[{colour}]{self.status}[/]" if colour else self.status
        return f"{self.title}  {status}" if self.title else status

    @work(thread=True, exclusive=True, group="panes", exit_on_error=False)
    def follow(self) -> None:
        worker = get_current_worker()
        tail: EventTail | None = None
        followed: list[Path] = []
        while not worker.is_cancelled:
            found = self.locate()
            # a pipeline's child goes from step to step: each step's events in turn, the one before read to its end
            paths = found if isinstance(found, list) else [found] if found is not None else []
            for path in paths[len(followed):]:
                if tail is not None:
                    events = tail.poll()
                    events.append({"type": "log", "t": time.time(), "message": f"── {path.parent.name} ──"})
                    self.post_message(self.Events(self, events))
                tail = EventTail(path)
                followed.append(path)
            over = self.is_finished()  # read before the tail, so the last events are never missed
            events = tail.poll() if tail is not None else []
            if events:
                self.post_message(self.Events(self, events))
            if over:
                final = [e for e in events if e.get("type") == "status" and e.get("status") != "running"]
                self.post_message(self.Finished(self, final[-1]["status"] if final else ""))
                return
            time.sleep(INTERVAL)

    def on_step_panes_events(self, message: Events) -> None:
        if message.panes is not self:
            return
        message.stop()
        resources = self.query_one(ResourcePane)
        progress = self.query_one(ProgressPane)
        lines: list[str] = []
        last_sample = None
        charted = False
        for e in message.events:
            kind = e.get("type")
            if kind == "resources":
                last_sample = e
            elif kind == "progress":
                progress.feed(e)
            elif kind == "log":
                stamp = time.strftime("%H:%M:%S", time.localtime(e.get("t", 0)))
                lines.extend(f"{stamp} {line}" for line in str(e.get("message", "")).splitlines() or [""])
            elif kind == "metric":
                it = f" @{e['iteration']}" if e.get("iteration") is not None else ""
                lines.append(f"metric {e.get('key')} = {e.get('value'):.6g}{it}")
                if e.get("iteration") is not None and isinstance(e.get("value"), int | float):
                    xs, ys = self.curves.setdefault(str(e["key"]), ([], []))
                    xs.append(float(e["iteration"]))
                    ys.append(float(e["value"]))
                    charted = True
            elif kind == "status":
                self.status = e.get("status", self.status)
        if last_sample is not None:
            resources.sample = last_sample
        if charted:
            self._chart()
        progress.flush()
        if lines:
            self.write_log(lines)
        self.query_one("#panes-status", Static).update(self._status_line())

    def _chart(self) -> None:
        """Up to three quality metrics (losses, accuracies, …; not timings or counts) on one live chart."""
        from blase_tui.tui.widgets.runs_table import metric_tier

        keys = [k for k in self.curves if metric_tier(k) < 2][:3]
        if not keys:
            return
        chart = self.query_one("#panes-chart", MetricPlot)
        chart.title = ", ".join(keys)
        for key in keys:
            chart.set_series(key, *self.curves[key])
        self.add_class("has-metrics")

    @property
    def log_lines(self) -> list[str]:
        """What the log pane holds, as text (its last LOG_LINES lines)."""
        return (self.query_one(WrappedLog).text or "").splitlines()

    def write_log(self, lines: list[str]) -> None:
        """Append lines to the log pane, following the newest unless the user scrolled up to read."""
        log = self.query_one(WrappedLog)
        follow = log.is_vertical_scroll_end or not log.has_focus or self._resized
        self._follow_log, self._resized = follow, False
        log.append(lines, scroll_end=follow)

    def on_step_panes_finished(self, message: Finished) -> None:
        if message.panes is not self:
            return
        if self.query_one(ResourcePane).sample is None:
            self.query_one(ResourcePane).update(Text("no resource samples: the step did not run (see the log)",
                                                     style="dim"))
        if message.status:
            self.status = message.status
        self.query_one(ResourcePane).end(self.status)
        self.query_one(ProgressPane).end(self.status)
        self.query_one("#panes-status", Static).update(self._status_line())
