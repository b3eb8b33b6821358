"""Issue 27, found in tmux at 80x24: an imported label's timestamp comes back out of `blase label export` as the
file wrote it; the run screen's artifact tree shows file names whole at 80 columns; the labelling screen's light
curve has rows enough, its legend on rows of its own, and its series told apart by their markers, not only by
colour."""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import make_project, until
from test_tui_label import LABEL_TOML, write_pool

from blase_tui.core.project import Project
from blase_tui.store import labels as label_store

pytestmark = pytest.mark.timeout(120)




@pytest.fixture
def alerts(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "alerts", main_src="from blase_tui import step\n", toml=LABEL_TOML)
    write_pool(root)
    return root


# ------------------------------------------------------------------------------------------------ 1. timestamps
STAMPS = {  # candid -> the timestamp as the file writes it
    "5001": "2024-03-01T12:34:56.789012",  # microseconds, no time zone
    "5002": "2024-03-01T12:34:56Z",
    "5003": "2024-03-01T14:34:56.5+02:00",
    "5004": "2024-03-01 12:34:56.000001",  # a space for the T: ISO 8601 as Python and pandas write it
}


def test_an_imported_timestamp_is_exported_as_the_file_wrote_it(alerts: Path, blase, monkeypatch) -> None:
    """Microseconds are kept, no `+00:00` is added where the file gave no time zone, and one it gave stays as
    written. A timestamp without a time zone is UTC (not the machine's local time, here New York) for the
    label's instant; a label with no timestamp, or made in blase, is written in UTC to the second."""
    monkeypatch.setenv("TZ", "America/New_York")
    labels_csv = alerts / "labels.csv"
    lines = ["candid,objectId,label,timestamp", *(f"{k},ZTF{k},real,{stamp}" for k, stamp in STAMPS.items()),
             "5005,ZTF5005,bogus,"]
    labels_csv.write_text("\n".join(lines) + "\n")
    before = time.time()
    out = blase("label", "import", str(labels_csv), cwd=alerts, check=True)
    assert out.stdout.strip() == f"imported 5 labels from {labels_csv}"

    exported = blase("label", "export", cwd=alerts, check=True).stdout
    rows = {r["candid"]: r for r in csv.DictReader(io.StringIO(exported))}
    assert {k: rows[k]["timestamp"] for k in STAMPS} == STAMPS
    assert exported.splitlines()[1:5] == lines[1:5]  # the very text of the file, line for line
    now = datetime.fromisoformat(rows["5005"]["timestamp"])
    assert rows["5005"]["timestamp"].endswith("+00:00") and before - 1 <= now.timestamp() <= time.time()

    # the instants: a timestamp without a zone is UTC, whatever the machine's zone
    current = {lab.key: lab for lab in label_store.current_labels(Project.at(alerts).store)}
    noon = datetime(2024, 3, 1, 12, 34, 56, tzinfo=UTC).timestamp()
    assert current["5001"].ts == pytest.approx(noon + 0.789012, abs=1e-6)
    assert current["5002"].ts == noon and current["5003"].ts == noon + 0.5
    assert current["5004"].ts == pytest.approx(noon + 0.000001, abs=1e-6)

    # the export imports back unchanged, and --values writes the same timestamps
    again = alerts / "again.csv"
    again.write_text(exported)
    assert "(5 already there)" in blase("label", "import", str(again), cwd=alerts, check=True).stdout
    values = list(csv.DictReader(io.StringIO(blase("label", "export", "--values", cwd=alerts, check=True).stdout)))
    assert [r["timestamp"] for r in values[:4]] == list(STAMPS.values())

    # the index lost: the journal brings the timestamps back as written
    for name in ("blase.db", "blase.db-wal", "blase.db-shm"):
        (alerts / "runs" / name).unlink(missing_ok=True)
    assert blase("runs", "reindex", cwd=alerts).returncode == 0
    assert blase("label", "export", cwd=alerts, check=True).stdout == exported

    bad = alerts / "bad.csv"
    bad.write_text("candid,label,timestamp\n5006,real,yesterday\n")
    proc = blase("label", "import", str(bad), cwd=alerts)
    assert proc.returncode == 2 and "timestamp 'yesterday' is not ISO 8601" in proc.stderr


