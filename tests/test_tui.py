"""The TUI driven with Textual's Pilot over a real project: a real SQLite store, real `blase step` child
processes, real event files. Every wait is on a condition with a deadline, never a bare sleep."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from conftest import REPO, runs_json, until

from blase_tui.tui.app import make_app
from blase_tui.tui.screens.compare import CompareScreen
from blase_tui.tui.screens.jobs import JobsScreen
from blase_tui.tui.screens.projects import ProjectsScreen
from blase_tui.tui.screens.run import RunScreen
from blase_tui.tui.screens.runs import RunsScreen
from blase_tui.tui.widgets.progress_pane import ProgressPane
from blase_tui.tui.widgets.runs_table import RunsTable
from blase_tui.tui.widgets.step_panes import StepPanes

pytestmark = pytest.mark.timeout(180)




def table(app) -> RunsTable:
    return app.screen.query_one(RunsTable)


async def runs_loaded(pilot, app, n: int) -> RunsTable:
    await until(pilot, lambda: isinstance(app.screen, RunsScreen) and len(table(app).rows) >= n, what=f"{n} runs")
    return table(app)


async def test_projects_to_runs_to_run_to_artifact_preview(project: Path, blase, tmp_path: Path) -> None:
    blase("step", "a", "--set", "n=4", cwd=project, check=True)
    blase("projects", "add", str(project), cwd=tmp_path, check=True)
    app = make_app(None)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen) and app.screen.query_one("#projects-table").row_count,
                    what="the project list")
        assert "testproj" in str(app.screen.query_one("#projects-table").get_row_at(0))
        await pilot.press("enter")
        runs = await runs_loaded(pilot, app, 1)
        run_id = runs.order[0]
        assert runs.rows[run_id]["status"] == "succeeded" and runs.rows[run_id]["metrics"]["loss"] == pytest.approx(0.25)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.desc is not None, what="run screen")
        screen = app.screen
        assert screen.run_id == run_id
        assert "a" in str(screen.query_one("#timeline").render())
        await pilot.press("4")  # artifacts tab
        from blase_tui.tui.widgets.artifact_preview import ArtifactPreview
        from blase_tui.tui.widgets.artifact_tree import ArtifactTree

        tree = await until(pilot, lambda: screen.query_one(ArtifactTree), what="artifact tree")
        artifact = next((project / "runs" / run_id).rglob("a.txt"))
        tree.post_message(ArtifactTree.Selected(artifact))
        await until(pilot, lambda: "n=4" in screen.query_one(ArtifactPreview).text(), what="the preview of a.txt")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))


async def test_launch_sample_step_reaches_100_percent_and_succeeds(tmp_path: Path) -> None:
    root = tmp_path / "sample"
    shutil.copytree(REPO / "sample_project", root, ignore=shutil.ignore_patterns("runs", "data", ".blase", "models"))
    app = make_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("l")
        await until(pilot, lambda: app.screen.query_one("#step-list").option_count >= 5, timeout=60, what="steps")
        # the form is mounted after the list fills: wait for it (this raced once in CI)
        await until(pilot, lambda: (app.screen.current or {}).get("step") == "etl", what="the etl form")
        app.screen.query_one("#param-scale").value = "2"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen), what="jobs screen")
        panes = await until(pilot, lambda: app.screen.query_one(StepPanes))
        await until(pilot, lambda: panes.status in ("succeeded", "failed"), timeout=120, what="the etl step to end")
        job = app.jobs[0]
        assert panes.status == "succeeded", job.error_text()
        await until(pilot, lambda: job.poll() is not None, what="the child to exit")
        progress = panes.query_one(ProgressPane)
        assert progress.stages and all(progress.percent(s) == 100.0 for s in progress.stages if progress.stages[s].get("total"))
        assert any(e.get("total") for e in progress.stages.values())
        assert job.overrides == {"scale": "2"} and job.returncode == 0
        await pilot.press("escape")
        runs = await runs_loaded(pilot, app, 1)
        await until(pilot, lambda: runs.rows[job.run_id]["status"] == "succeeded", what="the run to turn succeeded")
    assert runs_json_status(root, job.run_id) == "succeeded"


def runs_json_status(root: Path, run_id: str) -> str:
    from blase_tui.store.runstore import RunStore

    store = RunStore(root)
    try:
        return store.get_run(run_id).status
    finally:
        store.close()


async def test_cancel_a_running_step_marks_it_interrupted(project: Path, blase) -> None:
    app = make_app(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        job = app.launch("slow", {})
        await until(pilot, lambda: (project / "started").exists() and job.locate(app.project.store), what="slow to start")
        panes = await until(pilot, lambda: app.screen.query_one(StepPanes))
        await until(pilot, lambda: panes.status == "running", what="running status")
        await pilot.press("x")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen")
        await pilot.press("y")
        await until(pilot, lambda: panes.status == "interrupted", what="interrupted")
        await until(pilot, lambda: job.poll() is not None, what="the child to exit")
        assert job.returncode == 130 and job.cancelled
        # the panes stop looking live: the stage says where it stopped, the figures that they are the last ones
        import io

        from rich.console import Console

        from blase_tui.tui.widgets.progress_pane import render_progress
        from blase_tui.tui.widgets.resource_pane import ResourcePane

        progress = panes.query_one(ProgressPane)
        await until(pilot, lambda: progress.stages.get("wait", {}).get("ended_as") == "interrupted",
                    what=f"ended ({progress.stages})")
        console = Console(width=90, file=io.StringIO(), record=True)
        console.print(render_progress(progress.stages, width=80))
        shown = console.export_text()
        assert "interrupted here" in shown and "/s" not in shown
        resources = panes.query_one(ResourcePane)
        assert resources.ended == "interrupted" and resources.border_title == "resources · ended"
    rows = runs_json(blase, project)
    assert rows[0]["id"] == job.run_id and rows[0]["status"] == "interrupted"


async def test_run_started_outside_appears_live(project: Path, spawn) -> None:
    app = make_app(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        runs = table(app)
        assert not runs.rows
        proc = spawn("step", "slow", cwd=project)
        # (the run's row is written a moment before its step's: wait for both, as a refresh shows them)
        await until(pilot, lambda: runs.rows and next(iter(runs.rows.values()))["status"] == "running"
                    and next(iter(runs.rows.values()))["steps"] == ["slow"], what="the outside run to show as running")
        run_id = runs.order[0]
        # open it: the Live tab follows the step started elsewhere
        await pilot.press("enter")
        screen = await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen)
        panes = await until(pilot, lambda: screen.query_one(StepPanes), what="live panes of the outside step")
        await until(pilot, lambda: panes.query_one(ProgressPane).stages.get("wait"), what="its progress events")
        (project / "release").write_text("go")
        assert proc.wait(60) == 0
        await until(pilot, lambda: panes.status == "succeeded", what="live panes see the end")
        # the open run screen reads the finished run again (its artifact tree too) and stays up
        await until(pilot, lambda: screen.desc.run.status == "succeeded", what="the run screen to see the end")
        await pilot.pause(0.3)
        assert app.screen is screen and "succeeded" in str(screen.query_one("#run-title").render())
        await pilot.press("escape")
        await until(pilot, lambda: runs.rows[run_id]["status"] == "succeeded", what="the row to turn succeeded")


async def test_a_run_renamed_or_deleted_elsewhere_changes_its_row(project: Path, blase,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the name changes (no start or end time moves) or the run goes: the watching table still follows."""
    from blase_tui.tui.screens import runs as runs_screen

    for _ in range(3):
        assert blase("step", "b", cwd=project).returncode == 0
    # no grace window: the runs ended before the table's first read, so only the edit can bring them back
    monkeypatch.setattr(runs_screen, "SLACK", 0.0)
    app = make_app(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        runs = table(app)
        assert len(runs.rows) == 3
        first, second, third = runs.order
        await pilot.press("down")  # the user is on the second run
        assert runs.current_id == second
        assert blase("runs", "edit", first, "--name", "renamed elsewhere", cwd=project).returncode == 0
        await until(pilot, lambda: runs.rows[first]["name"] == "renamed elsewhere", what="the new name")
        assert runs.has_names and runs.current_id == second
        assert blase("runs", "delete", third, "--yes", cwd=project).returncode == 0
        await until(pilot, lambda: third not in runs.rows, what="the deleted run to leave")
        assert runs.order == [first, second] and runs.current_id == second
        assert "2 runs" in str(app.screen.query_one("#runs-status").render())


async def test_a_step_started_outside_can_be_stopped_from_the_runs_table(project: Path, spawn) -> None:
    app = make_app(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        runs = table(app)
        proc = spawn("step", "slow", cwd=project)
        await until(pilot, lambda: (project / "started").exists() and runs.rows
                    and next(iter(runs.rows.values()))["status"] == "running", what="the outside run")
        await until(pilot, lambda: app.project.store.running_step_runs(runs.order[0]), what="its execution")
        await pilot.press("x")
        confirm = await until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen" and app.screen)
        assert f"slow (pid {proc.pid})" in confirm.question
        await pilot.press("y")
        await until(pilot, lambda: proc.poll() is not None, what="the outside step to stop")
        assert proc.returncode == 130
        await until(pilot, lambda: runs.rows[runs.order[0]]["status"] == "interrupted", what="the row to turn interrupted")
        await pilot.press("x")  # nothing running now: a warning, no dialog
        await pilot.pause(0.1)
        assert isinstance(app.screen, RunsScreen)


async def test_quitting_can_leave_launched_steps_running(project: Path) -> None:
    import os

    app = make_app(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        job = app.launch("slow", {})
        await until(pilot, lambda: (project / "started").exists(), what="slow to start")
        await pilot.press("q")
        dialog = await until(pilot, lambda: app.screen.__class__.__name__ == "ChoiceScreen" and app.screen)
        labels = [str(b.label) for b in dialog.query("Button")]
        assert labels == ["Stay (s)", "Quit, leave it running (l)", "Stop it and quit (c)"]
        assert dialog.question.startswith("The step slow is still running. It runs on its own")
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen), what="stay")
        await pilot.press("q")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ChoiceScreen")
        await pilot.press("l")
        await until(pilot, lambda: not app.is_running, what="the app to quit")
    try:
        assert job.poll() is None, "the launched step was stopped"
        os.kill(job.pid, 0)
    finally:
        (project / "release").write_text("go")
        job.proc.wait(timeout=60)
    assert job.poll() == 0  # it ran to its end after the app had gone


async def test_compare_two_runs(project: Path, blase) -> None:
    blase("step", "a", "--set", "n=2", cwd=project, check=True)
    blase("step", "a", "--set", "n=5", "--set", "lr=0.5", cwd=project, check=True)
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        runs = await runs_loaded(pilot, app, 2)
        await pilot.press("space", "down", "space", "c")
        screen = await until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen)
        dt = screen.query_one("#compare-table")
        await until(pilot, lambda: dt.row_count > 0, what="the diff")
        rows = [[str(c) for c in dt.get_row_at(i)] for i in range(dt.row_count)]
        by_item = {r[1]: (r[2], r[3]) for r in rows if r[1]}
        newer, older = runs.order[0], runs.order[1]
        assert screen.a == newer and screen.b == older
        assert by_item["a.n"] == ("5", "2")
        assert by_item["a.lr"] == ("0.5", "0.1")
        assert by_item["a/loss"] == ("0.2", "0.5")
        # issue 16: how B moved from A, marked in words too (lower is better for a loss)
        deltas = {r[1]: r[4] for r in rows if r[1]}
        assert deltas["a/loss"] == "+0.3 ✗ worse"
        # a metric's row draws its curve in both runs on one chart; other rows hide it
        from blase_tui.tui.widgets.metric_plot import MetricPlot

        plot = screen.query_one("#compare-plot", MetricPlot)
        assert not plot.display
        dt.move_cursor(row=next(i for i, r in enumerate(rows) if r[1] == "a/loss"))
        await until(pilot, lambda: plot.display and len(plot.series) == 2, what="the loss curves of A and B")
        curves = {name[0]: list(s.ys) for name, s in plot.series.items()}
        assert curves["A"] == [1.0, 0.5, 1 / 3, 0.25, 0.2] and curves["B"] == [1.0, 0.5]
        dt.move_cursor(row=next(i for i, r in enumerate(rows) if r[1] == "a.n"))
        await until(pilot, lambda: not plot.display, what="the chart to hide on a param row")


