"""Issue 27: what a user saw in tmux at 80x24 and 120x40 — views that did not follow the store, text cut without
saying so, counts that disagreed with their lists, a form that swallowed keys, a run screen that spun forever.
Each test drives the TUI with Textual's Pilot; every wait is on a condition with a deadline."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from conftest import make_project, until
from rich.console import Console
from test_tui_snapshots import NOW, RUNS, _register_models, _runs_ready, fixed_app, fixed_project  # noqa: F401

from blase_tui.store.runstore import RunStore
from blase_tui.tui.app import make_app
from blase_tui.tui.screens.run import RunScreen
from blase_tui.tui.screens.runs import RunsScreen

pytestmark = pytest.mark.timeout(180)




def plain(renderable, width: int = 200) -> str:
    console = Console(width=width, file=io.StringIO(), record=True)
    console.print(renderable)
    return console.export_text()


# ------------------------------------------------------------------------------------------------ 1. models
async def test_the_models_screen_shows_a_version_registered_while_open_and_cuts_metrics_with_an_ellipsis(
        fixed_project: Path) -> None:  # noqa: F811
    from textual.widgets import DataTable

    from blase_tui.store import models
    from blase_tui.tui.screens.models import ModelsScreen

    _register_models(fixed_project)
    app = fixed_app(fixed_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await _runs_ready(pilot)
        await pilot.press("M")
        screen = await until(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen.rows and app.screen)
        table = screen.query_one("#models-table", DataTable)
        await until(pilot, lambda: table.row_count == 2)
        # at 80 columns "loss=0.0587  accuracy=0.9846" does not fit beside the other columns: it ends in "…"
        cell = table.get_row("digits_cnn:2")[-1]
        assert str(cell).endswith("…") and str(cell).startswith("loss=")
        assert table.virtual_size.width <= table.scrollable_content_region.width, "the table still runs off screen"
        store = RunStore(fixed_project)  # another process registers a version while the screen is open
        try:
            models.register(store, "digits_cnn", run_id=RUNS[2][0], step_run_id=5, framework="torch",
                            file_hash=store.cas.put_bytes(b"weights 3"), card_hash=None, file_name="digits_cnn.pt",
                            metrics={"accuracy": 0.95})
        finally:
            store.close()
        await until(pilot, lambda: "digits_cnn:3" in [r.ref for r in screen.rows] and table.row_count == 3,
                    timeout=10, what="version 3 without a reload")
        assert str(table.get_row("digits_cnn:3")[-1]) == "accuracy=0.95"  # fits: not cut


def screen_lines(app) -> list[str]:
    """The terminal as the user sees it: one string per row of the screen, read from Textual's screenshot."""
    import html
    import re

    svg = app.export_screenshot()
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg):
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), html.unescape(m.group(3))))
    return ["".join(t for _, t in sorted(parts)).replace("\xa0", " ") for _, parts in sorted(rows.items())]


# ----------------------------------------------------------------------------------------------- 2. monitor
def _monitor_files(folder: Path, windows: int = 3, triggers: int = 7) -> None:
    """A monitor step's drift windows (a feature's missing share among the tests) and its fired triggers."""
    folder.mkdir(parents=True, exist_ok=True)
    for b in range(1, windows + 1):
        feats = [
            {"feature": "prediction.confidence", "test": "ks", "statistic": 0.4123, "p_value": 1.2e-45,
             "drifted": b > 1, "n": 500, "m": 2000, "extra": {}},
            {"feature": "income", "test": "missing", "statistic": 0.1834, "p_value": 3.4e-12, "drifted": b > 1,
             "n": 500, "m": 2000, "extra": {}},
            {"feature": "occupation", "test": "chi2", "statistic": 12.51, "p_value": 0.0021, "drifted": False,
             "n": 500, "m": 2000, "extra": {}},
            {"feature": "age", "test": "ks", "statistic": 0.0312, "p_value": 0.71, "drifted": False, "n": 500,
             "m": 2000, "extra": {}},
        ]
        (folder / f"drift_{b:04d}.json").write_text(json.dumps(
            {"batch": b, "records": 500, "drifted": [f["feature"] for f in feats if f["drifted"]], "features": feats,
             "alpha": 0.05, "correction": "holm"}))
    for t in range(1, triggers + 1):
        (folder / f"trigger_{t:04d}.json").write_text(json.dumps(
            {"batch": t, "why": [f"feature income drifted (window {t})"]}))


