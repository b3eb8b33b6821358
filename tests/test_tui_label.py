"""The labelling screen driven with Pilot over a real project: an alert-like Parquet pool, the real SQLite
label store, and the exported CSV read back through the real `blase label export` command."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import make_project, until

from blase_tui.tui.app import make_app
from blase_tui.tui.screens.label import LabelScreen

pytestmark = pytest.mark.timeout(120)

LABEL_TOML = """
[project]
name = "alerts"

[labelling]
pool = "data/pool.parquet"
key = "candid"
secondary = "objectId"
fields = ["ra", "dec", "magpsf"]
image = "stamp"
series = {x = "mjd", y = ["mags"], group = "fids"}
features = ["magpsf", "drb"]
keys = {r = "real", b = "bogus", v = "varstar"}
targets = {real = 1, bogus = 0, varstar = 0}
url = "https://fink-portal.org/{objectId}"
n = 10
"""


def write_pool(root: Path, n: int = 30, seed: int = 0, *, triplet: bool = False) -> None:
    """A pool of ``n`` alerts; ``triplet`` adds a template and a difference stamp to each science stamp."""
    from PIL import Image

    rng = np.random.default_rng(seed)

    def png(a: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG")
        return buf.getvalue()

    def stamp(source: bool = True, sky: bool = True) -> bytes:
        a = (rng.random((12, 12)) * 80).astype(np.uint8) if sky else np.full((12, 12), 20, np.uint8)
        if source:
            a[4:8, 4:8] = 255
        return png(a)

    table = pa.table({
        "candid": np.arange(5000, 5000 + n),
        "objectId": [f"ZTF26a{i:05d}" for i in range(n)],
        "ra": rng.random(n) * 360, "dec": rng.random(n) * 60 - 30,
        "magpsf": 19.5 + rng.random(n) * 2, "drb": rng.random(n),
        "stamp": [stamp() for _ in range(n)],
        "mjd": [list(np.sort(60000 + rng.random(8) * 30)) for _ in range(n)],
        "mags": [list(19 + rng.random(8)) for _ in range(n)],
        "fids": [list(rng.integers(1, 3, 8)) for _ in range(n)],
        "errs": [list(0.05 + rng.random(8) * 0.1) for _ in range(n)],
    })
    if triplet:
        table = table.append_column("template", pa.array([stamp(source=False) for _ in range(n)]))
        table = table.append_column("difference", pa.array([stamp(sky=False) for _ in range(n)]))
    (root / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, root / "data" / "pool.parquet")


@pytest.fixture
def alerts(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "alerts", main_src="from blase_tui import step\n", toml=LABEL_TOML)
    write_pool(root)
    return root




async def test_label_a_round_with_undo_and_skip(alerts: Path, blase) -> None:
    app = make_app(alerts, start="label", label_options={"strategy": None, "n": None})
    expected: dict[str, str] = {}
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await until(pilot, lambda: isinstance(app.screen, LabelScreen) and app.screen)
        await until(pilot, lambda: screen.record is not None and not screen.busy, what="the first record")
        shown: list[str] = []

        async def press(key: str) -> None:
            before = len(screen.saved)
            shown.append(str(screen.record.key) if screen.record is not None else "")
            await pilot.press(key)
            await until(pilot, lambda: len(screen.saved) > before and not screen.busy, what=f"{key} to be saved")

        # r, b; skip one; undo the skip (that record comes back); v on it; r then undo it; ...
        await press("r")
        expected[shown[-1]] = "real"
        await press("b")
        expected[shown[-1]] = "bogus"
        await press("s")
        skipped = shown[-1]
        await press("u")
        assert str(screen.record.key) == skipped, "undoing a skip offers that record again"
        await press("v")
        expected[shown[-1]] = "varstar"
        await press("r")
        undone = shown[-1]
        await press("u")
        assert str(screen.record.key) == undone
        await press("s")  # skip the record whose label was undone: it must end with no label
        await press("s")
        labels = "rbvbrbvr"
        for key in labels:
            if screen.record is None:
                break
            await press(key)
            expected[shown[-1]] = {"r": "real", "b": "bogus", "v": "varstar"}[key]
        await until(pilot, lambda: screen.record is None, what="the end of the round")
        done_text = str(screen.query_one("#label-fields").render())
        assert "Round done" in done_text
        assert f"--name round_{screen.session.round.number}_{screen.session.round.strategy}" in done_text
        assert screen.last_latency is not None
        await pilot.press("q")
    assert len(expected) == 10
    from blase_tui.store import labels as label_store
    from blase_tui.store.runstore import RunStore

    store = RunStore(alerts)
    try:
        current = {str(lab.key): lab.label for lab in label_store.current_labels(store)}
    finally:
        store.close()
    assert current == expected
    assert undone not in current
    out = blase("label", "export", cwd=alerts, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["candid", "objectId", "label", "timestamp"]
    assert {r["candid"]: r["label"] for r in rows} == expected
    assert all(r["objectId"] == f"ZTF26a{int(r['candid']) - 5000:05d}" for r in rows)


async def test_a_burst_of_keys_is_queued_and_each_applies_to_the_record_drawn_for_it(alerts: Path) -> None:
    """Issue 27 item 5: `r b r b r` typed at once applied 1 of 5 keys. Now every key waits in a queue the
    screen shows, and each applies to the next record only once it has been drawn; u in the burst takes one
    back; q quits once the queue is applied."""
    from blase_tui.core.project import Project
    from blase_tui.store.labels import current_labels

    app = make_app(alerts, start="label", label_options={"strategy": None, "n": None})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await until(pilot, lambda: isinstance(app.screen, LabelScreen) and app.screen)
        await until(pilot, lambda: screen.record is not None and not screen.busy)
        drawn: list[str] = []  # every record the screen drew, in order
        draw = screen._draw

        def spy(record) -> None:
            drawn.append(record.key)
            draw(record)

        screen._draw = spy
        drawn.append(screen.record.key)
        screen.busy = True  # as while a label is being written: the whole burst arrives before it is saved
        for key in "rbrbr":
            await pilot.press(key)
        assert screen.saved == [] and len(screen.pending) == 5
        status = str(screen.query_one("#label-status").render())
        assert "queued 5: r b r b r" in status, status
        screen.busy = False
        screen._next_queued()  # the save "completes" on the record already drawn
        await until(pilot, lambda: len(screen.saved) == 5 and not screen.busy and not screen.pending,
                    what="the five queued keys")
        labels = dict(zip(drawn[:5], ["real", "bogus", "real", "bogus", "real"], strict=True))
        assert screen.saved == [f"saved: {k} = {v}" for k, v in labels.items()]
        assert len(set(drawn[:6])) == 6  # each key went to its own record, each one drawn before its key
        for key in "uu":
            await pilot.press(key)
        await until(pilot, lambda: len(screen.saved) == 7 and not screen.busy and not screen.pending)
        assert screen.saved[5:] == [f"undid {drawn[4]} (real)", f"undid {drawn[3]} (bogus)"]
        screen.busy = True
        await pilot.press("b")
        await pilot.press("q")
        assert "then quitting" in str(screen.query_one("#label-status").render()) and app.is_running
        screen.busy = False
        screen._next_queued()
        await until(pilot, lambda: not app.is_running, what="quit after the queue")
    kept = {label.key: label.label for label in current_labels(Project.at(alerts).store)}
    assert kept == {**{k: v for k, v in list(labels.items())[:3]}, drawn[3]: "bogus"}


async def test_a_bad_labelling_config_is_shown_not_raised(tmp_path: Path) -> None:
    root = make_project(tmp_path / "bad", main_src="", toml=LABEL_TOML.replace('keys = {r = "real"', 'keys = {s = "real"'))
    write_pool(root)
    app = make_app(root, start="label", label_options={})
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await until(pilot, lambda: isinstance(app.screen, LabelScreen) and app.screen)
        await until(pilot, lambda: "`s`" in str(screen.query_one("#label-fields").render()), what="the config error")
        await pilot.press("q")


def test_the_labelling_screen_killed_mid_round_loses_no_label_it_showed_as_saved(alerts: Path) -> None:
    """The real `blase label` in a pseudo-terminal: label, read "saved: KEY = real" off the screen, press
    another key and SIGKILL the process at once. Every key the screen showed as saved is in the store."""
    import os
    import pty
    import re
    import select
    import signal
    import sys

    from conftest import _env

    pid, fd = pty.fork()
    if pid == 0:  # the child: the command a user types
        os.chdir(alerts)
        os.execvpe(sys.executable, [sys.executable, "-m", "blase_tui", "label"],
                   {**_env(), "TERM": "xterm-256color", "COLUMNS": "110", "LINES": "32"})
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 32, 110, 0, 0))
    screen = b""
    ansi = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]")

    def read_until(pattern: bytes, timeout: float = 30) -> re.Match[bytes]:
        nonlocal screen
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, ansi.sub(b"", screen))
            if found:
                return found
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                screen += chunk
                if b"\x1b[6n" in chunk:  # Textual asks where the cursor is
                    os.write(fd, b"\x1b[1;1R")
        raise AssertionError(f"{pattern!r} did not show; screen ends {ansi.sub(b'', screen)[-400:]!r}")

    saved: list[str] = []
    try:
        read_until(rb"0 of 10 labelled this round")
        for _ in range(4):
            screen = b""
            os.write(fd, b"r")
            # the new key: a repaint may send the line of the previous save again before the new one
            seen = b"".join(b"(?!" + k.encode() + b"\\b)" for k in saved)
            saved.append(read_until(rb"saved: " + seen + rb"(\d+) = real").group(1).decode())
        os.write(fd, b"b")  # and die while (or before) this one is written
        os.kill(pid, signal.SIGKILL)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    assert len(set(saved)) == 4
    from blase_tui.store import labels as label_store
    from blase_tui.store.runstore import RunStore

    store = RunStore(alerts)
    try:
        current = {lab.key: lab.label for lab in label_store.current_labels(store)}
        assert store.db.query("PRAGMA integrity_check")[0][0] == "ok"
    finally:
        store.close()
    for key in saved:
        assert current.get(key) == "real", f"{key} was shown as saved but is not in the store"
    assert len(current) in (4, 5)  # the fifth key may or may not have been committed before the kill


def test_the_key_legend_wraps_between_keys_and_missing_values_read_as_a_dash() -> None:
    """Issue 16 item 14: at 80 columns a key was split from its meaning; a missing value showed `None`; a
    19-digit candid wrapped."""
    from types import SimpleNamespace

    from rich.console import Console

    from blase_tui.tui.screens.label import legend_text, render_fields

    entries = [("r", "real"), ("b", "bogus"), ("v", "varstar"), ("n", "unsure"), ("s", "skip"), ("u", "undo"),
               ("o", "open"), ("q", "quit")]
    for width in (24, 38, 60):
        lines = legend_text(entries, width).plain.split("\n")
        assert all(len(line) <= width for line in lines)
        for key, meaning in entries:  # each key with its meaning, on one line
            assert sum(f" {key}  {meaning}" in line for line in lines) == 1, (width, lines)
    record = SimpleNamespace(key=2900018253295123456, secondary="ZTF26gikyibw",
                             fields={"magpsf": None, "drb": float("nan"), "ndet": 16})
    console = Console(width=38, record=True, file=open("/dev/null", "w"))
    console.print(render_fields(record, "candid", "objectId"))
    shown = console.export_text()
    assert "2900018253295123456" in shown  # whole, on one line
    assert "None" not in shown and "nan" not in shown and shown.count("—") == 2


async def test_the_light_curve_has_error_bars(tmp_path: Path) -> None:
    """Issue 16 item 14: `series.yerr` names each y column's error column; the plot draws error bars."""
    from blase_tui.tui.widgets.series_plot import SeriesPlot

    toml = LABEL_TOML.replace('series = {x = "mjd", y = ["mags"], group = "fids"}',
                              'series = {x = "mjd", y = ["mags"], yerr = ["errs"], group = "fids"}')
    root = make_project(tmp_path / "alerts", main_src="from blase_tui import step\n", toml=toml)
    write_pool(root)
    app = make_app(root, start="label", label_options={"strategy": None, "n": None})
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await until(pilot, lambda: isinstance(app.screen, LabelScreen) and app.screen)
        await until(pilot, lambda: screen.record is not None and not screen.busy)
        plot = screen.query_one(SeriesPlot)
        await until(pilot, lambda: plot.series, what="the light curve")
        errs = np.asarray(screen.record.series["errs"], dtype=float)
        groups = np.asarray(screen.record.series["fids"])
        for name, series in plot.series.items():
            g = int(name.rsplit("=", 1)[1])
            assert series.yerr is not None and np.allclose(np.sort(series.yerr), np.sort(errs[groups == g]))
    bad = make_project(tmp_path / "bad", main_src="", toml=toml.replace('yerr = ["errs"]', 'yerr = ["a", "b"]'))
    write_pool(bad)
    from blase_tui.core.project import Project
    from blase_tui.errors import BlaseError
    from blase_tui.labelling.config import load

    with pytest.raises(BlaseError, match=r"`series.yerr` names the error column of each y column"):
        load(Project.discover(bad))