async def test_marks_say_a_and_b_and_a_third_is_refused(project: Path, blase) -> None:
    """Issue 16 item 10: marks are letters, not only colour; a third mark no longer drops the first silently."""
    for n in (2, 3, 4):
        blase("step", "a", "--set", f"n={n}", "--force", cwd=project, check=True)
    app = make_app(project)
    async with app.run_test(size=(100, 30)) as pilot:
        runs = await runs_loaded(pilot, app, 3)
        await pilot.press("space", "down", "space", "down", "space")
        assert runs.marked == runs.order[:2]
        await until(pilot, lambda: any("unmark it first" in n.message for n in app._notifications),
                    what="the refusal")
        lines = [runs.render_line(y).text for y in range(1, 4)]
        assert lines[0].startswith(f"A {runs.order[0]} ") and lines[1].startswith(f"B {runs.order[1]} ")
        assert lines[2].startswith(f"  {runs.order[2]} ")  # issue 27: a marked run's id kept whole (it lost "20")
        await pilot.resize_terminal(80, 24)  # the short id column: the letter and the whole random tail
        await until(pilot, lambda: runs.render_line(1).text.startswith(f"A {runs.order[0].rsplit('-', 1)[-1]} "),
                    what="A and the whole tail at 80 columns")
        await pilot.resize_terminal(100, 30)
        await pilot.press("up", "space", "down", "space")  # unmark B, then the third can be marked
        assert runs.marked == [runs.order[0], runs.order[2]]
        assert runs.render_line(3).text.startswith("B ")


