"""ArtifactPreview: a scrollable pane showing one artifact file (table head, array statistics, image, model
card...) rendered by ``blase_tui.render`` in a thread worker, so a 50 GB Parquet file or a slow disk
never stalls the screen."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.events import Resize
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import get_current_worker

from blase_tui.render import IMAGE_SUFFIXES, render_preview

LOADING_DELAY = 0.12
"""Seconds before "loading…" replaces the previous preview: most files render faster, and flashing the word
on every cursor move through the artifact tree would be noise."""
RESIZE_DELAY = 0.15
"""Seconds of quiet after a resize before re-rendering at the new width (a terminal drag sends many)."""


class ArtifactPreview(VerticalScroll, can_focus=True):
    """A preview of one file or folder.

    >>> preview = ArtifactPreview(placeholder="Select an artifact")
    >>> preview.show(run_dir / "train" / "artifacts" / "model" / "cnn.pt.card.json")

    ``show`` returns at once; the file is read in a thread worker (group ``preview``, a newer ``show``
    supersedes an older one) and the pane updates when it is done, then posts ``ArtifactPreview.Shown``.
    The preview is re-rendered after a resize, to the new width. ``r`` reads the file again.
    """

    DEFAULT_CSS = """
    ArtifactPreview {
        height: 1fr;
        padding: 0 1;
    }
    ArtifactPreview > #preview-body {
        width: 1fr;
    }
    ArtifactPreview > #preview-body.-placeholder {
        color: $text-muted;
        text-style: italic;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "reload", "Reload", id="artifact_preview.reload",
                tooltip="Read the file again (a log that is still growing)"),
    ]

    class Shown(Message):
        """The preview of ``path`` is on screen."""

        def __init__(self, preview: ArtifactPreview, path: Path) -> None:
            super().__init__()
            self.preview = preview
            self.path = path

        @property
        def control(self) -> ArtifactPreview:
            return self.preview

    class _Rendered(Message):
        """From the worker: a finished rendering (only the newest one matters)."""

        def __init__(self, generation: int, path: Path, renderable: RenderableType) -> None:
            super().__init__()
            self.generation = generation
            self.path = path
            self.renderable = renderable

    def __init__(self, path: Path | None = None, *, placeholder: str = "Select an artifact to preview it.",
                 name: str | None = None, id: str | None = None, classes: str | None = None,
                 disabled: bool = False) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.placeholder = placeholder
        self._path: Path | None = path
        self._generation = 0
        self._shown: tuple[Path, RenderableType] | None = None
        self._size_rendered: tuple[int, int] | None = None
        self._loading_timer: Timer | None = None
        self._resize_timer: Timer | None = None
        self._scroll_home = True

    def compose(self) -> ComposeResult:
        yield Static(self.placeholder, id="preview-body", classes="-placeholder")

    def on_mount(self) -> None:
        if self._path is not None:
            self.show(self._path)

    # ---------------------------------------------------------------- public API
    @property
    def path(self) -> Path | None:
        """The file or folder asked for last (its preview may still be loading)."""
        return self._path

    @property
    def shown_path(self) -> Path | None:
        """The file or folder whose preview is on screen now."""
        return self._shown[0] if self._shown else None

    @property
    def renderable(self) -> RenderableType | None:
        """The Rich renderable on screen now (None while the placeholder shows)."""
        return self._shown[1] if self._shown else None

    def text(self, width: int | None = None) -> str:
        """What the pane shows as plain text (the placeholder, "loading…" or the preview), rendered at
        ``width`` columns (default: the pane's): for tests and for copying."""
        import io

        from rich.console import Console

        content = self._body.content
        width = width or self.size.width or 100
        console = Console(width=width, file=io.StringIO(), color_system=None, record=True)
        console.print(Text(content) if isinstance(content, str) else content)
        return console.export_text()

    def show(self, path: Path | None) -> None:
        """Preview ``path`` (a file or a folder); None brings back the placeholder."""
        self._path = Path(path) if path is not None else None
        if self._path is None:
            self._generation += 1
            self._shown = None
            self._body.update(self.placeholder)
            self._body.set_class(True, "-placeholder")
            return
        self._start(scroll_home=True)

    def action_reload(self) -> None:
        """Render the current path again."""
        if self._path is not None:
            self._start(scroll_home=False)

    # ---------------------------------------------------------------- rendering
    @property
    def _body(self) -> Static:
        return self.query_one("#preview-body", Static)

    def _render_size(self) -> tuple[int, int]:
        """(columns, rows) for the preview: the pane less its padding and a scrollbar that may appear."""
        width = self.size.width - self.styles.scrollbar_size_vertical
        return max(20, width), max(10, self.size.height)

    def _max_rows(self, path: Path, rows: int) -> int:
        """An image fits the pane's height (less its header line); tables and text run to three panes, the
        pane scrolls."""
        return rows - 2 if path.suffix.lower() in IMAGE_SUFFIXES else max(50, 3 * rows)

    def _start(self, *, scroll_home: bool) -> None:
        assert self._path is not None
        self._generation += 1
        if self._loading_timer is not None:
            self._loading_timer.stop()
        self._scroll_home = scroll_home
        if not self.size.width:
            # not laid out yet (just mounted, or hidden): the first Resize renders at the real width
            self._size_rendered = None
            return
        generation = self._generation
        self._loading_timer = self.set_timer(LOADING_DELAY, lambda: self._show_loading(generation))
        width, rows = self._size_rendered = self._render_size()
        self._render_in_thread(self._path, width, rows, generation)

    def _show_loading(self, generation: int) -> None:
        if generation == self._generation and self._path is not None:
            self._body.update(Text(f"loading {self._path.name}…", style="dim italic"))

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _render_in_thread(self, path: Path, width: int, rows: int, generation: int) -> None:
        renderable = render_preview(path, width=width, max_rows=self._max_rows(path, rows))
        if not get_current_worker().is_cancelled:
            self.post_message(self._Rendered(generation, path, renderable))

    @on(_Rendered)
    def _on_rendered(self, message: _Rendered) -> None:
        message.stop()
        if message.generation != self._generation:
            return  # a newer show() or resize is on its way
        if self._loading_timer is not None:
            self._loading_timer.stop()
        self._shown = (message.path, message.renderable)
        self._body.update(message.renderable)
        self._body.set_class(False, "-placeholder")
        if self._scroll_home:
            self.scroll_home(animate=False)
        self.post_message(self.Shown(self, message.path))

    def on_resize(self, event: Resize) -> None:
        if self._path is None or self._size_rendered == self._render_size():
            return
        if self._size_rendered is None:
            self._start(scroll_home=self._scroll_home)
            return
        if self._resize_timer is not None:
            self._resize_timer.stop()
        self._resize_timer = self.set_timer(RESIZE_DELAY, self._rerender_after_resize)

    def _rerender_after_resize(self) -> None:
        if self._path is not None and self._size_rendered != self._render_size():
            self._start(scroll_home=False)
