"""MetricPlot: one or more metrics of a run (loss per iteration, val_accuracy per epoch) as a terminal line
chart, drawn with plotext in braille dots so a small pane still shows the curve's shape.

Series are kept by name and replaced whole by ``set_series``, so a live Run screen can call it on every
flush without the data growing twice. Long series are reduced to the minimum and maximum of each column's
bucket before plotting: a spike in a 100,000-iteration loss stays visible and the draw stays cheap."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from rich.align import Align
from rich.console import Group
from rich.text import Text
from textual.app import RenderResult
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from blase_tui.core.fmt import fmt_value
from blase_tui.render import sparkline

PALETTE = ("cyan", "orange", "green", "magenta", "blue", "red")
"""Colours given to series in the order they are first set (plotext colour names)."""

Axis = Literal["left", "right"]


@dataclass(frozen=True)
class Series:
    """One named series: finite points only, x ascending as given."""

    name: str
    xs: np.ndarray
    ys: np.ndarray
    axis: Axis = "left"
    color: str | None = None
    yerr: np.ndarray | None = None


def finite_points(xs: Iterable[float] | None, ys: Iterable[float], yerr: Iterable[float] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``xs``, ``ys`` (and ``yerr``) as float arrays without the points where any of them is NaN or infinite;
    ``xs=None`` numbers the points 0, 1, 2..."""
    y = np.asarray(list(ys) if not isinstance(ys, np.ndarray) else ys, dtype=float).reshape(-1)
    x = np.arange(y.size, dtype=float) if xs is None else np.asarray(
        list(xs) if not isinstance(xs, np.ndarray) else xs, dtype=float).reshape(-1)
    if x.size != y.size:
        raise ValueError(f"{x.size} x values for {y.size} y values")
    keep = np.isfinite(x) & np.isfinite(y)
    err = None
    if yerr is not None:
        err = np.asarray(list(yerr) if not isinstance(yerr, np.ndarray) else yerr, dtype=float).reshape(-1)
        if err.size != y.size:
            raise ValueError(f"{err.size} error values for {y.size} y values")
        err = np.where(np.isfinite(err), np.abs(err), 0.0)
    return x[keep], y[keep], (err[keep] if err is not None else None)


