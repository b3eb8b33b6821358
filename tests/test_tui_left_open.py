"""Issue 27: a TUI left open while cron adds runs stays true. Runs are written through the real store (the
same commits `blase step` makes) while the runs screen is open; the screen's own watcher picks them up."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import make_project, until

from blase_tui.core.fmt import fmt_run_tail
from blase_tui.store.runstore import RunStore
from blase_tui.tui.app import make_app
from blase_tui.tui.screens.runs import RunsScreen
from blase_tui.tui.widgets.runs_table import RunsTable

pytestmark = pytest.mark.timeout(180)




def add_run(store: RunStore, steps: dict[str, dict[str, float]]) -> str:
    """A finished run with these steps and the metrics each logged, committed as `blase step` commits it."""
    run_id = store.create_run()
    assert run_id is not None
    for step, metrics in steps.items():
        sid, _ = store.begin_step(run_id, step, pid=os.getpid(), pid_started=None)
        store.log_metrics([(run_id, sid, k, v, None, time.time()) for k, v in metrics.items()])
        store.finish_step(sid, "succeeded", exit_code=0)
    store.close_run(run_id)
    return run_id


async def open_runs(pilot, app, n: int) -> RunsTable:
    await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded
                and len(app.screen.query_one(RunsTable).rows) >= n, what=f"{n} runs")
    return app.screen.query_one(RunsTable)


def shown(table: RunsTable) -> list[str]:
    """The table's lines as drawn (header first)."""
    return [table.render_line(y).text for y in range(table.size.height)]


async def test_left_open_at_80x24_the_newest_run_is_always_the_top_row(tmp_path: Path) -> None:
    """Item 1: with the cursor on the first row, 30 runs arriving one by one each show at the top, under the
    cursor (they went above the viewport after ~20 and the cursor left the screen); with the cursor further
    down, the highlighted run keeps its line while more arrive."""
    root = make_project(tmp_path / "proj")
    store = RunStore(root)
    first = add_run(store, {"tick": {"loss": 1.0}})
    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_runs(pilot, app, 1)
        await pilot.press("home")
        for i in range(30):  # more than the 21 rows the view holds
            run_id = add_run(store, {"tick": {"loss": float(i)}})
            await until(pilot, lambda run_id=run_id: run_id in table.rows, what=f"run {i}")
            await pilot.pause()
            assert table.order[0] == run_id and table.cursor == 0 and table.scroll_offset.y == 0, i
            assert fmt_run_tail(run_id) in shown(table)[1], (i, shown(table)[:3])
        assert len(table.rows) == 31 and first in table.rows
        for _ in range(3):
            await pilot.press("down")
        highlighted, line = table.current_id, table.cursor - int(table.scroll_offset.y)
        assert line == 3
        for i in range(22):
            run_id = add_run(store, {"tick": {"loss": 100.0 + i}})
            await until(pilot, lambda run_id=run_id: run_id in table.rows, what=f"run {i}")
            await pilot.pause()
            assert table.current_id == highlighted, "the highlighted run changed without a key"
            assert table.cursor - int(table.scroll_offset.y) == line, "the highlighted run moved on screen"
            assert fmt_run_tail(highlighted) in shown(table)[1 + line]
        await pilot.press("home")
        assert table.current_id == run_id and fmt_run_tail(run_id) in shown(table)[1]
    store.close()


@pytest.mark.parametrize("width", [80, 120, 200])
async def test_metric_columns_keep_their_meaning_when_a_second_step_logs_the_same_metric(
        tmp_path: Path, width: int) -> None:
    """Item 2: `train` logs accuracy and loss; then `evaluate` starts logging both while the TUI is open. The
    columns stay train's, their headers now say so, new train runs fill them, and `r` shows the same table."""
    root = make_project(tmp_path / "proj")
    store = RunStore(root)
    for i in range(3):
        add_run(store, {"train": {"accuracy": 0.5 + i / 10, "loss": 1.0 - i / 10}})
    app = make_app(root)
    async with app.run_test(size=(width, 24)) as pilot:
        table = await open_runs(pilot, app, 3)
        assert table.metric_refs == [("train", "accuracy"), ("train", "loss")]
        assert "accuracy" in shown(table)[0].split()
        both = add_run(store, {"train": {"accuracy": 0.81, "loss": 0.4}, "evaluate": {"accuracy": 0.77, "loss": 0.6}})
        train_only = add_run(store, {"train": {"accuracy": 0.83, "loss": 0.3}})
        await until(pilot, lambda: train_only in table.rows and both in table.rows, what="the new runs")
        await pilot.pause()
        # the columns keep their meaning; evaluate's values come after them (shown where the width allows)
        assert table.metric_refs == [("train", "accuracy"), ("train", "loss"), ("evaluate", "accuracy"),
                                     ("evaluate", "loss")], "a column changed meaning"
        header = shown(table)[0]
        assert "train/accuracy" in header.split(), header  # the header says whose accuracy, at every width
        lines = shown(table)
        assert "0.83" in lines[1] and "0.81" in lines[2], lines[:3]  # train's values, not blanks
        live = shown(table)
        await pilot.press("r")
        await pilot.pause(0.3)
        await until(pilot, lambda: shown(table) == live, timeout=5, what="`r` to show what the live table showed")
        assert table.metric_refs[:2] == [("train", "accuracy"), ("train", "loss")]
    store.close()


async def test_the_user_picks_the_metric_columns_and_they_stay(tmp_path: Path) -> None:
    """Columns: m lists every step's metrics; the pick (evaluate's accuracy) stays while runs with new metrics
    and new steps arrive, and the header names the step."""
    from textual.widgets import SelectionList

    from blase_tui.tui.screens.columns import ColumnsScreen

    root = make_project(tmp_path / "proj")
    store = RunStore(root)
    add_run(store, {"train": {"accuracy": 0.8, "loss": 0.3}, "evaluate": {"accuracy": 0.7}})
    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_runs(pilot, app, 1)
        await pilot.press("m")
        picker = await until(pilot, lambda: isinstance(app.screen, ColumnsScreen) and app.screen, what="the picker")
        options = picker.query_one(SelectionList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert any(label.startswith("evaluate/accuracy") for label in labels), labels
        options.deselect_all()
        options.select(("evaluate", "accuracy"))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen), what="back to the runs")
        assert table.metric_refs == [("evaluate", "accuracy")] and table.chosen
        newer = add_run(store, {"train": {"accuracy": 0.9, "f1": 0.5}, "serve": {"latency": 3.0},
                                "evaluate": {"accuracy": 0.88}})
        await until(pilot, lambda: newer in table.rows, what="the new run")
        await pilot.pause()
        assert table.metric_refs == [("evaluate", "accuracy")]
        assert "evaluate/accuracy" in shown(table)[0] and "0.88" in shown(table)[1], shown(table)[:2]
    store.close()