async def test_filter_and_sort(project: Path, blase) -> None:
    for n in (1, 2, 4):
        blase("step", "a", "--set", f"n={n}", cwd=project, check=True)
    blase("step", "boom", cwd=project)
    app = make_app(project)
    async with app.run_test(size=(120, 30)) as pilot:
        runs = await runs_loaded(pilot, app, 4)
        await pilot.press("slash", *"failed")
        await until(pilot, lambda: len(runs.order) == 1)
        assert runs.rows[runs.order[0]]["status"] == "failed"
        await pilot.press("escape")
        await until(pilot, lambda: len(runs.order) == 4)
        await pilot.press("slash", *"loss<0.6", "enter")
        await until(pilot, lambda: len(runs.order) == 2, what="two runs with loss < 0.6")
        assert sorted(runs.rows[i]["metrics"]["loss"] for i in runs.order) == [0.25, 0.5]
        loss = next(c.key for c in runs.columns if c.title == "loss")  # metric:a/loss, step a's
        runs.sort_by(loss)  # lower is better for a loss: the best run first
        assert [runs.rows[i]["metrics"]["loss"] for i in runs.order] == [0.25, 0.5]
        await pilot.press("S")  # reverse
        assert [runs.rows[i]["metrics"]["loss"] for i in runs.order] == [0.5, 0.25]
        assert "loss" in runs.render_text().splitlines()[0]
        await pilot.press("escape")
        await until(pilot, lambda: len(runs.order) == 4)
        for direction in (False, True):  # a run without the metric goes last, whichever way
            runs.sort_reverse = direction
            runs.sort_by(loss)
            assert runs.rows[runs.order[-1]]["status"] == "failed", [runs.rows[i]["metrics"] for i in runs.order]
        status = app.screen.query_one("#runs-status")
        for typed, said in (("los<0.1", "`los<0.1`: no run has a metric or param `los` (metrics: loss"),
                            ("loss<abc", "`loss<abc`: abc is not a number")):
            await pilot.press("slash", *typed)
            await until(pilot, lambda said=said: said in str(status.render()), what=said)
            await pilot.press("escape")
        # params filter too (issue 16): `n=2` and `n>1` read the step's param n, `lr=0.1` its default
        await until(pilot, lambda: len(runs.order) == 4)
        await pilot.press("slash", *"n=2", "enter")
        await until(pilot, lambda: len(runs.order) == 1, what="the run with n=2")
        assert runs.rows[runs.order[0]]["metrics"]["loss"] == 0.5
        await pilot.press("escape")
        await pilot.press("slash", *"n>1 lr=0.1", "enter")
        await until(pilot, lambda: len(runs.order) == 2, what="runs with n>1 and lr=0.1")
        assert "no run has" not in str(status.render())


async def test_the_json_preview_keeps_what_a_number_says(tmp_path: Path) -> None:
    """A run.json's times (1796032431.47 and ...437.57) stay two different times, not 1796030000.0 twice."""
    import io

    from rich.console import Console

    from blase_tui.render import render_preview

    path = tmp_path / "run.json"
    path.write_text(json.dumps({"started": 1796032431.47, "ended": 1796032437.57, "accuracy": 0.9666666666666667,
                                "tiny": 3.979e-07}))
    console = Console(width=100, file=io.StringIO(), record=True)
    console.print(render_preview(path))
    shown = console.export_text()
    assert "1796032431.47" in shown and "1796032437.57" in shown and "1796030000" not in shown
    assert "0.966667" in shown and "3.979e-07" in shown


async def test_launch_refused_by_lock_shows_the_reason(project: Path, spawn) -> None:
    holder = spawn("step", "slow", cwd=project)
    from conftest import wait_for

    wait_for(lambda: (project / "started").exists(), what="slow to hold the lock")
    app = make_app(project)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, RunsScreen))
            job = app.launch("slow", {})
            panes = await until(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.query_one(StepPanes))
            await until(pilot, lambda: job.poll() is not None, what="the second copy to exit")
            assert job.returncode == 3
            await until(pilot, lambda: "already running" in " ".join(panes.log_lines), what="the lock message in the log")
    finally:
        (project / "release").write_text("go")
        holder.wait(60)


def test_tui_with_a_missing_folder_is_a_one_line_error(blase, tmp_path: Path) -> None:
    proc = blase("tui", str(tmp_path / "nope"), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"blase: {tmp_path / 'nope'} does not exist; give the path of a project folder."]


