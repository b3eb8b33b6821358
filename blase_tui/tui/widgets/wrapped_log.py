"""A log of a finished step's text, wrapped to the pane's width, and wrapped again when that width changes
(``RichLog`` wraps once, at the width it has when a line is written)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog


class WrappedLog(RichLog):
    """``show(text)`` replaces the content; long lines wrap, never cut. ``find(words)`` keeps the lines that
    hold them."""

    def __init__(self, **kwargs: Any) -> None:
        # min_width: RichLog renders at 78 columns at least, which cuts lines in a narrower pane
        super().__init__(wrap=True, markup=False, highlight=False, min_width=20, **kwargs)
        self.text: str | None = None
        self.search = ""
        self._wrapped_at = 0

    def show(self, text: str) -> None:
        self.text = text
        self._write_all()

    def find(self, words: str) -> tuple[int, int]:
        """Show only the lines that hold ``words`` (any case), numbered and with the words marked; "" shows
        every line again. Returns (lines found, lines in all)."""
        self.search = words.strip()
        self._write_all()
        lines = (self.text or "").splitlines()
        return len(self._matching(lines)), len(lines)

    def _matching(self, lines: list[str]) -> list[tuple[int, str]]:
        needle = self.search.lower()
        return [(i, line) for i, line in enumerate(lines, 1) if needle in line.lower()]

    def _write_all(self) -> None:
        if self.text is None:
            return
        at_end = self.is_vertical_scroll_end
        self.clear()
        if self.search:
            lines = self._matching(self.text.splitlines())
            width = len(str(lines[-1][0])) if lines else 1
            shown = Text("\n".join(f"{i:>{width}}: {line}" for i, line in lines) or f"no line holds `{self.search}`")
            shown.highlight_words([self.search], style="bold reverse", case_sensitive=False)
            self.write(shown, scroll_end=False)
            self.scroll_home(animate=False)
        else:
            self.write(Text(self.text), scroll_end=at_end)
        self._wrapped_at = self.scrollable_content_region.width

    def on_resize(self, event: Resize) -> None:
        super().on_resize(event)
        if self.text is not None and self.scrollable_content_region.width != self._wrapped_at:
            self._write_all()
