"""`blase step` end to end: real subprocesses, a real store, real signals."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from conftest import runs_json, show_json, wait_for

ANSI = re.compile(r"\x1b\[")


def test_one_run_spans_three_invocations(project: Path, blase) -> None:
    first = blase("step", "a", "--start-run", cwd=project)
    assert first.returncode == 0, first.stderr
    assert "still open" in first.stderr
    assert blase("step", "b", cwd=project).returncode == 0
    runs = runs_json(blase, project)
    assert len(runs) == 1 and runs[0]["status"] == "running"
    assert blase("step", "c", "--end-run", cwd=project).returncode == 0

    runs = runs_json(blase, project)
    assert len(runs) == 1
    run = show_json(blase, project, runs[0]["id"])
    assert run["status"] == "succeeded"
    assert [s["step"] for s in run["steps"]] == ["a", "b", "c"]
    assert all(s["status"] == "succeeded" for s in run["steps"])
    assert run["steps"][0]["params"] == {"n": 3, "lr": 0.1, "name": "x"}
    assert run["steps"][0]["metrics"] == {"loss": 1 / 3}
    assert run["steps"][0]["artifacts"][0]["name"] == "a.txt"
    # the run folder describes itself
    on_disk = json.loads((project / "runs" / run["id"] / "run.json").read_text())
    assert on_disk["status"] == "succeeded" and len(on_disk["steps"]) == 3
    assert (project / "runs" / run["id"] / "env.json").is_file()


def test_a_step_alone_gets_its_own_run(project: Path, blase) -> None:
    proc = blase("step", "b", cwd=project)
    assert proc.returncode == 0, proc.stderr
    proc = blase("step", "c", cwd=project)
    runs = runs_json(blase, project)
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    assert [[s["step"] for s in r["steps"]] for r in runs] == [["c"], ["b"]]
    assert runs[0]["id"] > runs[1]["id"], "run ids sort by time"


def test_second_copy_of_a_step_exits_3_and_names_the_holder(project: Path, blase, spawn) -> None:
    holder = spawn("step", "slow", cwd=project)
    wait_for(lambda: (project / "started").exists(), what="slow step to start")
    second = blase("step", "slow", cwd=project)
    assert second.returncode == 3
    line = second.stderr.strip()
    assert "\n" not in line
    assert f"pid {holder.pid}" in line and "already running" in line
    assert re.search(r"started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line)
    # a different step of the same project is not blocked
    assert blase("step", "b", cwd=project).returncode == 0
    (project / "release").write_text("")
    assert holder.wait(timeout=60) == 0
    # the refused copy left no trace in the store
    slow_runs = runs_json(blase, project, "--step", "slow")
    assert len(slow_runs) == 1 and slow_runs[0]["status"] == "succeeded"


def test_sigterm_marks_the_step_interrupted_and_exits_130(project: Path, blase, spawn) -> None:
    proc = spawn("step", "slow", cwd=project)
    wait_for(lambda: (project / "started").exists(), what="slow step to start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 130
    assert "interrupted" in proc.stderr.read()
    run = show_json(blase, project, "latest")
    assert run["status"] == "interrupted"
    assert run["steps"][0]["status"] == "interrupted"
    assert run["steps"][0]["exit_code"] == 130


def test_failing_step_exits_1_with_one_line_and_keeps_the_traceback(project: Path, blase) -> None:
    proc = blase("step", "boom", cwd=project)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("blase:")]
    assert len(lines) == 1
    assert "ValueError: bad thing happened" in lines[0] and "log.txt" in lines[0]
    assert "Traceback" not in proc.stderr, "the traceback belongs in the log, not on the terminal"
    run = show_json(blase, project, "latest")
    assert run["status"] == "failed" and run["steps"][0]["status"] == "failed"
    log = (project / "runs" / run["id"] / "boom" / "log.txt").read_text()
    assert "Traceback" in log and 'raise ValueError("bad thing happened")' in log


def test_killed_step_is_found_interrupted_by_the_next_command(project: Path, blase, spawn) -> None:
    proc = spawn("step", "slow", "--start-run", cwd=project)
    wait_for(lambda: (project / "started").exists(), what="slow step to start")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    runs = runs_json(blase, project)
    assert runs[0]["status"] == "interrupted"
    run = show_json(blase, project, runs[0]["id"])
    assert run["steps"][0]["status"] == "interrupted"
    assert "died" in run["steps"][0]["error"]
    # never silently reused: the next step gets a new run of its own
    assert blase("step", "b", cwd=project).returncode == 0
    runs = runs_json(blase, project)
    assert len(runs) == 2 and runs[0]["steps"][0]["step"] == "b" and runs[0]["status"] == "succeeded"


def test_python_main_py_seed_form(project: Path) -> None:
    import subprocess

    from conftest import _env

    def main_py(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "main.py", *args], cwd=project, env=_env(), capture_output=True,
                              text=True, timeout=60)

    assert main_py("--step", "a", "--start_run").returncode == 0
    assert main_py("--step", "b").returncode == 0
    assert main_py("--step", "c", "--end_run").returncode == 0
    bad = main_py("--step", "boom", "--start_run", "--end_run")
    assert bad.returncode == 1
    db = sqlite3.connect(project / "runs" / "blase.db")
    rows = db.execute("SELECT r.status, group_concat(s.step) FROM runs r JOIN step_runs s ON s.run_id = r.id"
                      " GROUP BY r.id ORDER BY r.id").fetchall()
    assert rows == [("succeeded", "a,b,c"), ("failed", "boom")]


def test_a_step_in_another_script_keeps_that_script_with_the_run(project: Path, blase) -> None:
    """`python mon.py --step watch` (a step in a file that is not the entry module): mon.py is the step's code,
    kept with the run, as main.py is, also when [project] scripts names only other folders."""
    import subprocess

    from conftest import _env

    toml = project / "blase.toml"
    toml.write_text(toml.read_text().replace('name = "testproj"', 'name = "testproj"\nscripts = ["scripts"]'))
    (project / "scripts").mkdir()

    (project / "mon.py").write_text("import blase_tui\nfrom blase_tui import step\n\n\n@step\ndef watch(ctx):\n"
                                    "    ctx.log_metric('seen', 1.0)\n\n\nif __name__ == '__main__':\n"
                                    "    blase_tui.main()\n")
    proc = subprocess.run([sys.executable, "mon.py", "--step", "watch"], cwd=project, env=_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    kept = {a["name"] for a in show_json(blase, project, "latest")["artifacts"]}
    assert {"code/mon.py", "code/main.py"} <= kept


def test_set_overrides_params_with_types(project: Path, blase) -> None:
    proc = blase("step", "a", "--set", "n=5", "--set", "lr=0.5", "--set", "name=hello", cwd=project)
    assert proc.returncode == 0, proc.stderr
    step = show_json(blase, project, "latest")["steps"][0]
    assert step["params"] == {"n": 5, "lr": 0.5, "name": "hello"}
    assert step["metrics"]["loss"] == 1 / 5


def test_no_tty_output_has_no_ansi_codes(project: Path, blase) -> None:
    for args in (("step", "counted", "--set", "total=3"), ("runs", "list"), ("runs", "show", "latest"), ("steps",)):
        proc = blase(*args, cwd=project)
        assert proc.returncode == 0, proc.stderr
        assert not ANSI.search(proc.stdout + proc.stderr), args


def test_events_carry_progress_resources_logs_and_metrics(project: Path, blase) -> None:
    assert blase("step", "counted", "--set", "total=30", cwd=project).returncode == 0
    run = show_json(blase, project, "latest")
    events = [json.loads(line) for line in
              (project / "runs" / run["id"] / "counted" / "events.jsonl").read_text().splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "status" and kinds[-1] == "status" and events[-1]["status"] == "succeeded"
    progress = [e for e in events if e["type"] == "progress"]
    assert progress[-1]["done"] == 30 and progress[-1]["total"] == 30 and progress[-1]["finished"]
    assert progress[-1]["rate"] > 0
    samples = [e for e in events if e["type"] == "resources"]
    assert len(samples) >= 2, "about two resource samples a second for a 1.5 s step"
    assert all(s["rss"] > 0 and "sys_mem_total" in s and "gpu" in s for s in samples)
    assert any(e["type"] == "log" and "counted to 30" in e["message"] for e in events)
    assert run["steps"][0]["peak_rss"] > 10_000_000


def test_a_resource_sample_lists_each_worker_process_memory() -> None:
    """The processes a step starts (an executor's workers) are counted in its memory and listed one by one, so
    the live panes show every worker's memory."""
    import subprocess

    from blase_tui.core.fmt import resources_text
    from blase_tui.core.resources import ResourceSampler

    sampler = ResourceSampler(lambda *a, **k: None)
    assert "workers" not in sampler.sample()
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; b = bytearray(64 << 20); sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        def grown() -> bool:
            s = sampler.sample()
            return len(s.get("workers", [])) == 1 and s["workers"][0] > 60 << 20

        wait_for(grown, what="the child to hold its 64 MiB")
        sample = sampler.sample()
        assert sample["rss"] > sample["workers"][0]  # the step's own memory plus its worker's
        assert "(1 worker: " in resources_text(sample)
    finally:
        child.communicate(b"", timeout=30)


def test_watch_follows_a_running_step_in_plain_text(project: Path, blase, spawn) -> None:
    step = spawn("step", "slow", cwd=project)
    wait_for(lambda: (project / "started").exists(), what="slow step to start")
    watcher = spawn("runs", "watch", cwd=project)
    wait_for(lambda: (project / "runs").exists())
    (project / "release").write_text("")
    assert step.wait(timeout=60) == 0
    out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    assert "watching run" in out
    assert "slow wait" in out and "status succeeded" in out
    assert not ANSI.search(out)


def test_steps_lists_docstrings_and_params(project: Path, blase) -> None:
    proc = blase("steps", "--json", cwd=project)
    steps = {s["step"]: s for s in json.loads(proc.stdout)}
    assert set(steps) == {"a", "b", "c", "slow", "boom", "counted"}
    assert steps["a"]["doc"] == "Log a few metrics and write an artifact."
    assert steps["a"]["params"] == {"n": 3, "lr": 0.1, "name": "x"}


REUSE_MAIN = """
from pathlib import Path
from blase_tui import step


@step
def a(ctx, n: int = 3):
    \"\"\"Read data.txt, write an artifact.\"\"\"
    ctx.log_dataset("data.txt", role="input")
    ctx.log_metric("loss", 1.0 / n)
    (ctx.artifact_dir / "a.txt").write_text(f"n={n}")


@step
def blind(ctx):
    \"\"\"Reads nothing blase can see (a download, a clock).\"\"\"
    (ctx.artifact_dir / "b.txt").write_text("b")


@step(reuse=True)
def pure(ctx, n: int = 1):
    \"\"\"Depends on its params only, and says so.\"\"\"
    (ctx.artifact_dir / "p.txt").write_text(str(n))
"""


@pytest.fixture
def reuse_project(tmp_path: Path) -> Path:
    from conftest import make_project

    project = make_project(tmp_path / "r", main_src=REUSE_MAIN, toml='[project]\nname = "reuse"\n')
    (project / "data.txt").write_text("one")
    return project


def test_an_up_to_date_step_runs_nothing_and_makes_no_run(reuse_project: Path, blase) -> None:
    project = reuse_project
    assert blase("step", "a", cwd=project).returncode == 0
    first = runs_json(blase, project)
    again = blase("step", "a", "--quiet", cwd=project)
    assert again.returncode == 0
    assert again.stderr.startswith("blase: step `a` is up to date: nothing ran; its outputs are those of run"
                                   f" {first[0]['id']}"), "never silent, even with --quiet"
    assert runs_json(blase, project) == first, "no new run: `runs find --latest` still names the producer"
    found = blase("runs", "find", "--step", "a", "--latest", cwd=project, check=True).stdout.strip()
    assert found == first[0]["id"]
    forced = blase("step", "a", "--force", cwd=project)
    assert forced.returncode == 0 and "up to date" not in forced.stderr
    assert len(runs_json(blase, project)) == 2
    (project / "data.txt").write_text("two")  # a changed input means running again
    assert "up to date" not in blase("step", "a", cwd=project).stderr
    assert "up to date" not in blase("step", "a", "--set", "n=4", cwd=project).stderr
    (project / "helper.py").write_text("X = 1\n")  # a module the step does not use changes nothing
    assert "up to date" in blase("step", "a", "--set", "n=4", cwd=project).stderr
    main = project / "main.py"  # a change to the step's own code runs it again
    main.write_text(main.read_text().replace('    ctx.log_metric("loss", 1.0 / n)',
                                             '    ctx.log_metric("loss", 1.0 / n)  # the same, said again'))
    assert "up to date" not in blase("step", "a", "--set", "n=4", cwd=project).stderr


def test_reuse_inside_an_open_run_refers_to_the_producer(reuse_project: Path, blase) -> None:
    project = reuse_project
    assert blase("step", "a", cwd=project).returncode == 0
    producer = runs_json(blase, project)[0]["id"]
    proc = blase("step", "a", "--start-run", cwd=project)
    assert proc.returncode == 0 and f"refers to its outputs in run {producer}" in proc.stderr
    assert blase("step", "a", "--end-run", cwd=project).returncode == 0  # a reuse of a reuse: still the producer
    run = show_json(blase, project, "latest")
    assert [s["reused_from_run"] for s in run["steps"]] == [producer, producer]
    assert run["steps"][0]["artifacts"][0]["name"] == "a.txt" and run["steps"][0]["metrics"] == {"loss": 1 / 3}
    shown = blase("runs", "show", "latest", cwd=project, check=True).stdout
    assert f"reused the outputs of run {producer} (nothing ran)" in shown


def test_steps_whose_inputs_blase_cannot_see_always_run(reuse_project: Path, blase) -> None:
    project = reuse_project
    for _ in range(2):
        proc = blase("step", "blind", cwd=project)
        assert proc.returncode == 0 and "up to date" not in proc.stderr
    assert len(runs_json(blase, project)) == 2
    assert blase("step", "pure", cwd=project).returncode == 0
    assert "up to date" in blase("step", "pure", cwd=project).stderr, "reuse=True: params are all it reads"
    (project / "blase.toml").write_text('[project]\nname = "reuse"\nreuse = false\n')
    assert "up to date" not in blase("step", "pure", cwd=project).stderr, "[project] reuse = false"


def test_runs_close_ends_an_open_run(project: Path, blase) -> None:
    assert blase("step", "a", "--start-run", cwd=project).returncode == 0
    refused = blase("step", "b", "--start-run", cwd=project)
    assert refused.returncode == 2 and "still open" in refused.stderr and "runs close" in refused.stderr
    run_id = runs_json(blase, project)[0]["id"]
    proc = blase("runs", "close", run_id[:17], cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert show_json(blase, project, run_id)["status"] == "succeeded"
    again = blase("runs", "close", run_id, cwd=project)
    assert again.returncode == 2 and "already closed" in again.stderr


def test_quiet_prints_nothing_on_success(project: Path, blase) -> None:
    proc = blase("step", "counted", "--set", "total=2", "--quiet", cwd=project)
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout == ""
    run = show_json(blase, project, "latest")
    assert "counted to 2" in (project / "runs" / run["id"] / "counted" / "log.txt").read_text()


def test_failure_message_ends_once(tmp_path: Path, blase) -> None:
    from conftest import make_project

    src = "from blase_tui import step, BlaseError\n@step\ndef s():\n    raise BlaseError('run the clean step first.')\n"
    project = make_project(tmp_path / "p", main_src=src)
    proc = blase("step", "s", cwd=project)
    assert proc.returncode == 1
    assert "run the clean step first (details in runs/" in proc.stderr and ").\n" in proc.stderr


POLL_MAIN = """
import os

from blase_tui import Extract, step


@step
def poll(ctx):
    \"\"\"Read every alert file in the inbox (a folder outside the project), as seed 002's hourly cron does.\"\"\"
    rows = sum(len(batch) for batch in Extract().load_csv(os.environ["INBOX"]))
    ctx.log_metric("alerts", float(rows))
    (ctx.artifact_dir / "count.txt").write_text(str(rows))
"""


def test_a_cron_step_reading_an_outside_folder_picks_up_new_files_without_force(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from conftest import _env, make_project

    project = make_project(tmp_path / "cron", main_src=POLL_MAIN, toml='[project]\nname = "cron"\n')
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "0100.csv").write_text("candid,mag\n1,18.5\n2,19.1\n")
    env = {**_env(), "INBOX": str(inbox)}

    def cron() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "blase_tui", "step", "poll", "--quiet"], cwd=project, env=env,
                              capture_output=True, text=True, timeout=120)

    def alerts() -> float:
        out = subprocess.run([sys.executable, "-m", "blase_tui", "runs", "show", "latest", "--json"], cwd=project,
                             env=env, capture_output=True, text=True, timeout=60, check=True).stdout
        return json.loads(out)["steps"][0]["metrics"]["alerts"]

    assert cron().returncode == 0 and alerts() == 2
    (inbox / "0200.csv").write_text("candid,mag\n3,17.0\n")  # the next hour's file
    second = cron()
    assert second.returncode == 0 and "up to date" not in second.stderr and alerts() == 3, "new data is never hidden"
    third = cron()  # nothing new: nothing to do, and the cron log says so in one line
    assert third.returncode == 0 and third.stderr.count("\n") == 1 and "is up to date" in third.stderr
    os.utime(inbox / "0200.csv")  # touched, not changed: still up to date (content hashes, not times)
    assert "is up to date" in cron().stderr


def test_runs_cancel_stops_a_step_started_elsewhere(project: Path, blase, spawn) -> None:
    """A step cron (here: another process) started is stopped from another shell: SIGTERM, interrupted, 130."""
    assert blase("runs", "cancel", cwd=project).returncode == 2  # neither a run nor --all: one line, usage
    step = spawn("step", "slow", cwd=project)
    wait_for(lambda: (project / "started").exists(), what="slow step to start")
    run = show_json(blase, project, "latest")
    wait_for(lambda: show_json(blase, project, "latest")["steps"], what="its execution to be recorded")
    proc = blase("runs", "cancel", run["id"], cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert f"stopping step `slow` of run {run['id']} (pid {step.pid})" in proc.stdout
    assert f"step `slow` of run {run['id']}: interrupted" in proc.stdout
    assert step.wait(timeout=30) == 130
    assert show_json(blase, project, run["id"])["status"] == "interrupted"
    again = blase("runs", "cancel", "--all", cwd=project)
    assert again.returncode == 1 and "nothing to stop: no step of this project is running" in again.stderr