async def test_launch_form_typing_right_after_enter_goes_into_the_param(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("l")
        await until(pilot, lambda: app.screen.query_one("#step-list").option_count >= 3, timeout=60, what="steps")
        # enter selects `a` and moves focus to its first param; the keys right after it must land there
        await pilot.press("enter", "1", "2", "tab", "x", "y", "z")
        screen = app.screen
        assert screen.overrides() == {"n": "12", "lr": "xyz"}
        # the type check of `blase step --set` happens in the form: lr=xyz does not launch
        await pilot.press("ctrl+s")
        assert not app.jobs and isinstance(app.screen, type(screen))
        screen.query_one("#param-lr").value = "0.1"
        screen.query_one("#param-n").value = "7"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        assert app.jobs[0].overrides == {"n": "7"}
        await until(pilot, lambda: app.jobs[0].poll() is not None, what="the step to finish")
        assert app.jobs[0].returncode == 0


async def test_start_pressed_while_the_form_is_replaced_is_refused_not_a_crash(project: Path) -> None:
    """Between a step being chosen and its inputs being mounted, start must not read the old step's inputs
    (they are gone) nor the new one's (not there yet): it says there is no step yet, and launches nothing."""
    import asyncio

    app = make_app(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("l")
        screen = app.screen
        await until(pilot, lambda: screen.current is not None and screen.query("#param-rows Input"), timeout=60,
                    what="the first step's form")
        other = next(s for s in screen.steps if s is not screen.current and s.get("params"))
        replacing = asyncio.create_task(screen._show_form(other))
        await asyncio.sleep(0)  # the form's old inputs are being removed, the new ones not yet mounted
        assert screen.current is None
        screen.action_start()
        assert not app.jobs and app.screen is screen
        await replacing
        assert screen.current is other
        assert set(screen.overrides()) == set()  # every input of the new step is there to read


async def test_tab_goes_from_the_step_list_to_the_first_param(project: Path) -> None:
    """Issue 16 item 8: one Tab from the step list lands in the first param, each stop shows focus."""
    from textual.widgets import Input, OptionList

    app = make_app(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("l")
        await until(pilot, lambda: app.screen.query_one("#step-list").option_count >= 3, timeout=60, what="steps")
        await until(pilot, lambda: app.screen.query("#param-rows Input"), what="the params of the first step")
        assert isinstance(app.focused, OptionList)
        stops = []
        for _ in range(5):
            await pilot.press("tab")
            stops.append(app.focused)
        assert [w.id for w in stops[:3]] == ["param-n", "param-lr", "param-name"]
        assert all(isinstance(w, Input) for w in stops[:3])
        assert [type(w).__name__ for w in stops[3:]] == ["Checkbox", "Button"]  # --force, then Start


async def test_two_launched_steps_each_have_their_own_panes(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        slow = app.launch("slow", {})
        await until(pilot, lambda: (project / "started").exists(), what="slow to start")
        counted = app.launch("counted", {"total": "10"})
        jobs = await until(pilot, lambda: isinstance(app.screen, JobsScreen) and len(app.screen.shown) == 2 and app.screen)
        panes = list(jobs.query(StepPanes))
        assert len(panes) == 2 and {p.job.step for p in panes} == {"slow", "counted"}
        by_step = {p.job.step: p for p in panes}
        await until(pilot, lambda: by_step["counted"].status == "succeeded", what="counted to finish")
        assert by_step["slow"].status == "running"  # the other tab's step goes on, with its own panes
        assert by_step["counted"].query_one(ProgressPane).percent("count") == 100.0
        assert "wait" in by_step["slow"].query_one(ProgressPane).stages
        assert jobs.current_job() is counted  # the newest launch is the tab shown
        await pilot.press("1")
        assert jobs.current_job() is slow
        # issue 16 item 10: a finished step's tab can be closed; a running one's cannot
        await pilot.press("w")
        assert len(jobs.query(StepPanes)) == 2
        await pilot.press("2", "w")
        await until(pilot, lambda: len(jobs.query(StepPanes)) == 1, what="the finished tab to close")
        assert jobs.current_job() is slow
        await pilot.press("2", "]")  # the closed tab's number is not reused; [ ] go round the open ones
        assert jobs.current_job() is slow
        (project / "release").write_text("go")
        await until(pilot, lambda: slow.poll() is not None and by_step["slow"].status == "succeeded")


async def test_a_run_whose_process_was_killed_turns_interrupted(project: Path, spawn) -> None:
    """An open TUI notices within a few seconds that a run's process died (kill -9), as the next command
    would: nothing writes to the store, so the runs screen looks for dead owners itself."""
    import signal

    app = make_app(project)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen), what="the runs screen")
        proc = spawn("step", "slow", cwd=project)
        runs = await runs_loaded(pilot, app, 1)
        await until(pilot, lambda: runs.rows and next(iter(runs.rows.values()))["status"] == "running",
                    what="the step to show as running")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        await until(pilot, lambda: next(iter(runs.rows.values()))["status"] == "interrupted", timeout=10,
                    what="the killed run to show as interrupted")


REUSE_MAIN = '''
from blase_tui import step


@step(reuse=True)
def a(ctx):
    """Reads nothing but its params: reused when unchanged."""
    ctx.log_metric("x", 1.0)
    (ctx.artifact_dir / "a.txt").write_text("a")


@step
def b(ctx):
    """Second step."""
    ctx.log_metric("y", 2.0)
'''


async def test_a_reused_step_names_the_run_that_computed_it(tmp_path: Path, blase) -> None:
    from conftest import make_project

    root = make_project(tmp_path / "reuse", main_src=REUSE_MAIN, toml='[project]\nname = "reuse"\n')
    blase("step", "a", cwd=root, check=True)
    producer = runs_json(blase, root)[0]["id"]
    blase("step", "a", "--start-run", cwd=root, check=True)
    blase("step", "b", "--end-run", cwd=root, check=True)
    app = make_app(root)
    async with app.run_test(size=(120, 36)) as pilot:
        runs = await runs_loaded(pilot, app, 2)
        assert runs.order[0] != producer
        await pilot.press("enter")
        screen = await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.desc is not None
                             and app.screen, what="the run screen")
        import io

        from rich.console import Console

        from blase_tui.tui.screens.run import render_timeline

        console = Console(width=120, file=io.StringIO(), record=True)
        console.print(render_timeline(screen.desc, now=time.time()))
        timeline = console.export_text()
        assert "succeeded (reused)" in timeline
        assert f"a: reused the outputs of run {producer} (nothing ran)" in timeline


MONITOR_MAIN = '''
import numpy as np
import pandas as pd

from blase_tui import Monitor, step


@step
def monitor(ctx):
    """Two windows of live data; the second has a moved `age`."""
    rng = np.random.default_rng(0)
    m = Monitor(triggers={"features": ["age"], "min_samples": 10})
    m.load_feature_priors({"format": 1, "kind": "features", "features": {
        "age": {"type": "numeric", "sample": rng.normal(40, 10, 2000).tolist()},
        "colour": {"type": "categorical", "counts": {"red": 500, "blue": 500}}}})
    for shift in (0, 15):
        live = pd.DataFrame({"age": rng.normal(40 + shift, 10, 500), "colour": rng.choice(["red", "blue"], 500)})
        m.submit_live_batch(live, rng.dirichlet([1, 1], 500))
        m.track_performance_metrics()
        m.detect_feature_drift(live)
        m.check_triggers()
'''


async def test_the_monitor_tab_shows_the_drift_windows_and_triggers(tmp_path: Path, blase) -> None:
    from conftest import make_project

    from blase_tui.tui.widgets.monitor_view import MonitorView

    root = make_project(tmp_path / "mon", main_src=MONITOR_MAIN, toml='[project]\nname = "mon"\n')
    blase("step", "monitor", cwd=root, check=True, timeout=120)
    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot, app, 1)
        await pilot.press("enter")
        screen = await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.desc is not None
                             and app.screen, what="the run screen")
        await pilot.press("6")
        view = screen.query_one(MonitorView)
        await until(pilot, lambda: view.shown is not None, what="the monitor view")
        import io

        from rich.console import Console

        console = Console(width=78, file=io.StringIO(), record=True)
        console.print(view.shown)
        shown = console.export_text()
        assert "2 windows; the last (batch 2, 500 records): 1 of 2 features drifted" in shown.replace("\n", " ")
        age = next(line for line in shown.splitlines() if line.strip().startswith("age"))
        assert "drifted" in age and age.rstrip().endswith("·x")  # quiet in the first window, flagged in the second
        assert "estimated_accuracy" in shown
        assert "batch 2: 50% of the features drifted (drift_share = 0.3); feature age drifted" in " ".join(
            shown.split())