async def test_the_monitor_tab_says_how_many_triggers_it_lists_and_fits_80_columns(fixed_project: Path) -> None:  # noqa: F811
    import re

    from blase_tui.tui.widgets.monitor_view import MonitorView

    _monitor_files(fixed_project / "runs" / RUNS[0][0] / "train" / "artifacts" / "monitor")
    app = fixed_app(fixed_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await _runs_ready(pilot)
        app.screen.open_run(RUNS[0][0])
        screen = await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.desc is not None
                             and app.screen)
        await pilot.press("6")
        view = screen.query_one(MonitorView)
        await until(pilot, lambda: view.shown is not None and view.content_size.width > 0, what="the monitor view")
        await pilot.pause()
        on_screen = screen_lines(app)
        rows = {name: next((line for line in on_screen if name in line), "") for name in ("income", "occupation")}
        assert "income (missing)" in rows["income"] and " missing " in rows["income"], on_screen
        assert "…" not in rows["income"] and "drifted" in rows["income"] and rows["income"].rstrip().endswith("·xx")
        assert "…" not in rows["occupation"] and "chi2" in rows["occupation"]
        shown = " ".join(plain(view.shown, width=view.content_size.width).split())
        listed = re.findall(r"batch \d+: feature income drifted", shown)
        fired = int(re.search(r"triggers fired: (\d+)", shown).group(1))
        assert fired == 7
        assert len(listed) == fired or f"the last {len(listed)} shown" in shown, shown


# ---------------------------------------------------------------------------------------------- 3. progress
def _seconds(text: str) -> float:
    """A duration as fmt_seconds writes it ("3.2 s", "3 min 47 s", "1 h 2 min") in seconds."""
    import re

    total = 0.0
    for value, unit in re.findall(r"([\d.]+) (h|min|s)\b", text):
        total += float(value) * {"h": 3600, "min": 60, "s": 1}[unit]
    return total


@pytest.mark.parametrize("width", [80, 120])
async def test_the_progress_pane_never_cuts_a_unit_and_the_training_ends_after_its_epoch(width: int) -> None:
    import re

    from conftest import REPO
    from textual.app import App, ComposeResult

    from blase_tui.tui.widgets.progress_pane import ProgressPane
    from blase_tui.tui.widgets.step_panes import StepPanes

    class Host(App):
        CSS_PATH = str(REPO / "blase_tui" / "tui" / "app.tcss")

        def compose(self) -> ComposeResult:
            yield StepPanes(lambda: None, lambda: False, title="sample: train", budget=512 * 2**20)

    app = Host()
    async with app.run_test(size=(width, 19)) as pilot:
        panes = app.query_one(StepPanes)
        progress = panes.query_one(ProgressPane)
        # two epochs took 9.5 s each; the third runs slower (10 s a batch, 18 batches to go: 3 minutes)
        for event in ({"stage": "train", "done": 2, "total": 8, "unit": "epochs", "rate": 2.1 / 20, "within": 0.1,
                       "elapsed": 20.0, "t": 100.0},
                      {"stage": "train epoch 3/8", "done": 2, "total": 20, "unit": "batches", "rate": 0.1,
                       "elapsed": 20.0, "t": 101.0}):
            progress.feed({"type": "progress", "finished": False, **event})
        progress.flush()
        await until(pilot, lambda: progress.size.width > 0 and "train epoch" in progress.render_line(1).text)
        progress.flush()
        await pilot.pause()
        lines = [progress.render_line(y).text for y in range(progress.size.height)]
        epoch = next(line for line in lines if "3/8" in line and "2/20" in line)
        train = next(line for line in lines if "2/8" in line)
        assert "s/batche" not in epoch and not re.search(r"s/\w*…", epoch), lines  # a unit whole, or not at all
        assert re.search(r"s/batch\b", epoch) or "eta" in epoch, lines
        etas = [_seconds(line.split("eta", 1)[1]) for line in (train, epoch)]
        assert etas[1] == pytest.approx(180, abs=1)
        assert etas[0] >= etas[1] + 5 * 9, lines  # the epoch under way, then five more at about 9.5 s each