async def test_a_science_template_difference_triplet_shows_side_by_side(tmp_path: Path) -> None:
    """Issue 16 item 14: `image` may name several columns; the screen draws them side by side, named."""
    toml = LABEL_TOML.replace('image = "stamp"', 'image = ["stamp", "template", "difference"]')
    root = make_project(tmp_path / "alerts", main_src="from blase_tui import step\n", toml=toml)
    write_pool(root)
    table = pq.read_table(root / "data" / "pool.parquet")
    stamps = table.column("stamp").to_pylist()
    table = table.append_column("template", pa.array(stamps[::-1])).append_column(
        "difference", pa.array([None] + stamps[1:], type=pa.binary()))
    pq.write_table(table, root / "data" / "pool.parquet")
    app = make_app(root, start="label", label_options={"strategy": None, "n": None})
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await until(pilot, lambda: isinstance(app.screen, LabelScreen) and app.screen)
        await until(pilot, lambda: screen.record is not None and not screen.busy)
        assert list(screen.record.images) == ["stamp", "template", "difference"]
        image = screen.query_one("#label-image")
        await pilot.pause(0.1)
        lines = [image.render_line(y).text for y in range(image.size.height)]
        text = "\n".join(lines)
        assert all(name in text for name in ("stamp", "template", "difference")), text