def test_metric_cells_fit_eight_cells() -> None:
    from blase_tui.tui.widgets.runs_table import metric_cell

    assert [metric_cell(v) for v in (3.979e-07, -3.979e-07, 0.2871, 123456789.0, 12345.678, 0.0, 5)] == [
        "3.98e-7", "-3.98e-7", "0.2871", "1.23e8", "1.23e4", "0", "5"]


def test_a_slow_rate_never_reads_zero() -> None:
    from blase_tui.core.fmt import rate_text

    assert [rate_text(r, "epochs") for r in (0.24, 2.5, 37.26, 1234.5, 0)] == [
        "4.17 s/epoch", "2.5 epochs/s", "37.3 epochs/s", "1,234 epochs/s", "0 epochs/s"]


def test_the_overall_eta_counts_down_within_an_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 3 of issue 16: a bar over the epochs moves its rate and ETA with the batches of the epoch under way,
    so the ETA counts down steadily: it neither stands still for an epoch (none at all in the first) nor jumps."""
    from blase_tui.core import context
    from blase_tui.core.fmt import eta_seconds
    from blase_tui.store.events import EventWriter, read_events

    clock = [0.0]
    monkeypatch.setattr(context.time, "monotonic", lambda: clock[0])
    writer = EventWriter(tmp_path / "events.jsonl")
    overall = context.Progress(writer, "train", total=4, unit="epochs")
    for _epoch in range(3):
        for batch in range(1, 6):  # 5 batches of 2 s: an epoch takes 10 s, the training 40 s
            clock[0] += 2.0
            overall.advance_within(batch / 5 if batch < 5 else 0.99)
        overall.update(1)
    writer.close()
    shown = [(e["elapsed"], eta_seconds(e)) for e in read_events(tmp_path / "events.jsonl")[1:]]
    assert len(shown) == 15 and all(eta is not None for _, eta in shown)  # from the first batch on
    for elapsed, eta in shown:
        assert eta == pytest.approx(40 - elapsed, abs=0.5)  # 2 s later, 2 s less: no stand-still, no jump


async def test_new_runs_arriving_while_scrolled_never_move_the_highlighted_run(project: Path, blase) -> None:
    """Item 1 of issue 16: runs coming in (cron, another terminal) while the user reads further down: the rows on
    screen stay where they are, the highlighted run stays highlighted and on screen, and Enter opens it."""
    blase("step", "a", cwd=project, check=True)
    app = make_app(project)
    async with app.run_test(size=(120, 16)) as pilot:
        runs = await runs_loaded(pilot, app, 1)
        template = runs.rows[runs.order[0]]

        def fake(i: int) -> dict:  # the first 40 older than the real run, the next ones newer
            day = "20991231" if i >= 100 else "20000101"
            return {**template, "id": f"{day}-1{i:05d}000-fake{i:02d}", "name": f"fake {i}"}

        runs.upsert([fake(i) for i in range(40)])
        await until(pilot, lambda: len(runs.order) == 41)
        runs.focus()
        for _ in range(20):
            await pilot.press("down")
        for _ in range(5):  # back up a little: the highlighted run mid-screen, the view scrolled
            await pilot.press("up")
        await until(pilot, lambda: runs.cursor == 15 and runs.scroll_offset.y > 0, what="scrolled down")
        highlighted, top = runs.current_id, runs.order[int(runs.scroll_offset.y)]
        runs.upsert([fake(100 + i) for i in range(5)])  # newer than all: they sort above
        await pilot.pause()
        assert len(runs.order) == 46 and runs.order[0] == fake(104)["id"]
        assert runs.current_id == highlighted, "the highlighted run changed without a key"
        assert runs.order[int(runs.scroll_offset.y)] == top, "the rows on screen drifted"
        height = runs.size.height - 1
        assert runs.scroll_offset.y <= runs.cursor < runs.scroll_offset.y + height, "the highlighted run left the screen"
        await pilot.press("enter")
        screen = await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen, what="the run screen")
        assert screen.run_id == highlighted


async def test_a_metric_with_one_value_gets_an_axis_around_it() -> None:
    """Item 10 of issue 16: one value (accuracy 0.95 logged once) is drawn on an axis around it, whose ticks say
    its digits, not on a wide default range."""
    import re

    from textual.app import App

    from blase_tui.tui.widgets.metric_plot import MetricPlot

    class One(App):
        def compose(self):  # noqa: ANN202
            yield MetricPlot(id="p")

    app = One()
    async with app.run_test(size=(60, 16)) as pilot:
        plot = app.query_one(MetricPlot)
        plot.set_series("accuracy", [0.0], [0.95])
        await pilot.pause()
        text = re.sub(r"<[^>]+>", "", app.export_screenshot()).replace("&#160;", " ")
        ticks = [float(t) for t in re.findall(r"^\s*(-?\d+\.\d+)┤", text, flags=re.M)]  # the y axis
        assert len(ticks) >= 3 and all(0.9 <= t <= 1.0 for t in ticks), ticks


async def test_the_live_log_keeps_following_after_a_resize() -> None:
    """Issue 16 item 10: a resize re-wraps the log; a log that followed the newest lines still does."""
    from textual.app import App, ComposeResult
    from textual.widgets import RichLog

    class Host(App):
        def compose(self) -> ComposeResult:
            yield StepPanes(lambda: None, lambda: False, title="t")

    app = Host()
    async with app.run_test(size=(120, 36)) as pilot:
        panes = app.query_one(StepPanes)
        log = panes.query_one(RichLog)
        panes.write_log([f"line {i} " + "x" * 150 for i in range(200)])
        log.focus()  # the user clicked into it: only scrolling up should stop it from following
        await until(pilot, lambda: log.is_vertical_scroll_end and log.max_scroll_y > 0, what="the end")
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        panes.write_log(["newest line"])
        await until(pilot, lambda: log.is_vertical_scroll_end and log.max_scroll_y > 0, what="following after resize")
        log.scroll_to(y=0, animate=False)  # the user scrolls up to read: it stays there
        await pilot.pause(0.1)
        panes.write_log(["one more"])
        await pilot.pause(0.2)
        assert log.scroll_y == 0


async def test_a_live_log_wraps_at_its_panes_width_even_when_lines_arrived_while_hidden() -> None:
    """The live log wraps at the pane's width (not the console's), and lines that arrive while its tab is hidden
    are wrapped at that width when the tab shows again (not in 20-column pieces)."""
    from textual.app import App, ComposeResult
    from textual.widgets import Static, TabbedContent, TabPane

    from blase_tui.tui.widgets.wrapped_log import WrappedLog

    class Host(App):
        def compose(self) -> ComposeResult:
            with TabbedContent(initial="live"):
                with TabPane("live", id="live"):
                    yield WrappedLog(id="log")
                with TabPane("other", id="other"):
                    yield Static("elsewhere")

    long = "word " * 40  # 200 characters
    app = Host()
    async with app.run_test(size=(100, 20)) as pilot:
        log = app.query_one(WrappedLog)
        await until(pilot, lambda: log.scrollable_content_region.width > 50, what="the log laid out")
        width = log.scrollable_content_region.width
        log.append([long])
        await until(pilot, lambda: len(log.lines) == 3, what="one long line in three")  # 200 chars at ~98
        await pilot.resize_terminal(90, 20)  # wrapped again at 88, then again at 98
        await until(pilot, lambda: log.scrollable_content_region.width < width)
        await pilot.resize_terminal(100, 20)
        await until(pilot, lambda: log.scrollable_content_region.width == width and len(log.lines) == 3)
        app.query_one(TabbedContent).active = "other"
        await pilot.pause()
        log.append([long])
        app.query_one(TabbedContent).active = "live"
        await until(pilot, lambda: len(log.lines) == 6, what=f"both lines wrapped at the pane ({len(log.lines)})")
        assert all(strip.cell_length <= width for strip in log.lines)
        assert max(strip.cell_length for strip in log.lines) > width - 8


async def test_the_logs_tab_wraps_long_lines(project: Path, blase) -> None:
    """Issue 16 item 10: the run screen's Logs tab wraps a long line instead of cutting it."""
    from textual.widgets import RichLog

    blase("step", "boom", cwd=project)
    app = make_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot, app, 1)
        await pilot.press("enter")
        screen = await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen)
        await pilot.press("3")
        log = screen.query_one("#run-log", RichLog)
        await until(pilot, lambda: log.lines, what="the log")
        text = "\n".join(strip.text for strip in log.lines)
        longest = max(len(line) for line in (project / "runs").rglob("log.txt").__next__().read_text().splitlines())
        assert longest > log.size.width  # there is a line too long for the pane ...
        assert max(len(strip.text.rstrip()) for strip in log.lines) <= log.size.width  # ... shown whole, wrapped
        assert "Traceback" in text or "boom" in text


