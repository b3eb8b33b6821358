"""Run: one run's step executions as a timeline, its params, metrics with plots, logs, artifacts with
previews, and what each step read and wrote. A running run also gets live panes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Input, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option

from blase_tui.core.fmt import STATUS_STYLE, fmt_bytes, fmt_hash, fmt_seconds, fmt_time, fmt_value
from blase_tui.core.project import Project
from blase_tui.store.exclusions import dataset_label
from blase_tui.store.records import RunDescription
from blase_tui.tui.screens.base import BlaseScreen
from blase_tui.tui.widgets.wrapped_log import WrappedLog

MAX_POINTS = 2000
LOG_TAIL = 256 * 1024


def render_timeline(desc: RunDescription, *, now: float, width: int = 30) -> Group:
    """Each step execution as a bar placed on the run's time span, with its status, duration and peak RSS."""
    steps = desc.steps
    start = min([s.started for s in steps if s.started] + [desc.run.started or now])
    end = max([(s.ended or now) for s in steps if s.started] + [desc.run.ended or now])
    span = max(end - start, 1e-6)
    t = Table(box=None, padding=(0, 1), header_style="bold")
    for col in ("step", "status", "", "started", "duration", "peak rss", "cpu"):
        t.add_column(col, no_wrap=True)
    for s in steps:
        if not s.started:
            continue
        a = int((s.started - start) / span * width)
        b = max(a + 1, int(((s.ended or now) - start) / span * width))
        style = STATUS_STYLE.get(s.status, "")
        bar = Text(" " * a) + Text("█" * (b - a), style=style) + Text(" " * max(0, width - b))
        reused = " (reused)" if s.skipped_from else ""
        t.add_row(s.step, Text(s.status + reused, style=style), bar, fmt_time(s.started)[11:],
                  fmt_seconds(max(0.0, (s.ended or now) - s.started)), fmt_bytes(s.peak_rss),
                  f"{s.cpu_seconds:.1f} s" if s.cpu_seconds is not None else "-")
    if not steps:
        return Group(Text("no step executions in this run (made by Track?)", style="dim"))
    errors = [Text(f"{s.step}: {s.error.strip().splitlines()[-1]}", style="red") for s in steps if s.error]
    # a reused execution ran nothing: say whose outputs it refers to, as `blase runs show` does
    reused_lines = [Text(f"{s.step}: reused the outputs of run {s.reused_from_run or '(gone)'} (nothing ran)",
                         style="dim") for s in steps if s.skipped_from]
    return Group(t, *reused_lines, *errors)


WIDE = 100  # from this content width, params sit beside metrics and the run's facts beside its lineage (when they fit)


def _section(title: str) -> Table:
    return Table(box=None, padding=(0, 1), header_style="bold", title=title, title_justify="left",
                 title_style="bold magenta")


LineageRow = tuple[str, str, list[str], str]  # direction ("fed by" or "fed"), the run's id, its steps, via what


