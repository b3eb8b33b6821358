"""Runs: every run of the project, newest first, live. The store is watched (watchdog on ``runs/``): a commit
by any process — a TUI launch, a cron job — triggers a small query for the runs that changed, and only
those rows are updated."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Footer, Input, Static

from blase_tui.core.fmt import fmt_run_tail
from blase_tui.core.project import Project
from blase_tui.core.storewatch import StoreWatcher
from blase_tui.tui.screens.base import BlaseScreen
from blase_tui.tui.widgets.runs_table import RunsTable

# Clocks of writers may trail ours a little; the window of "changed since" looks this far back.
SLACK = 5.0
# Without a watcher event (e.g. a store on a network share) the table still refreshes this often.
POLL = 3.0
DEAD_CHECK = 2.0  # seconds between looks for runs whose process died


class RunsTableScreen(BlaseScreen):
    """What a screen around a :class:`RunsTable` shares (a project's runs, every project's runs): the filter box
    (``#filter``), sort and reverse, marks; ``_update_status`` says the counts, ``leave`` is escape without a
    filter."""

    def _update_status(self) -> None:
        raise NotImplementedError

    def leave(self) -> None:
        self.app.pop_screen()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_one(RunsTable).set_filter(event.value)
        self._update_status()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self.query_one("#filter", Input).remove_class("visible")
        self.query_one(RunsTable).focus()

    def action_escape(self) -> None:
        box = self.query_one("#filter", Input)
        if box.value or box.has_class("visible"):
            self.action_clear_filter()
        else:
            self.leave()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("visible")
        self.query_one(RunsTable).set_filter("")
        self.query_one(RunsTable).focus()
        self._update_status()

    def action_sort(self) -> None:
        title = self.query_one(RunsTable).cycle_sort()
        self.notify(f"sorted by {title}", timeout=1.5)

    def action_reverse(self) -> None:
        self.query_one(RunsTable).reverse()

    def on_runs_table_marked(self, _: RunsTable.Marked) -> None:
        self._update_status()


class RunsScreen(RunsTableScreen):
    """Runs of the open project: enter opens one, space marks two for compare, / filters, l launches."""

    # the footer shows what fits in 80 columns; ? and the palette list every key
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="runs.filter", tooltip="Filter: words, or metric>0.9"),
        Binding("s", "sort", "Sort", id="runs.sort", tooltip="Sort by the next column"),
        Binding("m", "columns", "Metrics", show=False, id="runs.columns",
                tooltip="Pick the metric columns (and which step's value each shows)"),
        Binding("S", "reverse", "Reverse", show=False, id="runs.reverse", tooltip="Reverse the order"),
        Binding("c", "compare", "Compare", id="runs.compare", tooltip="Compare the two marked runs (space marks)"),
        Binding("l", "launch", "Launch", id="runs.launch", tooltip="Pick a step, edit its params, start it"),
        Binding("e", "edit", "Edit", show=False, id="runs.edit", tooltip="Name, note and tags of this run"),
        Binding("D", "delete", "Delete", show=False, id="runs.delete",
                tooltip="Delete the marked runs, or the one under the cursor (asks first)"),
        Binding("x", "stop", "Stop", show=False, id="runs.stop",
                tooltip="Stop this run's running steps, whoever started them"),
        Binding("J", "jobs", "Jobs", show=False, id="runs.jobs", tooltip="Live panes of the steps launched from here"),
        Binding("L", "label", "Label", show=False, id="runs.label", tooltip="Label records for active learning"),
        Binding("M", "models", "Models", show=False, id="runs.models", tooltip="Model versions, aliases and cards"),
        Binding("a", "assistant", "Assistant", show=False, id="runs.assistant",
                tooltip="Ask about the runs; let it run steps as the autonomy of blase.toml allows"),
        Binding("P", "pipeline", "Pipeline", show=False, id="runs.pipeline",
                tooltip="The pipeline's steps, what is stale and why; run it from there"),
        Binding("r", "reload", "Reload", show=False, id="runs.reload", tooltip="Read every run again"),
        Binding("p", "projects", "Projects", show=False, id="runs.projects", tooltip="Known projects"),
        Binding("escape", "escape", "Back", show=False, id="runs.escape",
                tooltip="Clear the filter; without one, back to the projects"),
    ]

    class Rows(Message):
        """Rows read from the store (all of them, or the ones that changed)."""

        def __init__(self, rows: list[dict[str, Any]], full: bool, seq: int, started: float,
                     gone: list[str] | None = None) -> None:
            super().__init__()
            self.rows, self.full, self.seq, self.started = rows, full, seq, started
            self.gone = gone or []  # runs deleted since the last read, by any process

    class StoreChanged(Message):
        """The watcher saw a commit."""

    def __init__(self, project: Project) -> None:
        super().__init__()
        self.project = project
        self._since: float | None = None  # read and written on the event loop only
        self._rowid = 0
        self._seq = 0  # refreshes are numbered; an older one arriving late is dropped
        self._dead_checked = 0.0
        self._applied = -1
        self._watcher: StoreWatcher | None = None
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Static(f"blase · {self.project.name} · runs", classes="title", id="runs-title")
        yield Input(placeholder="filter: words (id, name, status, step) or metric>0.9 — enter keeps, escape clears",
                    id="filter")
        yield RunsTable(id="runs-table", now=getattr(self.app, "now", time.time))
        yield Static("loading runs…", id="runs-status", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(RunsTable).focus()
        self.refresh_rows(full=True)
        runs_dir = self.project.root / "runs"
        self._watcher = StoreWatcher(runs_dir, lambda: self.post_message(self.StoreChanged())).start()
        self.set_interval(POLL, lambda: self.refresh_rows(full=False))
        # durations of running runs move on
        self.set_interval(1.0, self._tick)

    def on_unmount(self) -> None:
        if self._watcher is not None:
            self._watcher.stop(wait=False)

    def _tick(self) -> None:
        table = self.query_one(RunsTable)
        if any(r["status"] == "running" for r in table.rows.values()):
            table.refresh()

    def on_runs_screen_store_changed(self, _: StoreChanged) -> None:
        self.refresh_rows(full=False)

    def refresh_rows(self, full: bool) -> None:
        """Read all runs (``full``) or those changed since the last read, in a worker."""
        if not full and self._since is None:
            return  # the first full load is still on its way
        self._seq += 1
        # every few seconds, runs whose process died (kill -9, a crash) are marked interrupted, as the next
        # blase command would: the table never shows a dead run as running for long
        check_dead = full or time.monotonic() - self._dead_checked > DEAD_CHECK
        if check_dead:
            self._dead_checked = time.monotonic()
        self._read_rows(full, self._seq, None if full else self._since, self._rowid, check_dead)

    @work(thread=True, group="runs-refresh", exit_on_error=False)
    def _read_rows(self, full: bool, seq: int, since: float | None, after_rowid: int, check_dead: bool) -> None:
        from blase_tui.store.query import deleted_runs, run_rows

        started = time.time()
        store = self.project.store
        if check_dead:
            store.recover_dead()
        rows = run_rows(store, changed_since=since, after_rowid=after_rowid)
        gone = deleted_runs(store, since) if since is not None else []
        self.post_message(self.Rows(rows, full, seq, started, gone))

    def on_runs_screen_rows(self, message: Rows) -> None:
        if message.seq < self._applied and not message.full:
            return  # a slower, older read: what it holds is already shown
        self._applied = max(self._applied, message.seq)
        table = self.query_one(RunsTable)
        if message.full:  # runs deleted since (here or by `blase runs delete`) leave the table
            table.forget(set(table.rows) - {r["id"] for r in message.rows})
        gone = set(message.gone)  # deleted by any process since the last read (maybe after it read the rows)
        table.upsert([r for r in message.rows if r["id"] not in gone])
        if gone:
            table.forget(gone & set(table.rows))
        self._rowid = max([self._rowid, *(r["rowid"] for r in message.rows)])
        self._since = message.started - SLACK if self._since is None else max(self._since, message.started - SLACK)
        if message.full:
            self.loaded = True
        self._update_status()

    def _update_status(self) -> None:
        table = self.query_one(RunsTable)
        total, shown = len(table.rows), len(table.order)
        running = sum(1 for r in table.rows.values() if r["status"] == "running")
        parts = [f"{total} runs" if total == shown else f"{shown} of {total} runs match"]
        problem = getattr(table, "problem", None)
        if problem:
            parts = [f"[yellow]{escape(problem)}[/]"]
        if running:
            parts.append(f"[cyan]{running} running[/]")
        jobs = len(getattr(self.app, "running_jobs", list)())
        if jobs:
            parts.append(f"{jobs} launched here (J)")
        if table.marked:
            parts.append("marked: " + ", ".join(fmt_run_tail(m) for m in table.marked) + (" — c compares" if len(table.marked) == 2 else ""))
        if not total and self.loaded:
            parts = ["no runs yet — press [b]l[/] to launch a step, or run [b]blase step NAME[/] in a terminal"]
        self.query_one("#runs-status", Static).update(" · ".join(parts))


    # ---- actions -------------------------------------------------------------------------------------------
    def leave(self) -> None:
        self.action_projects()

    def action_reload(self) -> None:
        self.refresh_rows(full=True)


    def action_columns(self) -> None:
        from blase_tui.tui.screens.columns import ColumnsScreen

        table = self.query_one(RunsTable)

        def picked(refs: list[tuple[str, str]] | None) -> None:
            if refs is not None:
                table.choose_metrics(refs)

        self.app.push_screen(ColumnsScreen(table.known_metrics(), list(table.metric_refs), len(table.rows)), picked)

    def on_runs_table_opened(self, message: RunsTable.Opened) -> None:
        self.open_run(message.run_id)


    def open_run(self, run_id: str) -> None:
        from blase_tui.tui.screens.run import RunScreen

        self.app.push_screen(RunScreen(self.project, run_id))

    def palette_runs(self) -> list[str]:
        return self.query_one(RunsTable).order[:30]

    def action_compare(self) -> None:
        from blase_tui.tui.screens.compare import CompareScreen

        table = self.query_one(RunsTable)
        marked = table.marked
        if len(marked) != 2:
            self.notify("Mark two runs with space first, then press c.", severity="warning")
            return
        self.app.push_screen(CompareScreen(self.project, marked[0], marked[1]))

    def action_edit(self) -> None:
        """Name, note and tags of the highlighted run."""
        from blase_tui.tui.screens.edit_run import EditRunScreen

        run_id = self.query_one(RunsTable).current_id
        if run_id is None:
            return
        desc = self.project.store.describe_run(run_id)
        row, tags = desc.run, desc.tags

        def saved(changes: dict[str, Any] | None) -> None:
            if changes and (changes["name"] is not None or changes["note"] is not None or changes["tags"]
                            or changes["untag"]):
                self._save_edit(run_id, changes)

        self.app.push_screen(EditRunScreen(run_id, name=row.name or "", note=row.note or "",
                                           tags={str(k): str(v) for k, v in tags.items()}), saved)

    @work(thread=True, group="runs-edit", exit_on_error=False)
    def _save_edit(self, run_id: str, changes: dict[str, Any]) -> None:
        self.project.store.edit_run(run_id, **changes)
        self.app.call_from_thread(self.notify, f"run {fmt_run_tail(run_id)}: saved", timeout=2)
        self.app.call_from_thread(self.refresh_rows, True)

    def action_delete(self) -> None:
        """Delete the marked runs (else the highlighted one) after a confirmation; `blase gc` frees the space."""
        from blase_tui.tui.screens.confirm import ConfirmScreen

        table = self.query_one(RunsTable)
        run_ids = list(table.marked) or ([table.current_id] if table.current_id else [])
        if not run_ids:
            return
        running = [r for r in run_ids if table.rows[r]["status"] == "running"]
        if running:
            self.notify(f"Run {running[0]} is running: x stops it first.", severity="warning")
            return
        names = ", ".join(run_ids)

        def answer(yes: bool | None) -> None:
            if yes:
                self._delete_runs(run_ids)

        what = ("Its folder and record go" if len(run_ids) == 1 else "Their folders and records go")
        self.app.push_screen(ConfirmScreen(f"Delete {names}? {what}; `blase gc` then frees the space.",
                                           yes="Delete", no="Keep"), answer)

    @work(thread=True, group="runs-delete", exit_on_error=False)
    def _delete_runs(self, run_ids: list[str]) -> None:
        from blase_tui.errors import BlaseError

        for run_id in run_ids:
            try:
                self.project.store.delete_run(run_id)
            except BlaseError as exc:
                self.app.call_from_thread(self.notify, str(exc), severity="error")
                return
        self.app.call_from_thread(self.notify, f"deleted {len(run_ids)} run(s); `blase gc` frees their space")
        self.app.call_from_thread(self.refresh_rows, True)

    def action_stop(self) -> None:
        """Stop the highlighted run's running steps, whoever started them (cron, a terminal, a closed TUI)."""
        from blase_tui.tui.screens.confirm import ConfirmScreen

        run_id = self.query_one(RunsTable).current_id
        row = self.query_one(RunsTable).rows.get(run_id or "")
        if row is None or row["status"] != "running":
            self.notify("This run has no running step; x stops a running one.", severity="warning")
            return
        running = self.project.store.running_step_runs(run_id)
        if not running:
            self.notify(f"Run {run_id} has no running step (it is open, between steps).", severity="warning")
            return
        names = ", ".join(f"{r.step} (pid {r.pid})" for r in running)

        def answer(yes: bool | None) -> None:
            if yes:
                self._stop_steps(run_id)

        self.app.push_screen(ConfirmScreen(f"Stop {names} of run {run_id}? Whoever started it, it will be marked"
                                           " interrupted.", yes="Stop", no="Keep running"), answer)

    @work(thread=True, group="runs-stop", exit_on_error=False)
    def _stop_steps(self, run_id: str) -> None:
        from blase_tui.core.launch import cancel_running
        from blase_tui.errors import BlaseError

        try:
            stopping = cancel_running(self.project.store, run_id)
        except BlaseError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        for s in stopping:
            self.app.call_from_thread(self.notify, f"{s.step}: stopping…")

    def action_launch(self) -> None:
        from blase_tui.tui.screens.launch import LaunchScreen

        self.app.push_screen(LaunchScreen(self.project))

    def action_jobs(self) -> None:
        self.app.open_jobs()  # type: ignore[attr-defined]

    def action_label(self) -> None:
        from blase_tui.tui.screens.label import LabelScreen

        self.app.push_screen(LabelScreen(self.project))

    def action_models(self) -> None:
        from blase_tui.tui.screens.models import ModelsScreen

        self.app.push_screen(ModelsScreen(self.project))

    def action_pipeline(self) -> None:
        from blase_tui.tui.screens.pipeline import PipelineScreen

        self.app.push_screen(PipelineScreen(self.project))

    def action_assistant(self) -> None:
        from blase_tui.tui.screens.assistant import AssistantScreen

        self.app.push_screen(AssistantScreen(self.project))

    def action_projects(self) -> None:
        self.app.open_projects()  # type: ignore[attr-defined]