async def test_the_logs_tab_opens_on_a_step_that_wrote_something(project: Path, blase) -> None:
    """A run whose last step wrote no log lines: the Logs tab opens on the step before it, not "(empty log)"."""
    from textual.widgets import OptionList

    assert blase("step", "counted", "--set", "total=2", "--start-run", cwd=project).returncode == 0
    assert blase("step", "b", "--end-run", cwd=project).returncode == 0  # logs a metric, writes no line
    app = make_app(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await runs_loaded(pilot, app, 1)
        await pilot.press("enter")
        screen = await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.desc and app.screen)
        await pilot.press("3")
        steps = screen.query_one("#log-steps", OptionList)
        assert steps.highlighted == 0 and str(steps.get_option_at_index(0).prompt).startswith("counted")
        log = screen.query_one("#run-log")
        await until(pilot, lambda: "counted to 2" in (log.text or ""), what="counted's log")


async def test_at_80x24_the_progress_box_keeps_its_border_above_the_log() -> None:
    """Issue 16 item 4: a training's stages (the whole run plus one per epoch) used to push the progress box
    past its share of the screen: its bottom border was cut and it ran into the log."""
    from textual.app import App, ComposeResult
    from textual.widgets import RichLog

    from blase_tui.tui.widgets.resource_pane import ResourcePane

    class Host(App):
        CSS_PATH = str(REPO / "blase_tui" / "tui" / "app.tcss")  # the app's layout rules for the panes

        def compose(self) -> ComposeResult:
            yield StepPanes(lambda: None, lambda: False, title="sample: train", budget=512 * 2**20)

    app = Host()
    async with app.run_test(size=(80, 19)) as pilot:  # what the jobs screen leaves the panes at 80x24
        panes = app.query_one(StepPanes)
        await until(pilot, lambda: panes.has_class("narrow"), what="the stacked layout")
        panes.query_one(ResourcePane).sample = {"rss": 386 << 20, "cpu": 185, "sys_mem_used": 900 << 20,
                                                "sys_mem_total": 24 << 30, "gpu": None}
        progress = panes.query_one(ProgressPane)
        progress.stages = {"train": {"stage": "train", "done": 7, "total": 32, "rate": 2.6, "unit": "epochs"}}
        for i in range(1, 9):
            progress.stages[f"train epoch {i}/32"] = {"stage": f"train epoch {i}/32", "done": 20 if i < 8 else 8,
                                                      "total": 20, "finished": i < 8, "unit": "batches"}
        progress.flush()
        await until(pilot, lambda: progress.region.x == 0 and progress.region.y > 1, what="the panes stacked")
        progress.flush()  # drawn again at its width
        await pilot.pause(0.1)
        top, log = panes.query_one("#panes-top"), panes.query_one(RichLog)
        assert progress.region.bottom <= top.region.bottom, (progress.region, top.region)
        assert log.region.y >= progress.region.bottom and log.region.height >= 4
        lines = [progress.render_line(y).text for y in range(progress.size.height)]
        assert "train epoch 8/32" in "".join(lines) and "train " in lines[0], lines  # the running stages


