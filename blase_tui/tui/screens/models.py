"""Models: every saved model version with its aliases, framework, run and metrics; the highlighted one's card.
``a`` points an alias (``champion``, ``production``) at it, ``o`` opens the run that saved it. The store is
watched as the runs screen watches it: a version registered meanwhile (a training step, another terminal)
appears without a reload."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Static

from blase_tui.core.fmt import fmt_time, fmt_value
from blase_tui.core.project import Project
from blase_tui.core.storewatch import StoreWatcher
from blase_tui.store.records import ModelVersion, ModelVersionDetail
from blase_tui.tui.screens.base import BlaseScreen

# Without a watcher event (e.g. a store on a network share) the list is still read again this often.
POLL = 3.0
COLUMNS = ("model", "version", "aliases", "framework", "created", "metrics")


class ModelsScreen(BlaseScreen):
    """The project's model registry: versions, aliases, cards, metrics; a sets an alias."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="models.back", tooltip="Back to the runs"),
        Binding("a", "alias", "Alias", id="models.alias", tooltip="Point an alias (champion, production) here"),
        Binding("o", "open_run", "Open run", id="models.open", tooltip="The run that saved this version"),
        Binding("r", "reload", "Reload", show=False, id="models.reload", tooltip="Read the registry again"),
    ]

    class Loaded(Message):
        def __init__(self, rows: list[ModelVersion]) -> None:
            super().__init__()
            self.rows = rows

    class StoreChanged(Message):
        """The watcher saw a commit."""

    class Card(Message):
        def __init__(self, key: str, model: ModelVersionDetail) -> None:
            super().__init__()
            self.key, self.model = key, model

    def __init__(self, project: Project) -> None:
        super().__init__()
        self.project = project
        self.rows: list[ModelVersion] = []
        self.shown: tuple[str, Any] | None = None  # the version whose card is shown, and the card
        self._watcher: StoreWatcher | None = None
        self._loaded = False

    def compose(self) -> ComposeResult:
        yield Static(f"blase · {self.project.name} · models", classes="title")
        with Vertical(id="models-layout"):
            table: DataTable[Any] = DataTable(id="models-table", cursor_type="row", zebra_stripes=True)
            table.add_columns(*COLUMNS)
            yield table
            with VerticalScroll(id="model-card-box"):
                yield Static("", id="model-card")
        yield Static("", id="models-status", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        self._watcher = StoreWatcher(self.project.root / "runs", self._store_changed).start()
        self.set_interval(POLL, self.load)

    def _store_changed(self) -> None:  # the watcher's thread
        self.post_message(self.StoreChanged())

    def on_unmount(self) -> None:
        if self._watcher is not None:
            self._watcher.stop(wait=False)

    def on_models_screen_store_changed(self, _: StoreChanged) -> None:
        self.load()

    def on_resize(self) -> None:
        if self._loaded:
            self._fill()

    def on_screen_resume(self) -> None:
        self.load()

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="models", exit_on_error=False)
    def load(self) -> None:
        from blase_tui.store import models

        self.post_message(self.Loaded(models.list_models(self.project.store, newest_first=True)))

    def on_models_screen_loaded(self, message: Loaded) -> None:
        if self._loaded and message.rows == self.rows:
            return  # a poll or a commit elsewhere that changed no version: the cursor and card stay as they are
        self.rows = message.rows  # by name, newest version first, as `blase models list`
        first, self._loaded = not self._loaded, True
        self._fill()
        if first:
            self.query_one("#models-table", DataTable).focus()

    def _fill(self) -> None:
        """The rows, the metrics cell cut with "…" to the room the other columns leave."""
        table = self.query_one("#models-table", DataTable)
        current = self.current()
        cells = [(r.name, str(r.version), Text(", ".join(r.aliases) or "-", style="bold green" if r.aliases
                                               else "dim"), r.framework or "-", fmt_time(r.created))
                 for r in self.rows]
        room = self._metrics_room([[str(c) for c in row] for row in cells])
        table.clear()
        for r, row in zip(self.rows, cells, strict=True):
            shown = {k: v for k, v in r.metrics.items() if k not in ("epoch", "seconds")}
            metrics = Text("  ".join(f"{k}={fmt_value(v)}" for k, v in shown.items()))
            metrics.truncate(room, overflow="ellipsis")
            table.add_row(*row, metrics, key=r.ref)
        keys = [r.ref for r in self.rows]
        if current in keys:
            table.move_cursor(row=keys.index(current), animate=False)
        self.query_one("#models-status", Static).update(
            f"{len(self.rows)} model version(s) · a sets an alias · o opens the run that saved it" if self.rows else
            "No models yet: save one with Train.save_model(...) in a training step.")

    def _metrics_room(self, rows: list[list[str]]) -> int:
        """Cells left for the metrics column: the table's width less the other columns (each with its padding)
        and a vertical scrollbar when the versions outgrow the table's height (40% of the screen)."""
        table = self.query_one("#models-table", DataTable)
        width = table.size.width or self.app.size.width
        pad = 2 * table.cell_padding
        others = sum(max([len(COLUMNS[i])] + [len(row[i]) for row in rows]) + pad for i in range(len(COLUMNS) - 1))
        scrollbar = table.styles.scrollbar_size_vertical if len(rows) + 1 > self.app.size.height * 0.4 else 0
        return max(len(COLUMNS[-1]), width - others - pad - scrollbar)

    def current(self) -> str | None:
        table = self.query_one("#models-table", DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value:
            self.read_card(str(event.row_key.value))

    @work(thread=True, exclusive=True, group="card", exit_on_error=False)
    def read_card(self, key: str) -> None:
        from blase_tui.store import models

        self.post_message(self.Card(key, models.get(self.project.store, key)))

    def on_models_screen_card(self, message: Card) -> None:
        from blase_tui.render import render_card

        box = self.query_one("#model-card", Static)
        card = message.model.card
        self.shown = (message.key, card)
        width = max(30, self.query_one("#model-card-box").size.width - 2)
        head = Text.assemble((message.key, "bold"), f"  run {message.model.run_id or '-'}",
                             (f"  @{', @'.join(message.model.aliases)}" if message.model.aliases
                              else "", "green"))
        from rich.console import Group

        box.update(Group(head, render_card(card, width=width, max_rows=20) if card else Text("no card", style="dim")))

    def action_alias(self) -> None:
        from blase_tui.tui.screens.prompt import PromptScreen

        key = self.current()
        if key is None:
            return
        name, _, version = key.partition(":")

        def chosen(alias: str | None) -> None:
            if alias:
                self._set_alias(name, int(version), alias)

        self.app.push_screen(PromptScreen(f"Alias for {name} v{version} (it moves here from the version it names):",
                                          placeholder="champion"), chosen)

    @work(thread=True, group="models-alias", exit_on_error=False)
    def _set_alias(self, name: str, version: int, alias: str) -> None:
        from blase_tui.errors import BlaseError
        from blase_tui.store import models

        try:
            models.set_alias(self.project.store, name, version, alias)
        except BlaseError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self.notify, f"{name}@{alias} is now v{version}")
        self.app.call_from_thread(self.load)

    def action_open_run(self) -> None:
        from blase_tui.tui.screens.run import RunScreen

        key = self.current()
        row = next((r for r in self.rows if r.ref == key), None)
        if row is None or not row.run_id or self.project.store.get_run(row.run_id) is None:
            self.notify("The run that saved this version is gone (deleted); the model itself stays.",
                        severity="warning")
            return
        self.app.push_screen(RunScreen(self.project, row.run_id))

    def action_back(self) -> None:
        self.app.pop_screen()
