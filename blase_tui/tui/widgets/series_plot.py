"""SeriesPlot: measured points of one record for the labelling screen, e.g. an alert's light curve
(magnitude against MJD, one series per filter) with error bars and, for magnitudes, the y axis inverted so
that brighter is up. Each series has a marker of its own as well as a colour (``g`` dots, ``r`` triangles), so
the filters are told apart without colour too, and the legend takes rows of its own above the plot, never
over its points."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from rich.console import Group
from rich.text import Text
from textual.app import RenderResult
from textual.reactive import reactive

from blase_tui.tui.widgets.metric_plot import Axis, MetricPlot, Series, _rich_color, finite_points

MARKERS = ("●", "▲", "■", "◆", "+", "*")
"""Markers given to series in the order they are first set, beside their colours (``PALETTE``)."""


class SeriesPlot(MetricPlot):
    """A scatter plot of named series with optional y error bars.

    >>> plot = SeriesPlot("ZTF21aaxtctv", xlabel="MJD", ylabel="mag", invert_y=True)
    >>> plot.set_series("g", mjd_g, mag_g, yerr=sigma_g, color="green")
    >>> plot.set_series("r", mjd_r, mag_r, yerr=sigma_r, color="red")

    Points whose x or y is NaN are left out (an error that is NaN draws no bar). More points than the plot
    has dots are thinned evenly, keeping the first and the last. The title and the legend (each series' marker
    and name, wrapped between series) take the top rows; the plot gets the rest.
    """

    invert_y: reactive[bool] = reactive(False)
    """Larger y values lower down (astronomical magnitudes: a brighter source has a smaller magnitude)."""

    def __init__(self, title: str = "", *, xlabel: str = "", ylabel: str = "", invert_y: bool = False,
                 empty_text: str = "no points", name: str | None = None, id: str | None = None,
                 classes: str | None = None, disabled: bool = False) -> None:
        super().__init__(title, xlabel=xlabel, ylabel=ylabel, empty_text=empty_text, name=name, id=id,
                         classes=classes, disabled=disabled)
        self.set_reactive(SeriesPlot.invert_y, invert_y)

    def set_series(self, name: str, xs: Iterable[float] | None, ys: Iterable[float], *,
                   yerr: Iterable[float] | None = None, axis: Axis = "left", color: str | None = None) -> None:
        """Draw the points (``xs``, ``ys``) as the series ``name``, replacing its earlier points, with error bars
        of half-length ``yerr`` when given."""
        x, y, err = finite_points(xs, ys, yerr)
        self._store(Series(name, x, y, axis, color, err))

    def marker_of(self, name: str) -> str:
        """The marker the series ``name`` is drawn with."""
        order = list(self._colors)
        return MARKERS[order.index(name) % len(MARKERS)] if name in order else MARKERS[0]

    def legend(self, width: int, height: int = 0) -> list[Text]:
        """Each series' marker and name, packed into lines of ``width`` cells (a new line between two series,
        never inside one; a name too long for a line is cut), and the title before them where it fits on
        their first line, or on a line of its own when the plot is ``height`` 20 rows or more."""
        lines: list[Text] = []
        for s in self._series.values():
            if not s.xs.size:
                continue
            item = Text.assemble((self.marker_of(s.name), _rich_color(self.color_of(s.name))), " ", s.name)
            item.truncate(width, overflow="ellipsis")
            if lines and lines[-1].cell_len + 3 + item.cell_len <= width:
                lines[-1].append("   ")
                lines[-1].append_text(item)
            else:
                lines.append(item)
        if self.title:
            title = Text(self.title, style="bold")
            title.truncate(width, overflow="ellipsis")
            if lines and title.cell_len + 3 + lines[0].cell_len <= width:
                lines[0] = Text.assemble(title, "   ", lines[0])
            elif height >= 20 or not lines:
                lines.insert(0, title)
        for line in lines:
            line.justify = "center"
        return lines

    def render(self) -> RenderResult:
        drawn = [s for s in self._series.values() if s.xs.size]
        width, height = self.size
        if not drawn or height < 6 or width < 24:
            return super().render()
        legend = self.legend(width, height)
        if height - len(legend) < 6:  # the plot first; the legend as far as it fits
            legend = legend[: max(0, height - 6)]
        plot = self._figure(drawn, width, height - len(legend), title=False)
        return Group(*legend, plot)

    def _configure(self, plt: Any) -> None:
        if self.invert_y:
            plt.yreverse(True)

    def _draw(self, plt: Any, s: Series, width: int) -> None:
        color = self.color_of(s.name)
        marker = self.marker_of(s.name)
        x, y, err = s.xs, s.ys, s.yerr
        limit = max(16, 2 * width)
        if x.size > limit:
            idx = np.unique(np.linspace(0, x.size - 1, limit).astype(int))
            x, y, err = x[idx], y[idx], (err[idx] if err is not None else None)
        if err is not None and np.any(err > 0):
            plt.error(x.tolist(), y.tolist(), yerr=err.tolist(), color=color, yside=s.axis)
        # no label: the legend is drawn above the plot (plotext's own goes over the points)
        plt.scatter(x.tolist(), y.tolist(), marker=marker, color=color, yside=s.axis)
