"""The monitor view of a run: the latest drift windows of its monitor step (a drift table with each feature's
history), the performance metrics as sparklines, and the triggers that fired, read from the step's
``monitor/`` artifacts and metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from blase_tui.render import sparkline

MAX_WINDOWS = 200  # drift files read (the newest)
HISTORY = 24  # batches in a feature's history strip (fewer when the terminal is narrow)
TRIGGERS_SHOWN = 5  # the newest triggers listed; the count says how many fired in all


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _name(test: dict) -> str:
    """A test's row: the feature, and "(missing)" for the test of its missing share."""
    if test.get("test") != "missing":
        return str(test["feature"])
    return f"{test['feature']} (gone)" if (test.get("extra") or {}).get("absent") else f"{test['feature']} (missing)"


def render_monitor(folder: Path, performance: dict[str, list[float]], *, width: int = 100) -> RenderableType:
    """``folder``: a monitor step's ``artifacts/monitor``; ``performance``: its ``performance/<name>`` series."""
    windows = [w for w in (_load(p) for p in sorted(folder.glob("drift_*.json"))[-MAX_WINDOWS:]) if w]
    triggers = [t for t in (_load(p) for p in sorted(folder.glob("trigger_*.json"))) if t]
    report = _load(folder / "report.json")
    parts: list[RenderableType] = []
    if not windows and not report:
        return Text("This step recorded no drift windows (monitor/drift_NNNN.json).", style="dim")
    if windows:
        last = windows[-1]
        drifted = last.get("drifted") or []
        head = Text.assemble(
            ("drift ", "bold"), f"{len(windows)} window{'s' * (len(windows) != 1)}; the last (batch {last['batch']},"
            f" {last.get('records', '?'):,} records): ",
            (f"{len(drifted)} of {len({f['feature'] for f in last['features']})} features drifted" if drifted
             else "no feature drifted",
             "bold red" if drifted else "green"),
            f"  (alpha {last.get('alpha')}, {last.get('correction', 'holm')}; x: drifted)")
        parts += [head, _drift_table(windows, width), Text("")]
    if report:
        drifted = report.get("drifted") or []
        parts.append(Text.assemble(("report ", "bold"), f"all {report.get('records', 0):,} records: ",
                                   (", ".join(drifted) if drifted else "no feature drifted",
                                    "bold red" if drifted else "green")))
        parts.append(Text(""))
    if performance:
        perf = Table(box=None, padding=(0, 1), header_style="bold", expand=False)
        perf.add_column("performance", no_wrap=True)
        perf.add_column("last", justify="right", no_wrap=True)
        perf.add_column("over the windows", no_wrap=True)
        for name, values in sorted(performance.items()):
            if name in ("records", "labelled") or not values:
                continue
            perf.add_row(name, f"{values[-1]:.4g}", sparkline(values, width=max(10, min(40, width - 40))))
        parts += [perf, Text("")]
    if triggers:
        shown = triggers[-TRIGGERS_SHOWN:]
        parts.append(Text(f"triggers fired: {len(triggers)}" + (
            f", the last {len(shown)} shown (all of them: monitor/trigger_*.json in the Artifacts tab)"
            if len(shown) < len(triggers) else ""), style="bold"))
        for t in shown:
            parts.append(Text(f"  batch {t['batch']}: " + "; ".join(t.get("why", [])), style="red"))
    else:
        parts.append(Text("no trigger fired", style="dim"))
    return Group(*parts)


def _drift_table(windows: list[dict[str, Any]], width: int) -> Table:
    """The last window's tests, smallest p first, each with its history over the windows, in ``width`` cells:
    the test, statistic, p and verdict whole; the feature's name as long as it is, up to what leaves the
    history 8 windows; the history gets the rest (the newest windows it holds)."""
    last = windows[-1]
    history: dict[str, list[bool]] = {}
    for w in windows[-HISTORY:]:
        for f in w["features"]:  # a feature's values and its missing share are tested apart: two rows
            history.setdefault(_name(f), []).append(bool(f["drifted"]))
    rows = [(_name(f), str(f["test"]), f"{f['statistic']:.4g}", f"{f['p_value']:.2g}", bool(f["drifted"]))
            for f in last["features"]]  # sorted by p-value, smallest first
    heads = ("feature", "test", "statistic", "p", "")

    def widest(i: int, least: int) -> int:
        return max([least, len(heads[i])] + [len(str(r[i])) for r in rows])

    fixed = widest(1, 0) + widest(2, 0) + widest(3, 0) + len("drifted")
    gaps = 2 * 5  # one cell each side between the six columns, none at the edges
    windows_shown = min(HISTORY, len(windows))
    names = widest(0, 0)
    name_w = max(8, min(names, width - fixed - gaps - min(8, windows_shown)))
    room = width - fixed - gaps - name_w
    strip = max(1, min(windows_shown, room))
    label = f"last {strip}" if len(f"last {strip}") <= room else ""
    table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold", expand=False)
    table.add_column("feature", no_wrap=True, overflow="ellipsis", width=name_w)
    table.add_column("test", no_wrap=True)
    table.add_column("statistic", justify="right", no_wrap=True)
    table.add_column("p", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column(label, no_wrap=True)
    for name, test, statistic, p_value, drifted in rows:
        flags = history.get(name, [])[-strip:]
        table.add_row(name, test, statistic, p_value,
                      Text("drifted", style="bold red") if drifted else Text("ok", style="green"),
                      Text("".join("x" if x else "·" for x in flags), style="red" if any(flags) else "dim"))
    return table


class MonitorView(Static):
    """Shows what :func:`render_monitor` renders; the run screen feeds it."""

    DEFAULT_CSS = "MonitorView { height: auto; padding: 0 1; }"

    shown: RenderableType | None = None

    def show(self, renderable: RenderableType) -> None:
        self.shown = renderable
        self.update(renderable)
