"""How the main screens look, as SVG snapshots (pytest-textual-snapshot) at fixed terminal sizes. The store
is written with fixed ids, times and hashes, the clock is fixed and the time zone is UTC, so nothing in a
snapshot depends on when or where it runs. Update with ``pytest tests/test_tui_snapshots.py --snapshot-update``
and look at the SVGs before committing."""

from __future__ import annotations

import json
import shutil
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

DATA = Path(__file__).parent / "data"
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


def _tables_settled(screen) -> bool:
    """Every DataTable on ``screen`` has measured its new rows (it does so when idle, and draws its header with
    the old widths until then)."""
    from textual.widgets import DataTable

    return all(not t._require_update_dimensions and not t._updated_cells for t in screen.query(DataTable))


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

    # the science, template and difference stamps side by side, the light curve with its error bars
    toml = LABEL_TOML.replace('image = "stamp"', 'image = ["stamp", "template", "difference"]').replace(
        'group = "fids"}', 'group = "fids", yerr = ["errs"]}')
    assert toml != LABEL_TOML
    root = make_project(tmp_path / "alerts", main_src="from blase_tui import step\n", toml=toml)
    write_pool(root, triplet=True)
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


@SIZES
def test_delete_confirmation(snap_compare, fixed_project: Path, size: tuple[int, int]) -> None:
    async def delete(pilot) -> None:
        await _runs_ready(pilot)
        await pilot.press("D")
        await _wait(pilot, lambda: pilot.app.screen.__class__.__name__ == "ConfirmScreen")

    assert snap_compare(fixed_app(fixed_project), terminal_size=size, run_before=delete)


@SIZES
def test_jobs_screen(snap_compare, fixed_project: Path, size: tuple[int, int]) -> None:
    """A launched training step that has ended: its tab, last figures (marked as the end), bars, log and chart,
    replayed from the events file of a real `train` step of the sample project."""
    from blase_tui.core.launch import LaunchedStep
    from blase_tui.tui.screens.jobs import JobsScreen
    from blase_tui.tui.widgets.step_panes import StepPanes

    run_id = RUNS[2][0]
    events = fixed_project / "runs" / run_id / "train" / "events.jsonl"
    events.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / "train_events.jsonl", events)

    async def jobs(pilot) -> None:
        await _runs_ready(pilot)
        job = LaunchedStep(fixed_project, "train", {"epochs": "8"}, run_id=run_id, step_run_id=5,
                           events_path=events, returncode=0)
        pilot.app.jobs.append(job)
        pilot.app.open_jobs()
        await _wait(pilot, lambda: isinstance(pilot.app.screen, JobsScreen)
                    and pilot.app.screen.query_one(StepPanes).status == "succeeded")

    assert snap_compare(fixed_app(fixed_project), terminal_size=size, run_before=jobs)


@SIZES
def test_projects_screen(snap_compare, fixed_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         size: tuple[int, int]) -> None:
    from blase_tui.core import registry

    monkeypatch.setenv("HOME", str(tmp_path))  # paths under the home folder read ~/...
    empty = make_project(tmp_path / "sandbox", toml='[project]\nname = "sandbox"\n')
    registry.add_project(fixed_project)
    registry.add_project(empty)

    async def ready(pilot) -> None:
        await _wait(pilot, lambda: pilot.app.screen.query_one("#projects-table").row_count == 2
                    and _tables_settled(pilot.app.screen))

    assert snap_compare(make_app(None, now=lambda: NOW), terminal_size=size, run_before=ready)


SYSTEM_STEPS = [
    {"project": "testproj", "root": "", "run_id": RUNS[2][0], "step": "train", "started": NOW - 754.0, "pid": 48211,
     "host": "ws1", "rss": 1_873_000_000, "cpu": 1402.5},
    {"project": "alerts", "root": "", "run_id": "20261118-165012000-q9r8s7", "step": "etl", "started": NOW - 61.0,
     "pid": 48377, "host": "ws1", "rss": 402_000_000, "cpu": 55.0},
]
SYSTEM_HOST = {"cpu": 61.0, "cores": 16, "mem_used": 21_500_000_000, "mem_total": 128 * 2**30,
               "gpus": [{"index": 0, "util": 87.0, "mem_used": 9 * 2**30, "mem_total": 80 * 2**30}], "at": NOW}


@SIZES
def test_system_screen(snap_compare, fixed_project: Path, size: tuple[int, int]) -> None:
    from blase_tui.tui.screens.system import SystemScreen

    steps = [{**s, "root": str(fixed_project)} for s in SYSTEM_STEPS]

    async def system(pilot) -> None:
        await _runs_ready(pilot)
        pilot.app.push_screen(SystemScreen(read=lambda: (steps, SYSTEM_HOST)))
        await _wait(pilot, lambda: isinstance(pilot.app.screen, SystemScreen)
                    and pilot.app.screen.query_one("#system-table").row_count == 2
                    and _tables_settled(pilot.app.screen))

    assert snap_compare(fixed_app(fixed_project), terminal_size=size, run_before=system)