def test_a_record_shows_its_objects_other_alerts_and_their_labels(tmp_path: Path) -> None:
    """Issue 16 item 14: alerts of one object are grouped: how many the pool holds, how they are labelled."""
    from rich.console import Console

    from blase_tui.labelling.session import LabellingSession
    from blase_tui.tui.screens.label import render_fields

    root = make_project(tmp_path / "alerts", main_src="from blase_tui import step\n", toml=LABEL_TOML)
    write_pool(root)
    table = pq.read_table(root / "data" / "pool.parquet")
    objects = [f"ZTF26obj{i % 10:02d}" for i in range(table.num_rows)]  # 30 alerts of 10 objects
    table = table.set_column(table.column_names.index("objectId"), "objectId", pa.array(objects))
    pq.write_table(table, root / "data" / "pool.parquet")
    with LabellingSession(root, strategy="random", n=10, labeller="test") as session:
        first = session.current()
        assert first.group == (3, {})
        session.label("r")
        seen = 0
        while not session.done:
            record = session.current()
            if record.secondary == first.secondary:
                assert record.group == (3, {"real": 1})
                console = Console(width=80, record=True, file=io.StringIO())
                console.print(render_fields(record, "candid", "objectId"))
                assert "3 records of this objectId in the pool; real ×1" in console.export_text()
                seen += 1
                break
            session.skip()
        assert seen == 1