def test_a_schema_8_label_table_gains_the_timestamp_column(tmp_path: Path) -> None:
    """An index written by the previous blase (labels without ``ts_text``) is upgraded in place: its labels
    export as before and an import keeps its timestamp's text."""
    from blase_tui.store import db as db_mod

    root = make_project(tmp_path / "old", main_src="from blase_tui import step\n", toml=LABEL_TOML)
    path = root / "runs" / "blase.db"
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.executescript(db_mod.SCHEMA.replace(",\n    -- an imported label's timestamp as its file wrote it (schema 9):"
                                             " `blase label export` writes it back as it was\n    ts_text TEXT", ""))
    assert "ts_text" not in {r[1] for r in conn.execute("PRAGMA table_info(labels)")}
    conn.execute("INSERT INTO labels (key, action, label, ts) VALUES ('7', 'label', 'real', 1709296496.0)")
    conn.execute("PRAGMA user_version = 8")
    conn.commit()
    conn.close()

    store = Project.at(root).store
    assert store.db.query("PRAGMA user_version")[0][0] == db_mod.SCHEMA_VERSION
    assert label_store.import_labels(store, [("8", None, "bogus", 0, "2024-03-01T12:34:56.789012")]) == (1, 0)
    out = io.StringIO()
    label_store.export_csv(store, out)
    assert out.getvalue().splitlines() == ["key,label,timestamp", "7,real,2024-03-01T12:34:56+00:00",
                                           "8,bogus,2024-03-01T12:34:56.789012"]


# ------------------------------------------------------------------------------------------------ 2. artifact tree
TREE_MAIN = '''
from blase_tui import main, step


@step
def train(ctx):
    """Write the artifacts a training step writes."""
    ctx.log_metric("loss", 0.5)
    (ctx.artifact_dir / "history.csv").write_text("epoch,loss\\n" + "".join(f"{i},{1 / (i + 1)}\\n" for i in range(200)))
    (ctx.artifact_dir / "summary.json").write_text('{"loss": 0.5}' * 100)
    (ctx.artifact_dir / "plots").mkdir()
    (ctx.artifact_dir / "plots" / "roc_curve.png").write_bytes(b"x" * 30000)


if __name__ == "__main__":
    main()
'''


async def test_the_artifact_tree_shows_file_names_whole_at_80_columns(tmp_path: Path, blase) -> None:
    """At 80x24 the run screen's artifact tree cut `history.csv` to `his…` to keep its size; the name comes
    first now (the size gives way), three and four levels down."""
    from blase_tui.tui.app import make_app
    from blase_tui.tui.screens.run import RunScreen
    from blase_tui.tui.screens.runs import RunsScreen
    from blase_tui.tui.widgets.artifact_tree import ArtifactTree
    from blase_tui.tui.widgets.runs_table import RunsTable

    project = make_project(tmp_path / "proj", main_src=TREE_MAIN, toml='[project]\nname = "treeproj"\n')
    blase("step", "train", cwd=project, check=True)
    app = make_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.query_one(RunsTable).rows,
                    what="the run")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.desc is not None,
                    what="the run screen")
        await pilot.press("4")
        tree = await until(pilot, lambda: app.screen.query(ArtifactTree).first(None), what="the artifact tree")
        await until(pilot, lambda: any(n.data is not None and n.data.name == "roc_curve.png"
                                       for n in tree._walk(tree.root)), what="the artifacts listed")
        await pilot.pause()

        def lines() -> list[str]:
            return [tree.render_line(y).text.rstrip() for y in range(tree.size.height)]

        nodes = len(tree._walk(tree.root))
        await until(pilot, lambda: sum(bool(line) for line in lines()) >= nodes, what="every node drawn")
        shown = lines()
        for name in ("history.csv", "summary.json", "roc_curve.png", "run.json", "env.json"):
            assert any(line.endswith(f" {name}") or f" {name}  " in line for line in shown), "\n".join(shown)
        assert not any("…" in line for line in shown[1:]), "\n".join(shown)  # the root's run id may be cut
        assert all(len(line) <= tree.size.width for line in shown)


# ------------------------------------------------------------------------------------------------ 3. light curve
def _plot_lines(plot) -> list[str]:
    from textual.geometry import Region

    return [strip.text.rstrip() for strip in plot.render_lines(Region(0, 0, plot.size.width, plot.size.height))]


