"""Label: one record at a time, single keys from ``[labelling.keys]``. A key is committed to the store (in a
thread, so the screen never freezes on a slow disk) before the next record shows; the session has already read
the next records ahead, so it shows at once. Keys typed while a label is being saved wait in a queue, shown on
screen, and each applies to the record drawn after the one before it: no key is lost, and none is applied to a
record that was not on the screen."""

from __future__ import annotations

import time
from collections import deque
from typing import Any, ClassVar

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, ProgressBar, Static

from blase_tui.core.project import Project
from blase_tui.tui.screens.base import BlaseScreen


def render_fields(record: Any, key_name: str = "key", secondary_name: str | None = None) -> Group:
    """The record's ids (under the configured column names) and its configured fields, once each. The ids and
    the note on the object's other records each get the pane's whole width, wrapped between words, so a 19-digit
    candid is never cut whatever the fields' names; a field's long name or value folds."""
    names = [key_name, secondary_name or "id"] if record.secondary else [key_name]
    pad = max(len(n) for n in names)
    ids = Text()
    ids.append(key_name.ljust(pad), style="bold")
    ids.append(f"  {record.key}")
    if record.secondary:
        ids.append("\n")
        ids.append((secondary_name or "id").ljust(pad), style="bold")
        ids.append(f"  {record.secondary}")
        group = getattr(record, "group", None)
        if group and group[0] > 1:  # the object's other alerts: how many, and how they are labelled so far
            labelled = ", ".join(f"{label} ×{n}" for label, n in group[1].items()) or "none labelled yet"
            ids.append(f"\n{group[0]} records of this {secondary_name or 'id'} in the pool; {labelled}", style="dim")
    t = Table(box=None, show_header=False, padding=(0, 1), pad_edge=False)
    t.add_column(style="bold", overflow="fold", ratio=1)
    t.add_column(overflow="fold", ratio=1)
    for k, v in record.fields.items():
        if k in (key_name, secondary_name):
            continue
        if v is None or (isinstance(v, float) and v != v):
            v = "—"  # missing (None, NaN): a dash, not `None`
        elif isinstance(v, float):
            v = f"{v:.5g}"
        elif isinstance(v, list | tuple | np.ndarray):
            v = f"[{len(v)} values]"
        t.add_row(k, str(v))
    return Group(ids, t) if t.row_count else Group(ids)


def legend_text(entries: list[tuple[str, str]], width: int) -> Text:
    """The keys and what they do, ``[ r ] real``, wrapped between entries only: a key never ends a line
    without its meaning."""
    text, used = Text(), 0
    for key, meaning in entries:
        size = len(key) + 2 + 1 + len(meaning)
        if used and used + 2 + size > width:
            text.append("\n")
            used = 0
        elif used:
            text.append("  ")
            used += 2
        text.append(f" {key} ", style="bold reverse")
        text.append(f" {meaning}")
        used += size
    return text


def render_why(record: Any) -> Text:
    """Why the queue offered this record (the strategy's words) and its score."""
    text = Text()
    if record.why:
        text.append("picked: ", style="bold")
        text.append(record.why)
    else:
        text.append("records in pool order (no model yet)")
    if record.proba and "p(" not in (record.why or ""):
        text.append("\nmodel: " + ", ".join(f"p({k})={v:.2f}" for k, v in record.proba.items()))
    if record.score is not None:
        text.append(f"\nscore {record.score:.3g}", style="dim")
    if record.missing:
        text.append("\nthis record is no longer in the pool", style="red")
    return text