async def test_going_back_leaves_a_screens_toasts_behind(project: Path, blase) -> None:
    """Issue 16 item 10: a toast raised on one screen no longer shows again on the screen below it."""
    blase("step", "a", cwd=project, check=True)
    app = make_app(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await runs_loaded(pilot, app, 1)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        app.notify("a toast of the run screen", timeout=60)
        await pilot.press("x")  # the runs screen's key: nothing here; a dialog would keep the toast
        await pilot.pause(0.05)
        assert any(n.message == "a toast of the run screen" for n in app._notifications)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert not any(n.message == "a toast of the run screen" for n in app._notifications)


async def test_the_projects_screen_updates_by_itself(project: Path, blase, tmp_path: Path) -> None:
    """Issue 16 item 10: a run made elsewhere (cron, another terminal) shows in the projects list unasked."""
    blase("projects", "add", str(project), cwd=tmp_path, check=True)
    app = make_app(None)
    async with app.run_test(size=(120, 36)) as pilot:
        table = await until(pilot, lambda: isinstance(app.screen, ProjectsScreen)
                            and app.screen.query_one("#projects-table").row_count
                            and app.screen.query_one("#projects-table"), what="the project list")
        assert [str(c) for c in table.get_row_at(0)][1] == "0"
        blase("step", "a", cwd=project, check=True)
        await until(pilot, lambda: [str(c) for c in table.get_row_at(0)][1] == "1", timeout=15,
                    what="the new run to be counted without a key")
        assert "succeeded" in str(table.get_row_at(0)[3])


async def test_wide_terminals_show_more_metrics_and_no_header_is_cut(project: Path, blase) -> None:
    """Issue 16 item 6: at 120 columns the last header was cut (under the scrollbar); at 200 the extra width
    all went to the steps column. Now every header shows whole, and a wide terminal shows more metrics."""
    from conftest import make_project

    root = make_project(project.parent / "many", main_src='''
from blase_tui import step


@step
def fit(ctx, n: int = 1):
    ctx.log_metrics({"accuracy": 0.9, "val_loss": 0.31, "val_accuracy": 0.88, "precision": 0.8,
                     "recall": 0.7, "f1": 0.75, "roc_auc": 0.93, "loss": 0.2})
''')
    for n in range(40):  # enough rows for a scrollbar
        blase("step", "fit", "--set", f"n={n}", cwd=root, check=True)
    for width, least in ((120, 3), (200, 7)):
        app = make_app(root)
        async with app.run_test(size=(width, 24)) as pilot:
            runs = await runs_loaded(pilot, app, 40)
            await pilot.pause(0.1)
            header = runs.render_line(0).text
            cols = runs.visible_columns(runs._width())
            metrics = [c.title for c in cols if c.key.startswith("metric:")]
            assert len(metrics) >= least, (width, header)
            for title in metrics:
                assert title in header.split(), (width, title, header)  # whole, not "val_los"
            widths = dict(zip([c.key for c in cols], runs._widths(cols, runs._width()), strict=True))
            assert widths["steps"] <= 40
            assert cols[0].width == 27  # the full run id (and the mark before it) at both sizes


def test_deltas_know_which_way_is_better() -> None:
    from blase_tui.core.fmt import delta_text

    assert delta_text("val_loss", 0.3, 0.2) == ("-0.1", "better")
    assert delta_text("accuracy", 0.9, 0.8) == ("-0.1", "worse")
    assert delta_text("train/seconds", 2, 3) == ("+1", "worse")
    assert delta_text("train_time/accuracy", 0.8, 0.9) == ("+0.1", "better")  # the step's name plays no part
    assert delta_text("f1", 0.5, 0.5) == ("0", "same")
    assert delta_text("f1", "a", 0.5) is None and delta_text("f1", True, 1.0) is None


def test_compare_cuts_a_long_item_name_in_the_middle_keeping_its_step() -> None:
    from blase_tui.tui.screens.compare import _shorten

    assert _shorten("etl.load_images.directory", 40) == "etl.load_images.directory"
    assert _shorten("etl.load_images.directory", 20) == "etl.…mages.directory"
    assert _shorten("evaluate.save_evaluation_logs.path", 22) == "evaluate.…on_logs.path"
    assert _shorten("evaluate/precision_macro", 18) == "evaluate/…on_macro"
    assert _shorten("a_very_long_step_name.x", 12) == "…step_name.x"  # a step too long to keep: the end
    assert all(len(_shorten(k, 20)) == 20 for k in ("etl.save_to_filesystem.directory", "x" * 30))


async def test_search_inside_a_step_log(project: Path, blase) -> None:
    """Issue 16: `/` in the Logs tab keeps the lines that hold some words, numbered; escape shows them all."""
    from blase_tui.tui.widgets.wrapped_log import WrappedLog

    blase("step", "boom", cwd=project)
    app = make_app(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await runs_loaded(pilot, app, 1)
        await pilot.press("enter")
        screen = await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen)
        await pilot.press("3")
        log = screen.query_one("#run-log", WrappedLog)
        await until(pilot, lambda: log.text, what="the log")
        total = len(log.text.splitlines())
        await pilot.press("slash", *"bad thing")
        found = screen.query_one("#log-found")
        await until(pilot, lambda: "lines hold `bad thing`" in str(found.render()), what="the count")
        shown = "\n".join(strip.text for strip in log.lines)
        assert "bad thing happened" in shown and "Traceback" not in shown
        n = sum("bad thing" in line for line in log.text.splitlines())
        assert f"{n} of {total} lines hold `bad thing`" in str(found.render()) and 0 < n < total
        await pilot.press("escape")  # leaves the search, not the screen
        await until(pilot, lambda: log.search == "" and "Traceback" in "\n".join(s.text for s in log.lines))
        assert app.screen is screen
        assert screen.query_one("#log-steps").has_focus  # up and down pick a step's log again
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))


async def test_edit_a_runs_name_note_and_tags(project: Path, blase) -> None:
    """Issue 16: e on the runs table names a run, notes what it was for and tags it; the CLI reads it back."""
    from textual.widgets import Input

    blase("step", "a", cwd=project, check=True)
    app = make_app(project)
    async with app.run_test(size=(100, 30)) as pilot:
        runs = await runs_loaded(pilot, app, 1)
        run_id = runs.order[0]
        await pilot.press("e")
        dialog = await until(pilot, lambda: app.screen.__class__.__name__ == "EditRunScreen" and app.screen)
        await pilot.press(*"baseline", "enter", *"first try", "enter", *"data=v2 bad", "enter")
        await until(pilot, lambda: "is not key=value" in str(dialog.query_one("#edit-problem").render()))
        tags = dialog.query_one("#edit-tags", Input)
        tags.value = "data=v2 owner=me"
        await pilot.press("enter")
        await until(pilot, lambda: runs.rows[run_id]["name"] == "baseline", what="the new name in the table")
        await pilot.press("e")
        dialog = await until(pilot, lambda: app.screen.__class__.__name__ == "EditRunScreen" and app.screen)
        assert dialog.query_one("#edit-tags", Input).value == "data=v2 owner=me"
        dialog.query_one("#edit-tags", Input).value = "data=v3"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
    await_shown = None
    for _ in range(50):
        shown = json.loads(blase("runs", "show", run_id, "--json", cwd=project).stdout)
        if shown["tags"] == {"data": "v3"}:
            await_shown = shown
            break
        time.sleep(0.1)
    assert await_shown is not None, shown["tags"]
    assert await_shown["name"] == "baseline" and await_shown["note"] == "first try"
    assert json.loads((project / "runs" / run_id / "run.json").read_text())["tags"] == {"data": "v3"}