# ------------------------------------------------------------------------------------------------ 4. launch
async def test_the_launch_form_says_when_a_number_is_not_one_and_an_emptied_field_is_the_default(
        project: Path) -> None:
    from blase_tui.tui.screens.jobs import JobsScreen
    from blase_tui.tui.screens.launch import LaunchScreen

    app = make_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("l")
        screen = await until(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen.current is not None
                             and app.screen.query("#param-n") and app.screen, timeout=60, what="the form of a")
        field = screen.query_one("#param-n")
        field.focus()
        await pilot.press("end", "a", "b")
        await until(pilot, lambda: field.value == "3ab", what="the letters in the field")
        # said on screen, in one line naming the field and what it takes
        hint = await until(pilot, lambda: next((line for line in screen_lines(app) if "n takes a whole number" in line),
                                               None), what="a hint on screen")
        assert "`3ab`" in hint
        await pilot.press("backspace", "backspace")
        await until(pilot, lambda: not any("takes a whole number" in line for line in screen_lines(app)),
                    what="the hint to go once the value is a number again")
        # emptied: the default (the grey placeholder, 3), which passes
        await pilot.press("backspace")
        await until(pilot, lambda: field.value == "")
        assert field.placeholder == "3"
        assert screen.overrides() == {} and screen.problems(screen.overrides()) == []
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen), what="the step to start")
        job = app.jobs[0]
        assert job.overrides == {}
        await until(pilot, lambda: job.poll() is not None, timeout=60, what="the step to end")
        assert job.returncode == 0, job.error_text()


# ------------------------------------------------------------------------------------------ 5. the palette
async def test_the_palette_offers_launch_entries_before_the_launch_form_was_ever_opened(project: Path) -> None:
    from textual.command import CommandList, CommandPalette

    from blase_tui.tui.screens.launch import LaunchScreen

    app = make_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert not app.step_cache  # the launch form never opened
        await pilot.press("ctrl+p")
        palette = await until(pilot, lambda: isinstance(app.screen, CommandPalette) and app.screen)
        await pilot.press(*"launch counted")

        def prompts() -> list[str]:
            results = palette.query_one(CommandList)
            return [str(results.get_option_at_index(i).prompt) for i in range(results.option_count)]

        await until(pilot, lambda: any("launch counted" in p for p in prompts()), timeout=30,
                    what="a `launch counted` entry")
        await until(pilot, lambda: "launch counted" in prompts()[0], what="it first")
        await pilot.press("enter")
        form = await until(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen, what="the form")
        await until(pilot, lambda: (form.current or {}).get("step") == "counted", timeout=60, what="counted's form")


# ------------------------------------------------------------------------------------------------ 6. system
async def test_enter_in_the_system_view_opens_a_running_steps_run_on_its_live_tab(
        project: Path, spawn, monkeypatch: pytest.MonkeyPatch) -> None:
    from textual.widgets import TabbedContent

    from blase_tui.store import lineage

    real = lineage.lineage

    def slow_lineage(*args, **kwargs):  # a store that takes a moment to read (a big project, a network share)
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(lineage, "lineage", slow_lineage)

    from blase_tui.tui.screens.system import SystemScreen
    from blase_tui.tui.widgets.step_panes import StepPanes

    step = spawn("step", "slow", cwd=project)
    try:
        app = make_app(project)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, RunsScreen) and (project / "started").exists(),
                        timeout=60, what="slow to start")
            app.push_screen(SystemScreen())
            screen = await until(pilot, lambda: isinstance(app.screen, SystemScreen) and app.screen.steps
                                 and app.screen, timeout=30, what="the running step in the system view")
            assert screen.steps[0]["step"] == "slow"
            await pilot.press("enter")
            run = await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.query_one(
                TabbedContent).active and app.screen, what="the run screen")
            assert run.desc is None  # still reading the run
            assert run.query_one(TabbedContent).active == "live"  # from the first frame, not the Overview first
            await until(pilot, lambda: run.desc is not None, what="the run to load")
            await until(pilot, lambda: run.query_one(TabbedContent).active == "live" and run.query(StepPanes),
                        what="the Live tab")
            await pilot.pause(0.3)  # nothing switches it back afterwards (a later load, the focus of the overview)
            assert run.query_one(TabbedContent).active == "live"
    finally:
        (project / "release").write_text("go")
        step.wait(timeout=60)


