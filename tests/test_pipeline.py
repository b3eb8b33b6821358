"""`blase run` and `blase status` (issue 28): the pipeline as one run in one process, each step reused when up to
date, and the reasons a step would run again. Real subprocesses of `blase`, a real store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_project, runs_json

pytestmark = pytest.mark.timeout(300)

MAIN = '''
from pathlib import Path

from blase_tui import step


@step
def extract(ctx, rows: int = 5):
    ctx.log_dataset("source.txt", role="input")
    Path("data").mkdir(exist_ok=True)
    lines = Path("source.txt").read_text().split()[:rows]
    Path("data/raw.csv").write_text("x\\n" + "".join(f"{v}\\n" for v in lines))
    ctx.log_dataset("data/raw.csv", role="output")


@step
def features(ctx, scale: int = 2):
    ctx.log_dataset("data/raw.csv", role="input")
    values = [int(v) * scale for v in Path("data/raw.csv").read_text().split()[1:]]
    Path("data/features.csv").write_text("x\\n" + "".join(f"{v}\\n" for v in values))
    ctx.log_dataset("data/features.csv", role="output")


@step
def fit(ctx, fail: bool = False):
    ctx.log_dataset("data/features.csv", role="input")
    if fail:
        raise ValueError("the model did not converge")
    total = sum(int(v) for v in Path("data/features.csv").read_text().split()[1:])
    Path("model.txt").write_text(str(total))
    ctx.log_dataset("model.txt", role="output")
    ctx.log_metric("total", total)


@step
def scratch(ctx):
    """Not part of the pipeline: [pipeline] steps leaves it out."""
    raise RuntimeError("scratch must not run")
'''

TOML = '[project]\nname = "pipe"\n\n[pipeline]\nsteps = ["extract", "features", "fit"]\n'


@pytest.fixture
def pipe(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "pipe", main_src=MAIN, toml=TOML)
    (root / "source.txt").write_text("".join(f"{i}\n" for i in range(10)))
    return root


def status(blase, root: Path, *args: str) -> dict[str, dict]:
    proc = blase("status", "--json", *args, cwd=root, check=True)
    return {s["step"]: s for s in json.loads(proc.stdout)["steps"]}


def test_run_then_nothing_then_only_what_changed(pipe: Path, blase) -> None:
    assert {k: v["state"] for k, v in status(blase, pipe).items()} == dict.fromkeys(["extract", "features", "fit"],
                                                                                    "never ran")
    first = blase("run", cwd=pipe)
    assert first.returncode == 0, first.stderr
    runs = runs_json(blase, pipe)
    assert len(runs) == 1 and runs[0]["status"] == "succeeded"
    assert [s["step"] for s in runs[0]["steps"]] == ["extract", "features", "fit"]  # one run, in order; no scratch
    assert "3 of 3 steps ran" in first.stderr
    again = blase("run", cwd=pipe)
    assert again.returncode == 0 and "the pipeline is up to date: nothing ran" in again.stdout, again.stdout
    assert len(runs_json(blase, pipe)) == 1  # nothing ran, and no run was made

    # a param of the middle step: features and fit would run, and the dry run says why before anything runs
    dry = blase("run", "--dry-run", "--set", "features.scale=3", cwd=pipe)
    assert dry.returncode == 0 and "would run features, fit as one run" in dry.stdout, dry.stdout
    plan = status(blase, pipe, "--set", "features.scale=3")
    assert plan["extract"]["state"] == "up to date" and plan["extract"]["run"] == runs[0]["id"]
    assert plan["features"]["reasons"] == ["params changed: scale 2 → 3"]
    assert plan["fit"]["reasons"] == ["it reads data/features.csv, which `features` writes and runs first"]
    assert len(runs_json(blase, pipe)) == 1
    second = blase("run", "--set", "features.scale=3", cwd=pipe)
    assert second.returncode == 0 and "2 of 3 steps ran (features, fit)" in second.stderr, second.stderr
    assert f"`extract` is up to date: reusing the outputs of run {runs[0]['id']}." in second.stderr
    latest = runs_json(blase, pipe)[0]
    assert [s["step"] for s in latest["steps"]] == ["extract", "features", "fit"]
    assert (pipe / "model.txt").read_text() == str(3 * sum(range(5)))

    # the code of fit, and an input edited by hand: each named
    (pipe / "main.py").write_text(MAIN.replace("total = sum(", "total = 1 + sum("))
    plan = status(blase, pipe, "--set", "features.scale=3")
    assert plan["fit"]["state"] == "stale" and plan["fit"]["reasons"][0].startswith("code changed: main.py::fit")
    assert plan["features"]["state"] == "up to date"
    (pipe / "data" / "raw.csv").write_text("x\n7\n")
    plan = status(blase, pipe, "features", "--set", "scale=3")
    assert list(plan) == ["features"] and plan["features"]["reasons"] == ["its input data/raw.csv changed"]


def test_the_first_failure_stops_the_run_and_closes_it(pipe: Path, blase) -> None:
    proc = blase("run", "--set", "fit.fail=true", cwd=pipe)
    assert proc.returncode == 1, proc.stderr
    assert "step `fit` failed: ValueError: the model did not converge" in proc.stderr
    run = runs_json(blase, pipe)[0]
    assert run["status"] == "failed" and [s["status"] for s in run["steps"]] == ["succeeded", "succeeded", "failed"]
    fail = blase("run", "extract", "fit", "--set", "extract.rows=3", "--set", "fit.fail=true", cwd=pipe)
    assert fail.returncode == 1
    assert runs_json(blase, pipe)[0]["status"] == "failed"
    # the open run was closed: a plain step runs in a run of its own, not inside the failed one
    assert blase("step", "extract", "--force", cwd=pipe).returncode == 0
    assert len(runs_json(blase, pipe)[0]["steps"]) == 1


def test_from_to_and_bad_input_are_one_line_each(pipe: Path, blase) -> None:
    assert blase("run", "--to", "features", cwd=pipe).returncode == 0
    assert [s["step"] for s in runs_json(blase, pipe)[0]["steps"]] == ["extract", "features"]
    plan = status(blase, pipe, "--from", "features")
    assert list(plan) == ["features", "fit"] and plan["features"]["state"] == "up to date"
    for args, said in (
        (["run", "train"], "`train` is not a step of the pipeline (extract → features → fit)"),
        (["run", "--from", "fit", "--to", "extract"], "--from fit --to extract leaves no step"),
        (["run", "--set", "epochs=3"], "--set epochs=3: no step this runs takes a param `epochs`"),
        (["run", "--set", "train.epochs=3"], "--set train.epochs=3: `train` is not one of the steps this runs"),
        (["run", "--set", "features.scale=big"], "--set features.scale=big"),  # quoted as typed, with its step
    ):
        proc = blase(*args, cwd=pipe)
        assert proc.returncode == 2 and said in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    (pipe / "blase.toml").write_text(TOML.replace('"fit"]', '"fit", "deploy"]'))
    proc = blase("status", cwd=pipe)
    assert proc.returncode == 2 and "[pipeline] steps names `deploy`, which main.py does not define" in proc.stderr
    (pipe / "blase.toml").write_text(TOML.replace('"fit"]', '"fit", "fit"]'))
    proc = blase("run", cwd=pipe)
    assert proc.returncode == 2 and "[pipeline] steps names `fit` twice" in proc.stderr


def test_without_a_pipeline_section_the_steps_run_in_the_order_main_defines_them(tmp_path: Path, blase) -> None:
    root = make_project(tmp_path / "plain", main_src=MAIN.split("@step\ndef scratch")[0])
    (root / "source.txt").write_text("1\n2\n")
    out = blase("status", "--json", cwd=root, check=True)
    assert json.loads(out.stdout)["pipeline"] == ["extract", "features", "fit"]
    assert blase("run", cwd=root).returncode == 0
    assert [s["step"] for s in runs_json(blase, root)[0]["steps"]] == ["extract", "features", "fit"]


def test_runs_of_every_project_with_filters(tmp_path: Path, blase) -> None:
    """Issue 28: `blase runs list --all-projects` lists the runs of every known project, newest first, with
    filters by step, model, date, hash and metric; a project that is gone is one line, not a failure."""
    first = make_project(tmp_path / "first", main_src=MAIN, toml=TOML)
    (first / "source.txt").write_text("1\n2\n3\n")
    second = make_project(tmp_path / "second", main_src=MAIN, toml=TOML.replace('"pipe"', '"second"'))
    (second / "source.txt").write_text("4\n5\n")
    blase("run", cwd=first, check=True)
    blase("run", "--set", "features.scale=5", cwd=second, check=True)
    blase("step", "extract", "--force", cwd=second, check=True)
    gone = make_project(tmp_path / "gone", main_src=MAIN, toml=TOML.replace('"pipe"', '"gone"'))
    for root in (first, second, gone):
        blase("projects", "add", str(root), cwd=tmp_path, check=True)
    import shutil

    shutil.rmtree(gone)
    out = blase("runs", "list", "--all-projects", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    runs = json.loads(out.stdout)
    assert [r["project"] for r in runs] == ["second", "second", "pipe"]  # newest first, across projects
    assert "project gone" in out.stderr and f"blase projects remove {gone}" in out.stderr
    fit = json.loads(blase("runs", "list", "-A", "--step", "fit", "--json", cwd=tmp_path).stdout)
    assert [r["project"] for r in fit] == ["second", "pipe"]
    totals = json.loads(blase("runs", "list", "-A", "--where", "total>12", "--json", cwd=tmp_path).stdout)
    assert [(r["project"], r["metrics"]["total"]) for r in totals] == [("second", 45.0)]  # 5*(4+5); pipe: 12
    shown = json.loads(blase("runs", "show", fit[1]["id"], "--json", cwd=first, check=True).stdout)
    code = shown["steps"][0]["signature"]["code_hash"][:10]
    data = shown["steps"][1]["datasets"][0]["hash"].rsplit(":", 1)[-1][:10]  # a dataset's content hash
    for prefix in (code, data):
        by_hash = json.loads(blase("runs", "list", "-A", "--hash", prefix, "--json", cwd=tmp_path).stdout)
        assert fit[1]["id"] in {r["id"] for r in by_hash}, prefix
    assert json.loads(blase("runs", "list", "-A", "--hash", "ffffffffffff", "--json", cwd=tmp_path).stdout) == []
    later = json.loads(blase("runs", "list", "-A", "--since", "2999-01-01", "--json", cwd=tmp_path).stdout)
    assert later == []
    # --where reads a step's params too (`scale`, `features.scale`), with or without -A
    scaled = json.loads(blase("runs", "list", "-A", "--where", "features.scale=5", "--json", cwd=tmp_path).stdout)
    assert [r["project"] for r in scaled] == ["second"]
    assert len(json.loads(blase("runs", "list", "--where", "scale>=5", "--json", cwd=second).stdout)) == 1
    malformed = blase("runs", "list", "-A", "--where", "total>abc", cwd=tmp_path)
    assert malformed.returncode == 2 and len(malformed.stderr.strip().splitlines()) == 1, malformed.stderr
    bad = blase("runs", "list", "-A", "--since", "yesterday", cwd=tmp_path)
    assert bad.returncode == 2 and "--since yesterday: write a date as 2026-12-01" in bad.stderr
    wild = blase("runs", "list", "-A", "--hash", "%", cwd=tmp_path)  # not a LIKE pattern that matches everything
    assert wild.returncode == 2 and "--hash %: a hash prefix is hex digits" in wild.stderr
    table = blase("runs", "list", "-A", cwd=tmp_path, check=True).stdout
    assert table.splitlines()[0].split()[:2] == ["PROJECT", "RUN"]


async def test_the_pipeline_view_shows_states_and_runs_the_pipeline_step_by_step(pipe: Path, blase) -> None:
    """Issue 28: P on the runs screen shows the steps as a graph with their states and what each reads; r runs
    the pipeline as one `blase run` child, whose jobs tab follows it step by step; the view then says up to date.
    A changed param of the middle step reads as stale, and why, without leaving the TUI."""
    from conftest import until

    from blase_tui.tui.app import make_app
    from blase_tui.tui.screens.jobs import JobsScreen
    from blase_tui.tui.screens.pipeline import PipelineScreen
    from blase_tui.tui.screens.runs import RunsScreen
    from blase_tui.tui.widgets.step_panes import StepPanes

    blase("step", "extract", cwd=pipe, check=True)  # a run, so the runs screen opens on something
    app = make_app(pipe)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded, what="the runs")
        await pilot.press("P")
        screen = await until(pilot, lambda: isinstance(app.screen, PipelineScreen) and app.screen.status
                             and app.screen, timeout=60, what="the pipeline's states")
        states = {s["step"]: s["state"] for s in screen.status["steps"]}
        assert states == {"extract": "up to date", "features": "never ran", "fit": "never ran"}
        graph = str(screen.query_one("#pipeline-graph").render())
        assert graph == "✓ extract → ○ features → ○ fit", graph
        await pilot.press("r")
        jobs = await until(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen, what="the jobs view")
        job = app.jobs[-1]
        assert job.pipeline == ["extract", "features", "fit"]
        await until(pilot, lambda: job.poll() is not None, timeout=120, what="the pipeline to end")
        panes = jobs.query_one(StepPanes)
        await until(pilot, lambda: "── pipeline ──" in "\n".join(panes.log_lines), what="the pipeline's summary")
        log = "\n".join(panes.log_lines)
        assert "── fit ──" in log and "── features ──" in log  # it followed the child from step to step
        assert job.returncode == 0 and job.step == "fit"
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, PipelineScreen))
        await until(pilot, lambda: all(s["state"] == "up to date" for s in screen.status["steps"]), timeout=60,
                    what="every step up to date after the run")
        (pipe / "blase.toml").write_text(TOML + "\n[steps.features]\nscale = 7\n")
        screen.action_reload()
        await until(pilot, lambda: screen.status["steps"][1]["state"] == "stale", timeout=60, what="features stale")
        assert screen.status["steps"][1]["reasons"] == ["params changed: scale 2 → 7"]
        assert screen.status["steps"][2]["reads"] == ["features"]
    runs = runs_json(blase, pipe)
    assert [s["step"] for s in runs[0]["steps"]] == ["extract", "features", "fit"] and runs[0]["status"] == "succeeded"


async def test_the_launch_form_launches_the_pipeline(pipe: Path, blase) -> None:
    """Issue 28: the launch form's last entry is the pipeline; ctrl+s starts `blase run` and its tab follows it."""
    from conftest import until

    from blase_tui.tui.app import make_app
    from blase_tui.tui.screens.jobs import JobsScreen
    from blase_tui.tui.screens.launch import PIPELINE, LaunchScreen
    from blase_tui.tui.screens.runs import RunsScreen

    app = make_app(pipe)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded, what="the runs")
        await pilot.press("l")
        form = await until(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen.steps and app.screen,
                           timeout=60, what="the launch form's steps")
        await pilot.press("end")
        await until(pilot, lambda: form.current is not None and form.current["step"] == PIPELINE, what="the pipeline")
        assert "blase run" in str(form.query_one("#step-doc").render())
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen), what="the jobs view")
        job = app.jobs[-1]
        assert job.pipeline == []
        await until(pilot, lambda: job.poll() is not None, timeout=120, what="the pipeline to end")
        assert job.returncode == 0, job.error_text()
    runs = runs_json(blase, pipe)
    assert len(runs) == 1 and [s["step"] for s in runs[0]["steps"]] == ["extract", "features", "fit"]


def test_an_environment_change_is_said_by_package() -> None:
    from blase_tui.store.diff import environment_changes

    before = {"python": "3.11.7", "packages": {"numpy": "2.1.0", "pandas": "2.3.0", "six": "1.16"}}
    now = {"python": "3.11.7", "packages": {"numpy": "2.2.0", "pandas": "2.3.0", "s3fs": "2026.9.0"}}
    assert environment_changes(before, now) == "numpy 2.1.0 → 2.2.0, s3fs 2026.9.0 added, six removed"
    assert environment_changes(before, {**now, "python": "3.12.1"}, most=2) == \
        "Python 3.11.7 → 3.12.1, numpy 2.1.0 → 2.2.0 (and 2 more)"
    assert environment_changes(before, before) == ""
