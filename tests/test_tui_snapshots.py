"""How the main screens look, as SVG snapshots (pytest-textual-snapshot) at fixed terminal sizes. The store
is written with fixed ids, times and hashes, the clock is fixed and the time zone is UTC, so nothing in a
snapshot depends on when or where it runs. Update with ``pytest tests/test_tui_snapshots.py --snapshot-update``
and look at the SVGs before committing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import make_project

from blase_tui.store.runstore import RunStore
from blase_tui.tui.app import make_app
from blase_tui.tui.screens.compare import CompareScreen
from blase_tui.tui.screens.launch import LaunchScreen
from blase_tui.tui.screens.run import RunScreen
from blase_tui.tui.screens.runs import RunsScreen
from blase_tui.tui.widgets.runs_table import RunsTable

T0 = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC
NOW = T0 + 6 * 3600

RUNS = [
    # id, name, status, start offset (s), duration (s), steps, metrics, params
    ("20261118-110640000-a1b2c3", "baseline", "succeeded", 0, 95, ["etl", "prepare", "train"],
     {"loss": 0.412, "accuracy": 0.871}, {"learning_rate": 0.002, "epochs": 8}),
    ("20261118-120640000-d4e5f6", None, "failed", 3600, 12, ["train"], {"loss": 1.93}, {"learning_rate": 0.5, "epochs": 8}),
    ("20261118-130640000-g7h8i9", "lower lr", "succeeded", 7200, 140, ["train", "evaluate"],
     {"loss": 0.287, "accuracy": 0.934}, {"learning_rate": 0.0005, "epochs": 12}),
    ("20261118-140640000-j1k2l3", None, "interrupted", 10800, 33, ["etl"], {}, {}),
]


@pytest.fixture
def fixed_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    root = make_project(tmp_path / "proj")
    store = RunStore(root)
    sid = 0
    with store.db.write() as conn:
        for run_id, name, status, offset, duration, steps, metrics, params in RUNS:
            started = T0 + offset
            conn.execute(
                "INSERT INTO runs (id, name, status, explicit, started, ended, git_commit, git_dirty, env_hash)"
                " VALUES (?, ?, ?, 0, ?, ?, 'c0ffee1234', 0, 'e' || ?)",
                (run_id, name, status, started, started + duration, "0" * 15),
            )
            span = duration / len(steps)
            for i, step in enumerate(steps):
                sid += 1
                last = i == len(steps) - 1
                conn.execute(
                    "INSERT INTO step_runs (id, run_id, step, folder, status, started, ended, peak_rss, cpu_seconds,"
                    " code_hash, func_hash, exit_code, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (sid, run_id, step, step, status if last else "succeeded", started + i * span,
                     started + (i + 1) * span, (100 + 40 * i) * 2**20, span * 0.9, f"code{sid:04d}" * 4,
                     f"func{sid:04d}" * 4, 1 if status == "failed" and last else 0,
                     "Traceback...\nValueError: loss diverged" if status == "failed" and last else None),
                )
                if step == "train":
                    for k, v in params.items():
                        conn.execute("INSERT INTO params (run_id, key, step_run_id, value) VALUES (?, ?, ?, ?)",
                                     (run_id, k, sid, repr(v)))
                    for k, v in metrics.items():
                        for it in range(5):
                            conn.execute(
                                "INSERT INTO metrics (run_id, step_run_id, key, value, iteration, ts) VALUES (?, ?, ?, ?, ?, ?)",
                                (run_id, sid, k, v * (1 + (4 - it) * 0.1), it, started + it),
                            )
                    conn.execute(
                        "INSERT INTO datasets (run_id, step_run_id, role, name, path, hash, records, bytes)"
                        " VALUES (?, ?, 'input', 'prepared', 'data/prepared', 'd1d2d3d4d5d6d7d8', 1797, 14721024)",
                        (run_id, sid),
                    )
    store.close()
    return root


async def _wait(pilot, condition, tries: int = 1000) -> None:
    """Pause until ``condition()`` holds (a query that finds nothing yet counts as false), then once more."""
    for _ in range(tries):
        try:
            if condition():
                break
        except Exception:
            pass
        await pilot.pause(0.02)
    await pilot.pause()


def fixed_app(root: Path):
    return make_app(root, now=lambda: NOW)


async def _runs_ready(pilot) -> None:
    app = pilot.app
    await _wait(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded
                and app.screen.query_one(RunsTable).rows)


# every screen at the two sizes issue 16 names: the smallest terminal people use, and a roomy one
SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


@SIZES
def test_runs_screen(snap_compare, fixed_project: Path, size: tuple[int, int]) -> None:
    assert snap_compare(fixed_app(fixed_project), terminal_size=size, run_before=_runs_ready)


@SIZES
def test_run_screen_overview(snap_compare, fixed_project: Path, size: tuple[int, int]) -> None:
    async def open_run(pilot) -> None:
        await _runs_ready(pilot)
        pilot.app.screen.open_run(RUNS[2][0])
        await _wait(pilot, lambda: isinstance(pilot.app.screen, RunScreen) and pilot.app.screen.desc is not None)

    assert snap_compare(fixed_app(fixed_project), terminal_size=size, run_before=open_run)


@SIZES
def test_compare_screen(snap_compare, fixed_project: Path, size: tuple[int, int]) -> None:
    async def compare(pilot) -> None:
        await _runs_ready(pilot)
        pilot.app.push_screen(CompareScreen(pilot.app.project, RUNS[2][0], RUNS[0][0]))
        await _wait(pilot, lambda: isinstance(pilot.app.screen, CompareScreen)
                    and pilot.app.screen.query_one("#compare-table").row_count)

    assert snap_compare(fixed_app(fixed_project), terminal_size=size, run_before=compare)


@SIZES
def test_launch_screen(snap_compare, fixed_project: Path, size: tuple[int, int]) -> None:
    async def launch(pilot) -> None:
        await _runs_ready(pilot)
        await pilot.press("l")
        await _wait(pilot, lambda: isinstance(pilot.app.screen, LaunchScreen) and pilot.app.screen.query("#param-n"))

    assert snap_compare(fixed_app(fixed_project), terminal_size=size, run_before=launch)


@SIZES
def test_help_screen(snap_compare, fixed_project: Path, size: tuple[int, int]) -> None:
    async def help_(pilot) -> None:
        await _runs_ready(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(fixed_app(fixed_project), terminal_size=size, run_before=help_)


@SIZES
def test_label_screen(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    from test_tui_label import LABEL_TOML, write_pool

    from blase_tui.tui.screens.label import LabelScreen

    root = make_project(tmp_path / "alerts", main_src="from blase_tui import step\n", toml=LABEL_TOML)
    write_pool(root)
    app = make_app(root, start="label", label_options={})

    async def ready(pilot) -> None:
        await _wait(pilot, lambda: isinstance(pilot.app.screen, LabelScreen) and pilot.app.screen.record is not None
                    and pilot.app.screen.latencies is not None and not pilot.app.screen.busy)

    assert snap_compare(app, terminal_size=size, run_before=ready)


@SIZES
def test_run_screen_metrics(snap_compare, fixed_project: Path, size: tuple[int, int]) -> None:
    async def metrics(pilot) -> None:
        await _runs_ready(pilot)
        pilot.app.screen.open_run(RUNS[2][0])
        await _wait(pilot, lambda: isinstance(pilot.app.screen, RunScreen) and pilot.app.screen.desc is not None)
        await pilot.press("2")
        await _wait(pilot, lambda: pilot.app.screen.query_one("#metric-list").option_count)

    assert snap_compare(fixed_app(fixed_project), terminal_size=size, run_before=metrics)


@SIZES
def test_edit_run_dialog(snap_compare, fixed_project: Path, size: tuple[int, int]) -> None:
    async def edit(pilot) -> None:
        await _runs_ready(pilot)
        await pilot.press("e")
        await _wait(pilot, lambda: pilot.app.screen.__class__.__name__ == "EditRunScreen")

    assert snap_compare(fixed_app(fixed_project), terminal_size=size, run_before=edit)