class LabelScreen(BlaseScreen):
    """Label records of the active-learning round: the configured keys label, s skips, u undoes, o opens the
    record's page, q saves and quits. Every label is saved before the next record shows."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "skip", "Skip", id="label.skip", tooltip="Pass on this record (not a label)"),
        Binding("u", "undo", "Undo", id="label.undo", tooltip="Take back the last label or skip"),
        Binding("o", "open_url", "Open page", id="label.open", tooltip="Open the record's page in the browser"),
        Binding("q,escape", "quit_label", "Save & quit", id="label.quit",
                tooltip="Labels are already saved; the round resumes next time"),
    ]

    class Ready(Message):
        def __init__(self, session: Any) -> None:
            super().__init__()
            self.session = session

    class Failed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    class Building(Message):
        def __init__(self, scanned: int, total: int | None) -> None:
            super().__init__()
            self.scanned, self.total = scanned, total

    class Show(Message):
        """The next record (or None at the end of the round), after ``saved`` was committed."""

        def __init__(self, record: Any, progress: tuple[int, int], saved: str, started: float) -> None:
            super().__init__()
            self.record, self.progress, self.saved, self.started = record, progress, saved, started

    def __init__(self, project: Project, *, strategy: str | None = None, n: int | None = None) -> None:
        super().__init__()
        self.project = project
        self.strategy, self.n = strategy, n
        self.session: Any = None
        self.record: Any = None
        self.busy = True
        self.last_latency: float | None = None
        self.latencies: list[float] = []
        self.saved: list[str] = []
        self.pending: deque[tuple[str, str]] = deque()  # keys typed while saving: (action, key), in order
        self.legend: list[tuple[str, str]] = []
        self.quit_when_saved = False

    def compose(self) -> ComposeResult:
        from blase_tui.tui.widgets.series_plot import SeriesPlot

        yield Static(f"blase · {self.project.name} · label", classes="title", id="label-title")
        with Horizontal(id="label-layout"):
            with Vertical(id="label-left"):
                yield Static("building the queue…", id="label-fields")
                yield Static("", id="label-why")
                yield ProgressBar(id="label-progress", show_eta=False)
                yield Static("", id="label-keys")
                yield Static("", id="label-status", classes="hint")
            with Vertical(id="label-right"):
                yield Static("", id="label-image")
                yield SeriesPlot("", id="label-series", empty_text="no series for this record")
        yield Footer()

    def on_mount(self) -> None:
        self.open_session()

    def help_rows(self) -> list[tuple[str, str]]:
        """The configured label keys, for `?`."""
        if self.session is None:
            return []
        return [(k, f"label it {v}") for k, v in self.session.keys.items()]

    def on_unmount(self) -> None:
        if self.session is not None:
            self.session.close()

    # ---- session -------------------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="label-open", exit_on_error=False)
    def open_session(self) -> None:
        from blase_tui.errors import BlaseError
        from blase_tui.labelling.session import LabellingSession

        try:
            session = LabellingSession(self.project, strategy=self.strategy, n=self.n,
                                       progress=lambda done, total: self.post_message(self.Building(done, total)))
            record = session.current()
        except BlaseError as exc:
            self.post_message(self.Failed(str(exc)))
            return
        self.post_message(self.Ready(session))
        self.post_message(self.Show(record, session.progress(), "", time.perf_counter()))

    def on_label_screen_building(self, message: Building) -> None:
        total = f" of {message.total:,}" if message.total else ""
        self.query_one("#label-fields", Static).update(f"scoring the pool: {message.scanned:,}{total} records…")

    def on_label_screen_failed(self, message: Failed) -> None:
        self.query_one("#label-fields", Static).update(Text(message.error, style="red"))
        self.query_one("#label-keys", Static).update("press q to go back")
        self.busy = False
        self.pending.clear()  # their records will not show

    def on_label_screen_ready(self, message: Ready) -> None:
        self.session = message.session
        r = self.session.round
        model = f"model {r.model}" if r.model else "no model yet"
        resumed = " (resumed)" if self.session.resumed else ""
        self.query_one("#label-title", Static).update(
            f"blase · {self.project.name} · label · round {r.number}{resumed} · {r.order} · {model}")
        self.check_model()
        self.legend = [*self.session.keys.items(), ("s", "skip"), ("u", "undo"), ("o", "open"), ("q", "quit")]
        self._draw_legend()

    def _draw_legend(self) -> None:
        widget = self.query_one("#label-keys", Static)
        if self.legend:
            widget.update(legend_text(self.legend, max(20, (widget.size.width or 80) - 2)))

    def on_resize(self) -> None:
        self.call_after_refresh(self._draw_legend)

    @work(thread=True, group="label-model", exit_on_error=False)
    def check_model(self) -> None:
        """Say so when the round's model is stale (the session decides; a few store reads, so in a worker)."""
        warning = self.session.model_warning()
        if warning:
            self.app.call_from_thread(self.notify, warning[0].upper() + warning[1:], severity="warning", timeout=12)

    def on_label_screen_show(self, message: Show) -> None:
        self.record = message.record
        done, target = message.progress
        bar = self.query_one("#label-progress", ProgressBar)
        bar.update(total=max(1, target), progress=done)
        if message.saved:
            self.saved.append(message.saved)
        status = f"{done} of {target} labelled this round"
        if message.saved:
            status += f"\n{message.saved}"  # its own line: a long key never pushes it out of sight
        if self.record is None:
            from blase_tui.tui.widgets.series_plot import SeriesPlot

            r = self.session.round  # the next model's run named after the round (as seed 002 named them by hand)
            self.query_one("#label-fields", Static).update(Text(
                f"Round done: {done} of {target} labelled. Train the next model (e.g. `blase step "
                f"{getattr(self.session.config, 'train_step', 'train')} --name round_{r.number}_{r.strategy}`),"
                " then label again. u takes the last label back; q quits.", style="green"))
            self.query_one("#label-why", Static).update("")
            self.query_one("#label-image", Static).display = False
            self.query_one(SeriesPlot).display = False
        else:
            self._draw(self.record)
        self.query_one("#label-status", Static).update(Text(status, no_wrap=True, overflow="ellipsis"))  # no split
        self.busy = False
        self.call_after_refresh(self._painted, message.started)

    def _painted(self, started: float) -> None:
        """Key to next record on screen: from the key's handler to the refresh that drew the record."""
        self.last_latency = time.perf_counter() - started
        self.latencies.append(self.last_latency)
        self._next_queued()
        if self.quit_when_saved and not self.busy and not self.pending:
            self.action_quit_label()

    def _draw(self, record: Any) -> None:
        from blase_tui.render import render_image_bytes
        from blase_tui.tui.widgets.series_plot import SeriesPlot

        cfg = self.session.config
        self.query_one("#label-fields", Static).update(render_fields(record, cfg.key, cfg.secondary))
        self.query_one("#label-why", Static).update(render_why(record))
        image = self.query_one("#label-image", Static)
        if record.images:  # several image columns (science, template, difference): side by side, named
            size = image.size
            n = len(record.images)
            width = max(8, (size.width or 40) // n - 1)
            grid = Table.grid(padding=(0, 1))
            for _ in range(n):
                grid.add_column(width=width)
            grid.add_row(*[render_image_bytes(data, width=width, height=max(4, (size.height or 16) - 1))
                           if data else Text("no image", style="dim") for data in record.images.values()])
            grid.add_row(*[Text(name, style="dim", justify="center") for name in record.images])
            image.update(grid)
            image.display = True
        elif record.image:
            size = image.size
            image.update(render_image_bytes(record.image, width=max(10, size.width or 40),
                                            height=max(5, size.height or 16)))
            image.display = True
        else:
            image.display = False
        plot = self.query_one(SeriesPlot)
        plot.clear()
        cfg = self.session.config.series
        if record.series and cfg is not None:
            xs = np.asarray(record.series.get(cfg.x, []), dtype=float)
            plot.invert_y = any("mag" in y.lower() for y in cfg.y)
            plot.title = f"{record.secondary or record.key}"
            for i, y in enumerate(cfg.y):
                ys = np.asarray(record.series.get(y, []), dtype=float)
                errs = None  # error bars: the y column's error column, when configured (yerr)
                if i < len(cfg.yerr) and len(record.series.get(cfg.yerr[i], [])) == len(xs):
                    errs = np.asarray(record.series[cfg.yerr[i]], dtype=float)
                if cfg.group and len(record.series.get(cfg.group, [])) == len(xs):
                    groups = np.asarray(record.series[cfg.group])
                    for g in np.unique(groups):
                        mask = groups == g
                        plot.set_series(f"{y} {cfg.group}={g}", xs[mask], ys[mask],
                                        yerr=errs[mask] if errs is not None else None)
                elif len(ys) == len(xs):
                    plot.set_series(y, xs, ys, yerr=errs)
            plot.display = True
        else:
            plot.display = False

    # ---- keys ----------------------------------------------------------------------------------------------
    def on_key(self, event: events.Key) -> None:
        # [labelling.keys] cannot hold s, u, o, q or ? (the config refuses them), so those reach the bindings
        if self.session is None:
            return
        if event.character and event.character in self.session.keys:
            event.stop()
            self._act("label", event.character)

    def _act(self, what: str, key: str = "") -> None:
        if self.session is None:
            return
        if self.busy or self.pending:
            # still saving the last key (or keys wait before this one): queue it for the record drawn next
            self.pending.append((what, key))
            self._show_queue()
            return
        self._apply(what, key)

    def _apply(self, what: str, key: str) -> None:
        if what != "undo" and self.record is None:
            self.notify("The round is done.", severity="warning")
            return
        self.busy = True
        self.query_one("#label-status", Static).update("saving…")
        self.commit(what, key, time.perf_counter())

    def _show_queue(self) -> None:
        keys = " ".join(key or what for what, key in self.pending)
        self.query_one("#label-status", Static).update(Text.assemble(
            "saving… ", (f"queued {len(self.pending)}: {keys}", "bold yellow"),
            "\neach applies to the next record as it shows; u takes one back"))

    def _next_queued(self) -> None:
        """The record on screen has been drawn: the oldest queued key applies to it."""
        if not self.pending or self.busy:
            return
        what, key = self.pending.popleft()
        if what != "undo" and self.record is None:  # the round ended under the queue: nothing to apply them to
            dropped = " ".join(k or w for w, k in [(what, key), *self.pending])
            self.pending.clear()
            self.notify(f"The round is done; the queued keys {dropped} had no record left.", severity="warning",
                        timeout=10)
            return
        self._apply(what, key)
        if self.pending:
            self._show_queue()

    def worker_failed(self, worker: Any) -> None:
        self.busy = False
        self.pending.clear()

    @work(thread=True, group="label-commit", exit_on_error=False)
    def commit(self, what: str, key: str, started: float) -> None:
        from blase_tui.errors import BlaseError

        try:
            if what == "label":
                row = self.session.label(key)
                saved = f"saved: {row.key} = {row.label}"
            elif what == "skip":
                row = self.session.skip()
                saved = f"skipped {row.key}"
            else:
                row = self.session.undo()
                saved = (f"undid {row.key} ({row.label or row.action})" if row is not None else "nothing to undo")
        except BlaseError as exc:
            self.post_message(self.Failed(str(exc)))
            return
        self.post_message(self.Show(self.session.current(), self.session.progress(), saved, started))

    def action_skip(self) -> None:
        self._act("skip")

    def action_undo(self) -> None:
        self._act("undo")

    def action_open_url(self) -> None:
        if self.record is None or not self.record.url:
            self.notify("No page for this record (set `url` in [labelling]).", severity="warning")
            return
        self._open(self.record.url)

    @work(thread=True, group="label-url", exit_on_error=False)
    def _open(self, url: str) -> None:
        import webbrowser

        opened = webbrowser.open(url)
        self.app.call_from_thread(self.notify, f"opened {url}" if opened else f"no browser here; the page is {url}")

    def action_quit_label(self) -> None:
        if (self.busy or self.pending) and self.session is not None:
            self.quit_when_saved = True  # a label is being saved (or keys wait): quit once they are applied
            self.query_one("#label-status", Static).update("saving… then quitting")
            return
        if self.session is not None:
            done, target = self.session.progress()
            number = self.session.round.number
            left = "; run `blase label` again to go on" if done < target and not self.session.done else ""
            self.app.summary = f"round {number}: {done}/{target} labelled{left}."  # type: ignore[attr-defined]
        self.dismiss(None)