async def test_the_models_screen_lists_versions_and_sets_an_alias(project: Path, blase) -> None:
    """Issue 16: M on the runs table opens the model registry; a points an alias at the highlighted version."""
    from blase_tui.store import models
    from blase_tui.store.runstore import RunStore
    from blase_tui.tui.screens.models import ModelsScreen

    blase("step", "a", cwd=project, check=True)
    run_id = runs_json(blase, project)[0]["id"]
    store = RunStore(project)
    try:
        for v in (1, 2):
            card = store.cas.put_bytes(json.dumps({"framework": "sklearn", "model": {"class": "LogisticRegression"},
                                                   "metrics": {"accuracy": 0.8 + v / 100}}).encode())
            models.register(store, "clf", run_id=run_id, step_run_id=1, framework="sklearn",
                            file_hash=store.cas.put_bytes(f"model {v}".encode()), card_hash=card,
                            file_name="clf.pkl", metrics={"accuracy": 0.8 + v / 100})
    finally:
        store.close()
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await runs_loaded(pilot, app, 1)
        await pilot.press("M")
        screen = await until(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen.rows and app.screen)
        assert [r.ref for r in screen.rows] == ["clf:2", "clf:1"]  # newest first
        await until(pilot, lambda: screen.shown and screen.shown[0] == "clf:2"
                    and screen.shown[1]["model"]["class"] == "LogisticRegression", what="the card of clf:2")
        await pilot.press("down", "a")
        prompt = await until(pilot, lambda: app.screen.__class__.__name__ == "PromptScreen" and app.screen)
        await pilot.press("enter")  # the grey "champion" is only an example: nothing given, the prompt stays
        await until(pilot, lambda: any("Type a value first" in n.message for n in app._notifications))
        assert app.screen is prompt
        await pilot.press(*"champion", "enter")
        await until(pilot, lambda: any(r.aliases == ("champion",) and r.version == 1 for r in screen.rows),
                    what="clf@champion on version 1")
        await pilot.press("a")
        await until(pilot, lambda: app.screen.__class__.__name__ == "PromptScreen")
        await pilot.press(*"9lives", "enter")  # not a valid alias: one line, nothing changed
        await until(pilot, lambda: any("must start with a letter" in n.message for n in app._notifications))
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.run_id == run_id)
    shown = json.loads(blase("models", "show", "clf@champion", "--json", cwd=project).stdout)
    assert shown["version"] == 1


async def test_the_system_view_lists_running_steps_of_every_project(project: Path, blase, spawn,
                                                                     tmp_path: Path) -> None:
    """Issue 16: s on the projects screen: every running step of the known projects, with its memory, and the
    host's CPU and memory; enter opens the step's run."""
    from conftest import make_project

    from blase_tui.tui.screens.system import SystemScreen

    other = make_project(tmp_path / "other")
    for root in (project, other):
        blase("projects", "add", str(root), cwd=tmp_path, check=True)
    step = spawn("step", "slow", cwd=project)
    wait_for_file = project / "started"
    app = make_app(None)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen) and wait_for_file.exists())
        await pilot.press("s")
        screen = await until(pilot, lambda: isinstance(app.screen, SystemScreen) and app.screen.steps
                             and app.screen, what="the running step")
        [row] = screen.steps
        assert row["project"] == "testproj" and row["step"] == "slow" and row["pid"] == step.pid
        assert row["rss"] and row["rss"] > 10 << 20
        assert "cores" in str(screen.query_one("#system-host").render())
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.run_id == row["run_id"])
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, SystemScreen))
        (project / "release").write_text("go")
        assert step.wait(timeout=60) == 0
        await until(pilot, lambda: not screen.steps, timeout=10, what="the ended step to leave the view")


async def test_a_wide_live_pane_charts_the_steps_quality_metrics() -> None:
    """Issue 16: the live panes draw the step's losses and accuracies as they arrive (timings left out), beside
    the log on a wide terminal; at 80 columns the log keeps the room."""
    from textual.app import App, ComposeResult

    from blase_tui.tui.widgets.metric_plot import MetricPlot

    class Host(App):
        CSS_PATH = str(REPO / "blase_tui" / "tui" / "app.tcss")

        def compose(self) -> ComposeResult:
            yield StepPanes(lambda: None, lambda: False, title="train")

    events = [{"type": "metric", "key": k, "value": v, "iteration": i, "t": 0}
              for i in range(1, 6) for k, v in (("loss", 1 / i), ("val_accuracy", 1 - 1 / (i + 1)), ("seconds", 0.2))]
    for width, shown in ((160, True), (80, False)):
        app = Host()
        async with app.run_test(size=(width, 40)) as pilot:
            panes = app.query_one(StepPanes)
            panes.post_message(StepPanes.Events(panes, events))
            await until(pilot, lambda panes=panes: panes.has_class("has-metrics"), what="the chart")
            chart = panes.query_one("#panes-chart", MetricPlot)
            assert set(chart.series) == {"loss", "val_accuracy"}  # seconds is a timing, not charted
            assert list(chart.series["loss"].ys) == [1, 0.5, 1 / 3, 0.25, 0.2]
            await pilot.pause(0.1)
            assert chart.display == shown and (chart.region.width > 0) == shown


def test_the_peak_shares_the_process_row_in_a_few_cells() -> None:
    """At half a 160-column screen the process row was cut (`peak 373.5 M…`): the peak's unit goes when it is
    the figure's own."""
    import io

    from rich.console import Console

    from blase_tui.tui.widgets.resource_pane import render_resources

    sample = {"rss": 373 << 20, "cpu": 90, "sys_mem_used": 1 << 30, "sys_mem_total": 24 << 30}
    console = Console(width=80, file=io.StringIO(), record=True)
    console.print(render_resources(sample, budget=512 << 20, peak=380 << 20))
    console.print(render_resources(sample, budget=4 << 30, peak=2 << 30))
    text = console.export_text()
    assert "373.0 / 512.0 MiB, peak 380.0" in text and "373.0 MiB / 4.0 GiB, peak 2.0 GiB" in text
    # a short terminal: no bars, two figures a line, each coloured as its bar would be (over the budget: red)
    over = {**sample, "rss": 600 << 20, "gpu": [{"util": 50, "mem_used": 1 << 30, "mem_total": 8 << 30}]}
    compact = render_resources(over, budget=512 << 20, peak=600 << 20, compact=True)
    lines = compact.plain.splitlines()
    assert len(lines) == 2 and lines[0].startswith("process 600.0 / 512.0 MiB") and "system 1.0 / 24.0 GiB" in lines[0]
    assert lines[1].startswith("cpu 90% of") and "gpu0 50% · 1.0 / 8.0 GiB" in lines[1]
    assert any(span.style == "red" for span in compact.spans)
