"""Issue 28: every project's runs in one TUI table (A on the projects screen): filtered by project, compared
across projects, each run opened in its own project."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_project, until

from blase_tui.tui.app import make_app

pytestmark = pytest.mark.timeout(180)

MAIN = '''
from blase_tui import step


@step
def fit(ctx, lr: float = 0.1):
    ctx.log_metrics({"accuracy": 1 - lr, "loss": lr})
'''


async def test_the_runs_of_every_project_in_one_table(tmp_path: Path, blase) -> None:
    from blase_tui.tui.screens.all_runs import AllRunsScreen
    from blase_tui.tui.screens.compare import CompareScreen
    from blase_tui.tui.screens.projects import ProjectsScreen
    from blase_tui.tui.screens.run import RunScreen
    from blase_tui.tui.widgets.runs_table import RunsTable

    roots = {}
    for name, lrs in (("digits", ("0.1", "0.2")), ("alerts", ("0.3",))):
        roots[name] = make_project(tmp_path / name, main_src=MAIN, toml=f'[project]\nname = "{name}"\n')
        for lr in lrs:
            blase("step", "fit", "--set", f"lr={lr}", cwd=roots[name], check=True)
        blase("projects", "add", str(roots[name]), cwd=tmp_path, check=True)
    app = make_app(None)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen), what="the projects")
        await pilot.press("A")
        screen = await until(pilot, lambda: isinstance(app.screen, AllRunsScreen) and app.screen, what="all runs")
        table = screen.query_one(RunsTable)
        await until(pilot, lambda: len(table.rows) == 3, what="three runs of two projects")
        assert [table.rows[i]["project"] for i in table.order] == ["alerts", "digits", "digits"]  # newest first
        header = table.render_line(0).text
        assert "project" in header.split() and "accuracy" in header.split()
        assert "3 runs of 2 projects" in str(screen.query_one("#all-runs-status").render())
        await pilot.press("slash", *"digits")
        await until(pilot, lambda: len(table.order) == 2, what="the filter by project name")
        await pilot.press("escape")
        await until(pilot, lambda: len(table.order) == 3)
        table.focus()
        await pilot.press("home", "space", "down", "space")  # alerts' run (A) and digits' newest (B)
        await pilot.press("c")
        compare = await until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen, what="compare")
        assert compare.project.name == "alerts" and compare.project_b.name == "digits"
        assert "alerts and digits" in str(compare.query_one(".title").render())
        await until(pilot, lambda: "params" in str(compare.query_one("#compare-head").render())
                    or compare.query_one("#compare-table").row_count, what="the diff of two projects' runs")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, AllRunsScreen))
        table.cursor = 2
        await pilot.press("enter")
        run = await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.desc is not None
                          and app.screen, what="the run screen")
        assert run.project.root == roots["digits"].resolve() and run.run_id == table.order[2]
        assert run.desc.steps[0].params["lr"] == 0.1