def render_details(desc: RunDescription, width: int = 80, lineage_rows: Sequence[LineageRow] = ()) -> Group:
    """Params and last metrics (run-level and per step), datasets read and written, the runs that fed this one
    and those it fed (``lineage_rows``), tags, git and environment; side by side from ``WIDE`` columns."""
    params = _section("params")
    for col in ("step", "param", "value"):
        params.add_column(col)
    metrics = _section("metrics (last value)")
    for col in ("step", "metric", "value"):
        metrics.add_column(col, justify="right" if col == "value" else "left")
    for owner, p, m in [("(run)", desc.params, desc.metrics)] + [(s.step, s.params, s.metrics) for s in desc.steps]:
        for k, v in p.items():
            params.add_row(owner, k, fmt_value(v))
        for k, v in m.items():
            metrics.add_row(owner, k, fmt_value(v))
    data = _section("data read and written")
    for col in ("step", "role", "name", "records", "size", "hash"):
        data.add_column(col, no_wrap=col != "name")
    for owner, sets in [("(run)", desc.datasets)] + [(s.step, s.datasets) for s in desc.steps]:
        for d in sets:
            data.add_row(owner, d.role, dataset_label(d), str(d.records or "-"), fmt_bytes(d.bytes), fmt_hash(d.hash))
    lineage = None
    if lineage_rows:
        lineage = _section("lineage (blase runs lineage)")
        for col in ("", "run", "steps", "via"):
            lineage.add_column(col, no_wrap=col != "via")
        grouped: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
        for direction, run_id, steps, via in lineage_rows:  # one row per run, whatever linked it
            grouped.setdefault((direction, run_id), (steps, []))[1].append(via)
        for (direction, run_id), (steps, vias) in grouped.items():
            lineage.add_row(direction, run_id, " ".join(steps), ", ".join(vias))
    meta = _section("run")
    meta.show_header = False
    meta.add_column(style="bold")
    meta.add_column()
    run = desc.run
    meta.add_row("id", run.id)
    meta.add_row("name", run.name or "-")
    meta.add_row("git", f"{run.git_commit or '-'}{' (dirty)' if run.git_dirty else ''}")
    meta.add_row("environment", fmt_hash(run.env_hash))
    for k, v in desc.tags.items():
        meta.add_row(f"tag {k}", str(v))
    if run.note:
        meta.add_row("note", run.note)

    shown_params = params if params.row_count else Text("no params", style="dim")
    shown_metrics = metrics if metrics.row_count else Text("no metrics", style="dim")
    shown_data = data if data.row_count else Text("no datasets recorded", style="dim")
    parts: list[Any] = []
    for left, right in ((shown_params, shown_metrics), (meta, lineage)):
        if right is None:
            parts += [left, Text("")]
        elif width >= WIDE and _fit_side_by_side(left, right, width):
            pair = Table.grid(padding=(0, GAP))
            pair.add_column(vertical="top")
            pair.add_column(vertical="top")
            pair.add_row(left, right)
            parts += [pair, Text("")]
        else:
            parts += [left, Text(""), right, Text("")]
        if left is shown_params:
            parts += [shown_data, Text("")]
    return Group(*parts[:-1])


GAP = 6


def _fit_side_by_side(left: Any, right: Any, width: int) -> bool:
    """Whether two tables fit ``width`` beside each other uncut (else they are stacked: a cut param name or
    value reads worse than a longer page)."""
    from rich.console import Console
    from rich.measure import Measurement

    console = Console(width=10_000)
    need = sum(Measurement.get(console, console.options, part).maximum for part in (left, right))
    return need + GAP <= width