# -------------------------------------------------------------------------------------------- 7. a deleted run
async def test_opening_a_deleted_run_from_the_jobs_tab_says_so_in_one_line(fixed_project: Path) -> None:  # noqa: F811
    from blase_tui.core.launch import LaunchedStep
    from blase_tui.tui.screens.jobs import JobsScreen
    from blase_tui.tui.widgets.step_panes import StepPanes

    run_id = RUNS[2][0]
    events = fixed_project / "runs" / run_id / "train" / "events.jsonl"
    events.parent.mkdir(parents=True, exist_ok=True)
    events.write_text(json.dumps({"t": NOW, "type": "status", "status": "running", "step": "train",
                                  "run_id": run_id, "step_run_id": 5, "pid": 1}) + "\n")
    app = fixed_app(fixed_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await _runs_ready(pilot)
        app.jobs.append(LaunchedStep(fixed_project, "train", {}, run_id=run_id, step_run_id=5, events_path=events,
                                     returncode=0))
        app.open_jobs()
        await until(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.query(StepPanes))
        store = RunStore(fixed_project)  # deleted meanwhile (`blase runs delete`, another window)
        try:
            store.delete_run(run_id)
        finally:
            store.close()
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen)
        line = await until(pilot, lambda: next((x for x in screen_lines(app) if "deleted" in x and "escape" in x),
                                               None), what="a line saying the run was deleted")
        assert "run was deleted" in line
        assert any(run_id in x and "deleted" in x for x in screen_lines(app))  # the title names the run
        assert not any("loading…" in x for x in screen_lines(app))
        assert not [n for n in app._notifications if n.severity == "error"]
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen), what="back to the jobs")


# ----------------------------------------------------------------------------------- 8. a running step's files
GROW_MAIN = '''
import time
from pathlib import Path

from blase_tui import main, step


@step
def grow(ctx):
    """Each time the file `grow` appears, 10,000 more bytes in data.bin and a line in the log; ends at `release`."""
    data = ctx.artifact_dir / "data.bin"
    data.write_bytes(b"x" * 10_000)
    ctx.log.info("wrote 10000 bytes")
    Path("started").write_text("yes")
    deadline = time.time() + 60
    while not Path("release").exists():
        if time.time() > deadline:
            raise TimeoutError("nobody released the step")
        if Path("grow").exists():
            with open(data, "ab") as fh:
                fh.write(b"x" * 10_000)
            ctx.log.info("grew to %d bytes", data.stat().st_size)
            Path("grow").unlink()
        time.sleep(0.05)


if __name__ == "__main__":
    main()
'''


async def test_a_running_steps_artifact_sizes_and_log_follow_the_step(tmp_path: Path, spawn) -> None:
    from textual.widgets import TabbedContent

    from blase_tui.tui.widgets.artifact_tree import ArtifactTree
    from blase_tui.tui.widgets.wrapped_log import WrappedLog

    root = make_project(tmp_path / "grow", main_src=GROW_MAIN, toml='[project]\nname = "grow"\n')
    proc = spawn("step", "grow", cwd=root)
    try:
        app = make_app(root)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, RunsScreen) and (root / "started").exists()
                        and app.screen.query_one("#runs-table").rows, timeout=60, what="the step to start")
            await pilot.press("enter")
            screen = await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.desc is not None
                                 and app.screen)
            tree = screen.query_one(ArtifactTree)

            def sizes() -> list[str]:
                return [str(n.label) for n in tree._walk(tree.root) if "data.bin" in str(n.label)]

            screen.query_one(TabbedContent).active = "logs"
            log = screen.query_one("#run-log", WrappedLog)
            await until(pilot, lambda: "wrote 10000 bytes" in (log.text or ""), what="the log")
            screen.query_one(TabbedContent).active = "artifacts"
            await until(pilot, lambda: sizes() == ["data.bin  9.8 KiB"], what=f"the first size ({sizes()})")
            (root / "grow").write_text("")  # the step writes more while the screen is open
            await until(pilot, lambda: sizes() == ["data.bin  19.5 KiB"], what=f"the new size ({sizes()})")
            await until(pilot, lambda: "grew to 20000 bytes" in (log.text or ""), what="the new log line")
            (root / "release").write_text("go")
            assert proc.wait(timeout=60) == 0
            await until(pilot, lambda: screen.desc.run.status == "succeeded", what="the run to end")
            assert sizes() == ["data.bin  19.5 KiB"] and "grew to 20000 bytes" in (log.text or "")
    finally:
        (root / "release").write_text("go")
        proc.wait(timeout=60)
