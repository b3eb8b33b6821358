"""A log of a finished step's text, wrapped to the pane's width, and wrapped again when that width changes
(``RichLog`` wraps once, at the width it has when a line is written)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog


class WrappedLog(RichLog):
    """``show(text)`` replaces the content; long lines wrap, never cut."""

    def __init__(self, **kwargs: Any) -> None:
        # min_width: RichLog renders at 78 columns at least, which cuts lines in a narrower pane
        super().__init__(wrap=True, markup=False, highlight=False, min_width=20, **kwargs)
        self.text: str | None = None
        self._wrapped_at = 0

    def show(self, text: str) -> None:
        self.text = text
        self._write_all()

    def _write_all(self) -> None:
        if self.text is None:
            return
        at_end = self.is_vertical_scroll_end
        self.clear()
        self.write(Text(self.text), scroll_end=at_end)
        self._wrapped_at = self.scrollable_content_region.width

    def on_resize(self, event: Resize) -> None:
        super().on_resize(event)
        if self.text is not None and self.scrollable_content_region.width != self._wrapped_at:
            self._write_all()