def _check_plot(lines: list[str], names: list[str]) -> None:
    """The legend's rows are above the plot's box, each series with its own marker; the box holds data
    points of each marker and no legend."""
    top = next(i for i, line in enumerate(lines) if "┌" in line)
    bottom = next(i for i, line in enumerate(lines) if "└" in line)
    legend, box = "\n".join(lines[:top]), lines[top + 1:bottom]
    markers = []
    for name in names:
        entry = next((legend[i - 2] for i in range(2, len(legend)) if legend.startswith(name, i)), None)
        assert entry is not None and legend[legend.index(name) - 1] == " ", (name, legend)
        markers.append(entry)
    assert len(set(markers)) == len(markers) and all(m.strip() and not m.isalnum() for m in markers), markers
    assert not any(name in line for line in box for name in names), "\n".join(lines)  # no legend over the data
    for marker in markers:
        assert any(marker in line.split("┤", 1)[-1] for line in box), (marker, "\n".join(lines))


async def test_the_light_curve_at_80x24_has_rows_a_legend_of_its_own_and_markers(tmp_path: Path) -> None:
    """At 80x24 the labelling screen's light curve was 6 rows tall, its legend drawn over the points, and
    `mags fids=1` and `mags fids=2` told apart by colour alone. Now: at least 8 rows of points, the legend on
    a row above the plot, a marker per series (shown in the legend)."""
    from blase_tui.tui.app import make_app
    from blase_tui.tui.screens.label import LabelScreen
    from blase_tui.tui.widgets.series_plot import SeriesPlot

    # as the snapshot's labelling screen: three stamps side by side and error bars
    toml = LABEL_TOML.replace('image = "stamp"', 'image = ["stamp", "template", "difference"]').replace(
        'group = "fids"}', 'group = "fids", yerr = ["errs"]}')
    root = make_project(tmp_path / "alerts", main_src="from blase_tui import step\n", toml=toml)
    write_pool(root, triplet=True)
    app = make_app(root, start="label", label_options={})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await until(pilot, lambda: isinstance(app.screen, LabelScreen) and app.screen)
        await until(pilot, lambda: screen.record is not None and not screen.busy, what="the first record")
        plot = screen.query_one(SeriesPlot)
        await until(pilot, lambda: len(plot.series) == 2, what="both filters")
        await pilot.pause()
        lines = _plot_lines(plot)
        _check_plot(lines, ["mags fids=1", "mags fids=2"])
        top = next(i for i, line in enumerate(lines) if "┌" in line)
        bottom = next(i for i, line in enumerate(lines) if "└" in line)
        assert bottom - top - 1 >= 8, "\n".join(lines)  # rows of points
        assert top <= 2, "\n".join(lines)  # the legend (and title) take at most two rows


async def test_the_series_plot_alone_at_its_80x24_size_keeps_markers_apart_without_colour() -> None:
    """The widget at the size it gets at 80x24 (40 x 13), with two filters and error bars, and with six series
    (every marker, the legend wrapped onto a second row between two series)."""
    from textual.app import App, ComposeResult

    from blase_tui.tui.widgets.series_plot import SeriesPlot

    class Host(App):
        CSS = "SeriesPlot { width: 40; height: 13; }"

        def compose(self) -> ComposeResult:
            yield SeriesPlot("ZTF26a00001", invert_y=True)

    async with Host().run_test(size=(80, 24)) as pilot:
        plot = pilot.app.query_one(SeriesPlot)
        plot.set_series("mag band=g", [1.0, 2.0, 3.0, 4.0], [19.0, 19.5, 19.2, 18.8], yerr=[0.1, 0.1, 0.2, 0.1])
        plot.set_series("mag band=r", [1.5, 2.5, 3.5, 4.5], [18.0, 18.4, 18.1, 17.9])
        await pilot.pause()
        lines = _plot_lines(plot)
        _check_plot(lines, ["mag band=g", "mag band=r"])
        assert "┌" in lines[1]  # one row of legend: the title, which would need a row of its own, gives way
        plot.title = "ZTF26"
        await pilot.pause()
        assert "ZTF26" in _plot_lines(plot)[0] and "┌" in _plot_lines(plot)[1]  # where it fits, beside it

        for i in range(2, 6):
            plot.set_series(f"mag {i}", [1.0, 4.5], [17.0 + i * 0.3, 17.1 + i * 0.3])
        await pilot.pause()
        lines = _plot_lines(plot)
        _check_plot(lines, ["mag band=g", "mag band=r", *(f"mag {i}" for i in range(2, 6))])  # six markers
        assert "┌" in lines[2]  # the legend on two rows