async def test_at_80x24_a_long_key_and_the_object_note_are_never_cut(tmp_path: Path) -> None:
    """Issue 27 item 3: with a field named `classtar_probability`, the candid 2900000000001000131 showed as
    `290000000000100` and the object note was cut mid-word on four lines. Both now show whole, wrapped between
    words."""
    toml = LABEL_TOML.replace('fields = ["ra", "dec", "magpsf"]',
                              'fields = ["ra", "dec", "magpsf", "classtar_probability", "ssdistnr"]')
    root = make_project(tmp_path / "alerts", main_src="from blase_tui import step\n", toml=toml)
    write_pool(root)
    table = pq.read_table(root / "data" / "pool.parquet")
    n = table.num_rows
    table = table.set_column(0, "candid", pa.array(np.arange(2900000000001000131, 2900000000001000131 + n)))
    table = table.set_column(1, "objectId", pa.array([f"ZTF26a{i % 5:05d}" for i in range(n)]))
    table = table.append_column("classtar_probability", pa.array(np.linspace(0, 1, n)))
    table = table.append_column("ssdistnr", pa.array(np.linspace(-999, 5, n)))
    pq.write_table(table, root / "data" / "pool.parquet")
    app = make_app(root, start="label", label_options={"strategy": None, "n": None})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await until(pilot, lambda: isinstance(app.screen, LabelScreen) and app.screen)
        await until(pilot, lambda: screen.record is not None and not screen.busy)
        await pilot.pause(0.1)
        fields = screen.query_one("#label-fields")
        text = "\n".join(fields.render_line(y).text.rstrip() for y in range(fields.size.height))
        assert str(screen.record.key) in text.replace("\n", ""), text
        assert str(screen.record.key) in text, text  # on one line: 19 digits fit the pane at 80 columns
        note = "6 records of this objectId in the pool; none labelled yet"
        assert note in " ".join(line.strip() for line in text.splitlines()), text  # wrapped between words only
        assert "classtar_probability" in text.replace("\n", "").replace(" ", ""), text