def _register_models(root: Path) -> None:
    """Two versions of the sample's digits model, the second the champion, with a real training card."""
    store = RunStore(root)
    card = json.loads((DATA / "digits_cnn.card.json").read_text())
    with store.db.write() as conn:
        for version, run, sid, accuracy in ((1, RUNS[0][0], 3, 0.871), (2, RUNS[2][0], 5, 0.934)):
            card_hash = store.cas.put_bytes(json.dumps({**card, "training_run": run, "training_step_run": sid}).encode())
            file_hash = store.cas.put_bytes(b"weights of version %d" % version)
            metrics = {"loss": card["metrics"]["loss"] * (3 - version), "accuracy": accuracy}
            conn.execute("INSERT INTO models (name, version, run_id, step_run_id, framework, file_hash, card_hash,"
                         " file_name, metrics, created) VALUES ('digits_cnn', ?, ?, ?, 'torch', ?, ?, 'digits_cnn.pt',"
                         " ?, ?)", (version, run, sid, file_hash, card_hash, json.dumps(metrics), T0 + 3600 * version))
        conn.execute("INSERT INTO model_aliases (name, alias, version, set_at) VALUES ('digits_cnn', 'champion', 2, ?)",
                     (T0 + 9000,))
    store.close()


@SIZES
def test_models_screen(snap_compare, fixed_project: Path, size: tuple[int, int]) -> None:
    from blase_tui.tui.screens.models import ModelsScreen

    _register_models(fixed_project)

    async def models(pilot) -> None:
        await _runs_ready(pilot)
        await pilot.press("M")
        await _wait(pilot, lambda: isinstance(pilot.app.screen, ModelsScreen) and pilot.app.screen.shown is not None
                    and _tables_settled(pilot.app.screen))

    assert snap_compare(fixed_app(fixed_project), terminal_size=size, run_before=models)


@SIZES
def test_alias_prompt(snap_compare, fixed_project: Path, size: tuple[int, int]) -> None:
    from blase_tui.tui.screens.models import ModelsScreen

    _register_models(fixed_project)

    async def prompt(pilot) -> None:
        await _runs_ready(pilot)
        await pilot.press("M")
        await _wait(pilot, lambda: isinstance(pilot.app.screen, ModelsScreen) and pilot.app.screen.shown is not None)
        await pilot.press("a")
        await _wait(pilot, lambda: pilot.app.screen.__class__.__name__ == "PromptScreen")
        await pilot.press(*"production")

    assert snap_compare(fixed_app(fixed_project), terminal_size=size, run_before=prompt)


@SIZES
def test_quit_with_running_steps(snap_compare, fixed_project: Path, size: tuple[int, int]) -> None:
    """q while a launched step still runs: stay, quit and leave it running, or stop it and quit."""
    import subprocess
    import sys

    from blase_tui.core.launch import LaunchedStep

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # a step still running
    try:
        async def quit_(pilot) -> None:
            await _runs_ready(pilot)
            pilot.app.jobs.append(LaunchedStep(fixed_project, "train", {}, proc=child))
            await pilot.press("q")
            await _wait(pilot, lambda: pilot.app.screen.__class__.__name__ == "ChoiceScreen")

        assert snap_compare(fixed_app(fixed_project), terminal_size=size, run_before=quit_)
    finally:
        child.kill()
        child.wait()


async def test_a_long_overview_scrolls_with_the_keys_at_once(fixed_project: Path) -> None:
    """At 80x24 the overview is taller than the screen: PageDown scrolls it without a Tab first."""
    app = fixed_app(fixed_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await _runs_ready(pilot)
        app.screen.open_run(RUNS[2][0])
        await _wait(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.desc is not None)
        scroll = app.screen.query_one("#overview-scroll")
        await _wait(pilot, lambda: scroll.max_scroll_y > 0)
        await pilot.press("pagedown")
        await _wait(pilot, lambda: scroll.scroll_y > 0)
        assert scroll.scroll_y > 0


@SIZES
def test_assistant_screen_offline(snap_compare, fixed_project: Path, size: tuple[int, int]) -> None:
    """The assistant pane with no [agent] configured: ctrl+o gives the advice from the records (the failed run's
    error, what `blase run` would run)."""
    from blase_tui.tui.screens.assistant import AssistantScreen

    async def assistant(pilot) -> None:
        await _runs_ready(pilot)
        await pilot.press("a")
        await _wait(pilot, lambda: isinstance(pilot.app.screen, AssistantScreen))
        await pilot.press("ctrl+o")
        log = pilot.app.screen.query_one("#assistant-log")
        # the advice is in the log's text, and written out as the lines on screen (wrapped at the log's width)
        await _wait(pilot, lambda: "would run" in (log.text or "") and len(log.lines) >= 3, tries=3000)
        await pilot.pause(0.2)

    assert snap_compare(fixed_app(fixed_project), terminal_size=size, run_before=assistant)
