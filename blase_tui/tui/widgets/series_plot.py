"""SeriesPlot: measured points of one record for the labelling screen, e.g. an alert's light curve
(magnitude against MJD, one series per filter) with error bars and, for magnitudes, the y axis inverted so
that brighter is up."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from textual.reactive import reactive

from blase_tui.tui.widgets.metric_plot import Axis, MetricPlot, Series, finite_points


class SeriesPlot(MetricPlot):
    """A scatter plot of named series with optional y error bars.

    >>> plot = SeriesPlot("ZTF21aaxtctv", xlabel="MJD", ylabel="mag", invert_y=True)
    >>> plot.set_series("g", mjd_g, mag_g, yerr=sigma_g, color="green")
    >>> plot.set_series("r", mjd_r, mag_r, yerr=sigma_r, color="red")

    Points whose x or y is NaN are left out (an error that is NaN draws no bar). More points than the plot
    has dots are thinned evenly, keeping the first and the last.
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

    def _configure(self, plt: Any) -> None:
        if self.invert_y:
            plt.yreverse(True)

    def _draw(self, plt: Any, s: Series, width: int) -> None:
        color = self.color_of(s.name)
        x, y, err = s.xs, s.ys, s.yerr
        limit = max(16, 2 * width)
        if x.size > limit:
            idx = np.unique(np.linspace(0, x.size - 1, limit).astype(int))
            x, y, err = x[idx], y[idx], (err[idx] if err is not None else None)
        if err is not None and np.any(err > 0):
            plt.error(x.tolist(), y.tolist(), yerr=err.tolist(), color=color, yside=s.axis)
        # the points carry the label: plotext leaves error bars out of the legend
        plt.scatter(x.tolist(), y.tolist(), marker="●", color=color, label=s.name, yside=s.axis)
