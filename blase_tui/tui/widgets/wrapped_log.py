"""A log wrapped to the pane's width, and wrapped again when that width changes (``RichLog`` wraps once, at the
width it has when a line is written): a finished step's text (``show``) or a live one (``append``)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog


class WrappedLog(RichLog):
    """``show(text)`` replaces the content, ``append(lines)`` adds to it (keeping the last ``max_lines``); long
    lines wrap, never cut. ``find(words)`` keeps the lines that hold them."""

    def __init__(self, **kwargs: Any) -> None:
        # min_width: RichLog renders at 78 columns at least, which cuts lines in a narrower pane
        super().__init__(wrap=True, markup=False, highlight=False, min_width=20, **kwargs)
        self.text: str | None = None
        self.search = ""
        self._wrapped_at = 0

    def show(self, text: str) -> None:
        """Show ``text``; the same text again changes nothing, and text that only grew (a running step's log read
        again) is appended, so the view stays where it is, or keeps following the end when it was there."""
        if text == self.text:
            return
        if self.text and text.startswith(self.text + "\n") and self._width() is not None:
            self.append(text[len(self.text) + 1:].split("\n"), scroll_end=self.is_vertical_scroll_end)
            return
        self.text = text
        self._write_all()

    def append(self, lines: list[str], *, scroll_end: bool = True) -> None:
        """Add ``lines`` at the end, scrolling to them when ``scroll_end`` (a live log the user follows)."""
        kept = (self.text.splitlines() if self.text else []) + lines
        if self.max_lines:
            kept = kept[-self.max_lines:]
        self.text = "\n".join(kept)
        width = self._width()
        if width is None:
            self._wrapped_at = 0  # no width now (not laid out yet, a hidden tab): all of it is wrapped on resize
        elif self.search:
            self._write_all()
        else:
            self.write(Text("\n".join(lines)), width=width, scroll_end=scroll_end)

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
        width = self._width()
        if width is None:
            self._wrapped_at = 0  # drawn when the pane has a width (on_resize)
            return
        at_end = self.is_vertical_scroll_end
        self.clear()
        if self.search:
            lines = self._matching(self.text.splitlines())
            digits = len(str(lines[-1][0])) if lines else 1
            shown = Text("\n".join(f"{i:>{digits}}: {line}" for i, line in lines) or f"no line holds `{self.search}`")
            shown.highlight_words([self.search], style="bold reverse", case_sensitive=False)
            self.write(shown, width=width, scroll_end=False)
            self.scroll_home(animate=False)
        else:
            self.write(Text(self.text), width=width, scroll_end=at_end)
        self._wrapped_at = self.scrollable_content_region.width

    def _width(self) -> int | None:
        """The pane's width to wrap at: RichLog would measure the text against the app's console instead, and
        wrap a pane's lines at a width that is not the pane's. None before the pane has a size."""
        width = self.scrollable_content_region.width
        return max(width, self.min_width) if width else None

    def on_resize(self, event: Resize) -> None:
        super().on_resize(event)
        if self.text is not None and self.scrollable_content_region.width != self._wrapped_at:
            self._write_all()