def decimate(xs: np.ndarray, ys: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``2 * buckets + 2`` points: the first, the last, and the lowest and highest point of each of
    ``buckets`` equal slices, in their original order, so peaks survive (plain striding would drop a
    one-iteration loss spike)."""
    n = xs.size
    if n <= 2 * buckets:
        return xs, ys
    edges = np.linspace(0, n, buckets + 1).astype(int)
    keep: list[int] = [0]  # the first and last points fix the x range
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi <= lo:
            continue
        seg = ys[lo:hi]
        a, b = lo + int(np.argmin(seg)), lo + int(np.argmax(seg))
        keep += [a, b]
    idx = np.unique(np.asarray(keep + [n - 1]))
    return xs[idx], ys[idx]


class MetricPlot(PlotextPlot):
    """A line chart of named metric series.

    >>> plot = MetricPlot("training", xlabel="iteration")
    >>> plot.set_series("loss", iterations, losses)
    >>> plot.set_series("val_accuracy", epochs, accuracies, axis="right")

    With no finite point it shows ``empty_text``; below 6 lines it falls back to one sparkline per series.
    Call from the app's thread (a worker posts a message; its handler calls ``set_series``).
    """

    DEFAULT_CSS = """
    MetricPlot {
        height: 1fr;
        min-height: 3;
    }
    """

    title: reactive[str] = reactive("")
    """Shown above the plot when there is room (10 lines or more)."""
    xlabel: reactive[str] = reactive("")
    ylabel: reactive[str] = reactive("")
    empty_text: reactive[str] = reactive("no metric values yet")

    def __init__(self, title: str = "", *, xlabel: str = "iteration", ylabel: str = "",
                 empty_text: str = "no metric values yet", name: str | None = None, id: str | None = None,
                 classes: str | None = None, disabled: bool = False) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._series: dict[str, Series] = {}
        self._colors: dict[str, str] = {}
        self.set_reactive(MetricPlot.title, title)
        self.set_reactive(MetricPlot.xlabel, xlabel)
        self.set_reactive(MetricPlot.ylabel, ylabel)
        self.set_reactive(MetricPlot.empty_text, empty_text)

    # ---------------------------------------------------------------- data
    @property
    def series(self) -> dict[str, Series]:
        """The series drawn now, by name (a copy)."""
        return dict(self._series)

    def set_series(self, name: str, xs: Iterable[float] | None, ys: Iterable[float], *, axis: Axis = "left",
                   color: str | None = None) -> None:
        """Draw ``ys`` against ``xs`` (None: 0, 1, 2...) as the series ``name``, replacing its earlier points.
        ``axis="right"`` gives it its own y axis (accuracy beside a loss); NaN and infinite points are
        skipped."""
        x, y, _ = finite_points(xs, ys)
        self._store(Series(name, x, y, axis, color))

    def remove_series(self, name: str) -> None:
        """Stop drawing the series ``name`` (no error when there is none)."""
        if self._series.pop(name, None) is not None:
            self.refresh()

    def clear(self) -> None:
        """Remove every series: the plot shows ``empty_text``."""
        self._series.clear()
        self.refresh()

    def _store(self, series: Series) -> None:
        self._series[series.name] = series
        self._colors.setdefault(series.name, PALETTE[len(self._colors) % len(PALETTE)])
        self.refresh()

    def color_of(self, name: str) -> str:
        """The colour the series ``name`` is drawn in."""
        s = self._series.get(name)
        return (s.color if s is not None and s.color else None) or self._colors.get(name, PALETTE[0])

    # ---------------------------------------------------------------- drawing
    def render(self) -> RenderResult:
        """The plot; the empty text when there is nothing to draw; sparklines when the pane is tiny."""
        drawn = [s for s in self._series.values() if s.xs.size]
        if not drawn:
            return Align.center(Text(self.empty_text, style="dim italic"), vertical="middle")
        width, height = self.size
        if height < 6 or width < 24:
            return self._sparklines(drawn, width)
        return self._figure(drawn, width, height)

    def _figure(self, drawn: list[Series], width: int, height: int, *, title: bool = True) -> Text:
        """The plotext figure of ``drawn`` at ``width`` x ``height`` cells (``title``: plotext's title row when
        there is room)."""
        plt = self.plt
        plt.clear_figure()
        if title and self.title and height >= 10:
            plt.title(self.title)
        if self.xlabel and height >= 10:
            plt.xlabel(self.xlabel)
        if self.ylabel:
            plt.ylabel(self.ylabel)
        self._configure(plt)
        for s in drawn:
            self._draw(plt, s, width)
        for side in ("left", "right"):  # one value (or a flat line): an axis around it, not plotext's -1..1
            ys = [s.ys for s in drawn if s.axis == side]
            if ys:
                low, high = float(min(y.min() for y in ys)), float(max(y.max() for y in ys))
                if low == high:
                    pad = abs(low) * 0.05 or 1.0
                    plt.ylim(low - pad, high + pad, yside=side)
        # what PlotextPlot.render does, at the size given rather than the widget's
        plt.plotsize(width, height)
        plt._set_size(width, height)
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        return Text.from_ansi(plt.build())

    def _configure(self, plt: Any) -> None:
        """Figure-wide settings a subclass adds (an inverted y axis...)."""

    def _draw(self, plt: Any, s: Series, width: int) -> None:
        """Add one series to the figure: a braille line, or a dot when it has a single point."""
        color = self.color_of(s.name)
        if s.xs.size == 1:
            plt.scatter(s.xs.tolist(), s.ys.tolist(), marker="●", color=color, label=s.name, yside=s.axis)
            return
        x, y = decimate(s.xs, s.ys, max(8, width))
        plt.plot(x.tolist(), y.tolist(), marker="braille", color=color, label=s.name, yside=s.axis)

    def _sparklines(self, drawn: list[Series], width: int) -> RenderResult:
        name_w = min(16, max(len(s.name) for s in drawn))
        spark_w = max(4, width - name_w - 12)
        lines = []
        for s in drawn:
            lines.append(Text.assemble((s.name[:name_w].ljust(name_w), "bold"), " ",
                                       (sparkline(s.ys.tolist(), spark_w), _rich_color(self.color_of(s.name))),
                                       " ", fmt_value(float(s.ys[-1]))))
        return Group(*lines)


def _rich_color(plotext_color: str) -> str:
    """A plotext colour name as a Rich style ("" when Rich has no such colour)."""
    from rich.color import Color, ColorParseError

    name = {"orange": "dark_orange", "gray": "grey50"}.get(plotext_color.rstrip("+"), plotext_color.rstrip("+"))
    try:
        Color.parse(name)
    except ColorParseError:
        return ""
    return name