class RunScreen(BlaseScreen):
    """One run: overview (timeline, params, data), metrics, logs, artifacts; live panes while running."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="run.back", tooltip="Back to the runs"),
        Binding("r", "reload", "Reload", id="run.reload", tooltip="Read the run again"),
        Binding("1", "tab('overview')", "Overview", show=False, id="run.tab1"),
        Binding("2", "tab('metrics')", "Metrics", show=False, id="run.tab2"),
        Binding("3", "tab('logs')", "Logs", show=False, id="run.tab3"),
        Binding("4", "tab('artifacts')", "Artifacts", show=False, id="run.tab4"),
        Binding("5", "tab('live')", "Live", show=False, id="run.tab5"),
        Binding("6", "tab('monitor')", "Monitor", show=False, id="run.tab6"),
        Binding("slash", "search", "Search", show=False, id="run.search",
                tooltip="In the Logs tab: show only the lines that hold some words"),
    ]

    class Loaded(Message):
        def __init__(self, desc: RunDescription, lineage: list[LineageRow], metrics: list[tuple[int, str, str]]) -> None:
            super().__init__()
            self.desc, self.lineage, self.metrics = desc, lineage, metrics

    class Gone(Message):
        """The run is not in the store (deleted here, by `blase runs delete`, or from another window)."""

    class Monitored(Message):
        def __init__(self, renderable: Any) -> None:
            super().__init__()
            self.renderable = renderable

    class Series(Message):
        def __init__(self, label: str, xs: list[float], ys: list[float]) -> None:
            super().__init__()
            self.label, self.xs, self.ys = label, xs, ys

    class LogText(Message):
        def __init__(self, step: str, text: str) -> None:
            super().__init__()
            self.step, self.text = step, text

    def __init__(self, project: Project, run_id: str, *, tab: str = "overview") -> None:
        """``tab``: the tab it opens on ("live" for a step known to be running: the system view)."""
        super().__init__()
        self.project = project
        self.run_id = run_id
        self.initial_tab = tab
        self.gone = False  # the run is not in the store (deleted)
        self.desc: RunDescription | None = None
        self.lineage: list[LineageRow] = []  # the runs that fed this one and those it fed, one link each
        self._live_for: int | None = None

    def compose(self) -> ComposeResult:
        from blase_tui.tui.widgets.artifact_preview import ArtifactPreview
        from blase_tui.tui.widgets.metric_plot import MetricPlot
        from blase_tui.tui.widgets.monitor_view import MonitorView

        yield Static(f"blase · {self.project.name} · run {self.run_id}", classes="title", id="run-title")
        with TabbedContent(id="run-tabs", initial=self.initial_tab):
            with TabPane("1 Overview", id="overview"), VerticalScroll(id="overview-scroll"):
                yield Static("loading…", id="timeline")
                yield Static("", id="details")
            with TabPane("2 Metrics", id="metrics"), Horizontal(id="metrics-layout"):
                yield OptionList(id="metric-list")
                yield MetricPlot(id="metric-plot")
            with TabPane("3 Logs", id="logs"), Horizontal(id="log-layout"):
                yield OptionList(id="log-steps")
                with Vertical(id="log-side"):
                    yield Input(placeholder="search the log: lines holding these words (escape: all lines)",
                                id="log-search")
                    # wrapped, not cut: a long line (a traceback's message, a hint) is read whole
                    yield WrappedLog(id="run-log", max_lines=5000)
                    yield Static("/ searches the log", id="log-found", classes="hint")
            with TabPane("4 Artifacts", id="artifacts"), Horizontal(id="artifacts-layout"):
                yield Static("", id="artifact-tree-slot")
                yield ArtifactPreview(id="artifact-preview")
            with TabPane("5 Live", id="live"):
                yield Static("This run has no running step.", id="live-empty", classes="hint")
            with TabPane("6 Monitor", id="monitor"), VerticalScroll():
                yield MonitorView(id="monitor-view")
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        self.set_interval(1.0, self._poll_running)
        # the overview scrolls with the keys at once (PageDown, Down): a long one at 80x24 is all reachable
        if self.initial_tab == "overview":
            self.query_one("#overview-scroll").focus()

    def _poll_running(self) -> None:
        if self.desc is not None and self.desc.run.status == "running":
            self.load()

    @work(thread=True, exclusive=True, group="run-load", exit_on_error=False)
    def load(self) -> None:
        from blase_tui.errors import ConfigError

        store = self.project.store
        try:
            desc = store.describe_run(self.run_id)
        except ConfigError:
            if store.get_run(self.run_id) is not None:
                raise
            self.post_message(self.Gone())
            return
        names = {s.id: s.step for s in desc.steps}
        metrics = [(sid, names.get(sid, "run"), key) for sid, key in store.metric_keys(self.run_id)]
        from blase_tui.store.lineage import lineage

        up, down = lineage(store, self.run_id, depth=1), lineage(store, self.run_id, down=True, depth=1)
        links: list[LineageRow] = [("fed by", link.source, up.runs[link.source]["steps"], link.via) for link in up.links] + [
            ("fed", link.target, down.runs[link.target]["steps"], link.via) for link in down.links]
        self.post_message(self.Loaded(desc, links, metrics))
        self._load_monitor(desc, metrics)

    def _load_monitor(self, desc: RunDescription, metrics: list[tuple[int, str, str]]) -> None:
        """The newest step of the run that kept drift windows (``monitor/``), rendered for the monitor tab."""
        from blase_tui.tui.widgets.monitor_view import render_monitor

        store = self.project.store
        for step in reversed(desc.steps):
            folder = store.run_dir(self.run_id) / step.folder / "artifacts" / "monitor"
            if folder.is_dir():
                series = {key.removeprefix("performance/"): [float(p.value) for p in store.metric_series(
                    self.run_id, sid, key) if p.value is not None]
                    for sid, _, key in metrics if sid == step.id and key.startswith("performance/")}
                width = max(60, self.size.width - 4)
                self.post_message(self.Monitored(render_monitor(folder, series, width=width)))
                return
        self.post_message(self.Monitored(None))

    def on_run_screen_gone(self, _: Gone) -> None:
        """Said in one line where the run would be, instead of "loading…" for ever; nothing is read again."""
        self.desc, self.gone = None, True
        self.query_one("#run-title", Static).update(
            Text.assemble(f"blase · {self.project.name} · run {self.run_id} ", ("deleted", "red")))
        self.query_one("#timeline", Static).update(Text(
            "This run was deleted (it is not in the store any more) · escape goes back", style="yellow"))
        self.query_one("#details", Static).update("")
        tabs = self.query_one(TabbedContent)
        tabs.active = "overview"
        for tab in ("metrics", "logs", "artifacts", "live", "monitor"):
            tabs.hide_tab(tab)

    def on_run_screen_monitored(self, message: Monitored) -> None:
        from blase_tui.tui.widgets.monitor_view import MonitorView

        tabs = self.query_one(TabbedContent)
        if message.renderable is None:
            tabs.hide_tab("monitor")
            return
        tabs.show_tab("monitor")
        self.query_one(MonitorView).show(message.renderable)

    def _draw_overview(self, now: float) -> None:
        assert self.desc is not None
        # the bar shares the line with six columns (about 80 cells); it gets what is left, 10 cells to half the width
        bar = max(10, min(self.size.width // 2, self.size.width - 84))
        self.query_one("#timeline", Static).update(render_timeline(self.desc, now=now, width=bar))
        self.query_one("#details", Static).update(render_details(self.desc, width=max(20, self.size.width - 4),
                                                                 lineage_rows=self.lineage))

    def on_resize(self) -> None:
        if self.desc is not None:
            self._draw_overview(getattr(self.app, "now", time.time)())

    def on_run_screen_loaded(self, message: Loaded) -> None:
        first = self.desc is None
        old = self.desc
        self.desc = desc = message.desc
        self.lineage = message.lineage
        now = getattr(self.app, "now", time.time)()
        status = desc.run.status
        self.query_one("#run-title", Static).update(
            Text.assemble(f"blase · {self.project.name} · run {self.run_id} ", (status, STATUS_STYLE.get(status, "")),
                          f" · {desc.run.name}" if desc.run.name else "")
        )
        self._draw_overview(now)
        metric_list = self.query_one("#metric-list", OptionList)
        last = {s.id: s.metrics for s in desc.steps}
        last[0] = desc.metrics
        # one line per metric, never wrapped: the value first (right-aligned, so a narrow list cuts the name, never
        # the value), then the step's name only when the run has several steps' metrics
        several = len({sid for sid, _, _ in message.metrics}) > 1
        values = [fmt_value(last.get(sid, {}).get(key)) for sid, _, key in message.metrics]
        pad = max((len(v) for v in values), default=0)
        prompts = [f"{value:>{pad}}  {step}: {key}" if several else f"{value:>{pad}}  {key}"
                   for value, (sid, step, key) in zip(values, message.metrics, strict=True)]
        if first or prompts != [str(o.prompt) for o in metric_list.options]:
            highlighted = metric_list.highlighted
            metric_list.clear_options()
            metric_list.add_options([Option(Text(text, no_wrap=True, overflow="ellipsis"), id=f"{sid}|{key}")
                                     for text, (sid, _, key) in zip(prompts, message.metrics, strict=True)])
            if message.metrics:
                metric_list.highlighted = highlighted if highlighted is not None else 0
        steps_list = self.query_one("#log-steps", OptionList)
        statuses = [(s.id, s.status) for s in desc.steps]
        if first or (old and [(s.id, s.status) for s in old.steps] != statuses):
            highlighted = steps_list.highlighted
            steps_list.clear_options()
            steps_list.add_options([Option(f"{s.step} · {s.status}", id=str(s.id)) for s in desc.steps])
            if desc.steps:
                steps_list.highlighted = highlighted if highlighted is not None else self._first_log(desc)
        if first or (old and old.run.status != desc.run.status):
            self._mount_tree()
        elif status == "running":
            self._follow_running(desc)
        self._sync_live()

    def _follow_running(self, desc: RunDescription) -> None:
        """While the run runs (the screen reads it every second), its files and the log shown are read again:
        sizes grow, files appear, log lines come. When it ends, the last read (status changed) is the final one."""
        from blase_tui.tui.widgets.artifact_tree import ArtifactTree

        for tree in self.query(ArtifactTree):
            tree.reload()  # rebuilt only when something changed
        steps_list = self.query_one("#log-steps", OptionList)
        if steps_list.highlighted is not None and steps_list.highlighted < len(desc.steps):
            step = desc.steps[steps_list.highlighted]
            if step.status == "running":
                self.load_log(step.id)

    def _first_log(self, desc: RunDescription) -> int:
        """The step whose log the Logs tab opens on: the last one that failed or was interrupted, else the last
        one whose log has something in it (a step that wrote nothing opened on "(empty log)"), else the last."""
        steps = desc.steps
        for i in range(len(steps) - 1, -1, -1):
            if steps[i].status in ("failed", "interrupted"):
                return i
        folder = self.project.store.run_dir(desc.run.id)
        for i in range(len(steps) - 1, -1, -1):
            try:
                if (folder / steps[i].folder / "log.txt").stat().st_size:
                    return i
            except OSError:
                continue
        return len(steps) - 1

    # ---- metrics -------------------------------------------------------------------------------------------
    @on(OptionList.OptionHighlighted, "#metric-list")
    def _metric_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        sid, key = str(event.option.id).split("|", 1)
        value, _, name = str(event.option.prompt).strip().partition("  ")  # "0.934  train: accuracy"
        self.load_series(int(sid), key, f"{name.strip()} = {value}")

    @work(thread=True, exclusive=True, group="series", exit_on_error=False)
    def load_series(self, step_run_id: int, key: str, label: str) -> None:
        points = self.project.store.metric_series(self.run_id, step_run_id, key)
        stride = max(1, len(points) // MAX_POINTS)
        xs, ys = [], []
        for i, p in enumerate(points[::stride]):
            xs.append(float(p.iteration) if p.iteration is not None else float(i * stride))
            ys.append(float(p.value) if p.value is not None else float("nan"))
        self.post_message(self.Series(label, xs, ys))

    def on_run_screen_series(self, message: Series) -> None:
        from blase_tui.tui.widgets.metric_plot import MetricPlot

        plot = self.query_one(MetricPlot)
        plot.clear()  # one metric at a time: the highlighted one
        plot.title = message.label
        plot.set_series(message.label.split(" = ")[0], message.xs, message.ys)

    # ---- logs ----------------------------------------------------------------------------------------------
    @on(OptionList.OptionHighlighted, "#log-steps")
    def _log_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.load_log(int(str(event.option.id)))

    @work(thread=True, exclusive=True, group="log", exit_on_error=False)
    def load_log(self, step_run_id: int) -> None:
        assert self.desc is not None
        step = next(s for s in self.desc.steps if s.id == step_run_id)
        path = self.project.store.run_dir(self.run_id) / step.folder / "log.txt"
        try:
            with open(path, "rb") as fh:
                fh.seek(0, 2)
                size = fh.tell()
                fh.seek(max(0, size - LOG_TAIL))
                text = fh.read().decode("utf-8", errors="replace")
            if size > LOG_TAIL:
                text = f"… (last {LOG_TAIL // 1024} KiB of {fmt_bytes(size)})\n" + text.split("\n", 1)[-1]
        except FileNotFoundError:
            text = f"(no log.txt in {path.parent})"
        self.post_message(self.LogText(step.step, text))

    def on_run_screen_log_text(self, message: LogText) -> None:
        log = self.query_one("#run-log", WrappedLog)
        log.show(message.text.rstrip("\n") or "(empty log)")
        self._log_found(log.find(log.search) if log.search else None)

    def action_search(self) -> None:
        if self.query_one(TabbedContent).active != "logs":
            self.query_one(TabbedContent).active = "logs"
        box = self.query_one("#log-search", Input)
        box.add_class("visible")
        box.focus()

    @on(Input.Changed, "#log-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self._log_found(self.query_one("#run-log", WrappedLog).find(event.value))

    @on(Input.Submitted, "#log-search")
    def _search_done(self, event: Input.Submitted) -> None:
        self.query_one("#run-log", WrappedLog).focus()

    def _log_found(self, found: tuple[int, int] | None) -> None:
        log = self.query_one("#run-log", WrappedLog)
        text = (f"{found[0]} of {found[1]} lines hold `{log.search}` · escape shows them all"
                if found is not None and log.search else "/ searches the log")
        self.query_one("#log-found", Static).update(Text(text, no_wrap=True, overflow="ellipsis"))

    def _clear_search(self) -> bool:
        box = self.query_one("#log-search", Input)
        if not box.has_class("visible"):
            return False
        box.value = ""
        box.remove_class("visible")
        self._log_found(self.query_one("#run-log", WrappedLog).find(""))
        self.query_one("#log-steps").focus()  # up and down pick a step's log again, as before the search
        return True

    # ---- artifacts -----------------------------------------------------------------------------------------
    def _mount_tree(self) -> None:
        from blase_tui.tui.widgets.artifact_tree import ArtifactTree

        trees = self.query(ArtifactTree)
        if trees:  # the run changed (a step ended): read its folder again, keeping what is expanded
            trees.first().reload()
            return
        slot = self.query_one("#artifact-tree-slot", Static)
        tree = ArtifactTree(self.project.store.run_dir(self.run_id), id="artifact-tree")
        slot.parent.mount(tree, before=slot)  # type: ignore[union-attr]
        slot.display = False

    def on_artifact_tree_selected(self, message: Any) -> None:
        from blase_tui.tui.widgets.artifact_preview import ArtifactPreview

        self.query_one(ArtifactPreview).show(Path(message.path))

    # ---- live ----------------------------------------------------------------------------------------------
    def _sync_live(self) -> None:
        """Live panes for the running step of a running run (started from here, from cron, anywhere)."""
        from blase_tui.tui.widgets.step_panes import StepPanes

        assert self.desc is not None
        tabs = self.query_one(TabbedContent)
        running = [s for s in self.desc.steps if s.status == "running"]
        if self._live_for is None and not running:
            if tabs.active == "live":  # opened on its Live tab, but the step ended meanwhile
                tabs.active = "overview"
            tabs.hide_tab("live")  # a finished run has nothing live; the tab comes back if a step starts
            return
        tabs.show_tab("live")
        if not running or running[-1].id == self._live_for:
            return
        step = running[-1]
        self._live_for = step.id
        pane = self.query_one("#live", TabPane)
        for child in list(pane.children):
            child.remove()
        events = self.project.store.run_dir(self.run_id) / step.folder / "events.jsonl"
        sid = step.id

        def finished() -> bool:
            row = self.project.store.step_run(sid) if sid is not None else None
            return row is None or row.status != "running"

        pane.mount(StepPanes(lambda: events, finished, title=f"{step.step} (pid {step.pid})",
                             budget=self.project.config.memory_budget))
        self.query_one(TabbedContent).active = "live"

    FOCUS = {"overview": "#overview-scroll", "monitor": "#monitor-view", "metrics": "#metric-list", "logs": "#log-steps", "artifacts": "#artifact-tree", "live": "#panes-log"}

    def action_tab(self, tab: str) -> None:
        if self.gone:
            return  # a deleted run has only the line that says so
        if tab == "live" and self._live_for is None:
            self.notify("Nothing is running in this run.", severity="warning")
            return
        self.query_one(TabbedContent).active = tab

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # the keys of a tab work at once: focus its main widget, not the tab bar
        selector = self.FOCUS.get(str(event.pane.id))
        if selector:
            for widget in self.query(selector):
                widget.focus()
                break

    def action_reload(self) -> None:
        self.load()

    def action_back(self) -> None:
        if self._clear_search():  # escape first leaves the log search
            return
        self.app.pop_screen()
