"""The Track API in user scripts. A script inside a project is a step execution named after the script (or its
``--step`` argument), so its records are the ones `blase step` makes; ``start_run()`` alone opens a run that
later processes join, ``with start_run():`` a run of the block alone."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

from conftest import _env, runs_json, show_json, wait_for


def _script(project: Path, body: str) -> subprocess.CompletedProcess:
    path = project / "script.py"
    path.write_text("from blase_tui import Track\n" + body)
    return subprocess.run([sys.executable, str(path)], cwd=project, env=_env(), capture_output=True, text=True,
                          timeout=60)


def test_context_manager_records_everything(project: Path, blase) -> None:
    (project / "notes.txt").write_text("hello")
    proc = _script(project, """
t = Track(project=".")
with t.start_run(name="baseline", tags={"who": "me"}):
    t.log_params({"lr": 0.01, "layers": [64, 32]})
    t.log_param("optimizer", "adam")
    for i in range(5):
        t.log_metric("loss", 1 / (i + 1), iteration=i)
    t.log_metrics({"acc": 0.9, "f1": 0.8})
    t.set_tag("stage", "dev")
    t.log_artifact("notes.txt")
    t.log_artifact("notes.txt", name="copy.txt")
print(t.run_id)
""")
    assert proc.returncode == 0, proc.stderr
    run = show_json(blase, project, proc.stdout.strip())
    assert run["name"] == "baseline" and run["status"] == "succeeded" and not run["explicit"]
    assert len(run["steps"]) == 1
    step = run["steps"][0]
    assert step["step"] == "script" and step["status"] == "succeeded", "the script is a step execution"
    assert step["params"] == {"lr": 0.01, "layers": [64, 32], "optimizer": "adam"}
    assert step["metrics"] == {"loss": 0.2, "acc": 0.9, "f1": 0.8}
    assert step["signature"]["code_hash"] and step["signature"]["env_hash"]
    assert run["tags"] == {"who": "me", "stage": "dev"}
    names = sorted(a["name"] for a in step["artifacts"])
    assert names == ["copy.txt", "notes.txt"]
    hashes = {a["hash"] for a in step["artifacts"]}
    assert len(hashes) == 1, "the same content is stored once"
    objects = [p for p in (project / ".blase" / "cas" / "objects").rglob("*") if p.is_file()]
    assert sum(1 for p in objects if p.read_bytes() == b"hello") == 1
    art = project / "runs" / run["id"] / "script" / "artifacts" / "copy.txt"
    assert art.read_text() == "hello"
    assert stat.S_IMODE(art.stat().st_mode) & 0o222 == 0, "artifacts are read-only"
    events = (project / "runs" / run["id"] / "script" / "events.jsonl").read_text()
    assert events.count('"type": "metric"') == 7
    code = {a["name"] for a in run["artifacts"]}
    assert {"code/main.py", "code/script.py"} <= code, "the project's code is kept with the run as it closes"


def test_exception_marks_the_run_failed(project: Path, blase) -> None:
    proc = _script(project, """
t = Track(project=".")
t.start_run()
t.log_metric("x", 1)
raise RuntimeError("crash")
""")
    assert proc.returncode == 1
    assert "RuntimeError: crash" in proc.stderr
    run = runs_json(blase, project)[0]
    # the run stays open for the next step, as after a failed `blase step` of an explicit run
    assert run["status"] == "running" and run["metrics"] == {"x": 1.0}
    step = show_json(blase, project, run["id"])["steps"][0]
    assert step["status"] == "failed" and step["exit_code"] == 1 and "RuntimeError: crash" in step["error"]
    assert "RuntimeError: crash" in (project / "runs" / run["id"] / "script" / "log.txt").read_text()
    assert blase("runs", "close", run["id"], cwd=project).returncode == 0
    assert runs_json(blase, project)[0]["status"] == "failed"


def test_exit_without_end_run_closes_succeeded(project: Path, blase) -> None:
    proc = _script(project, "t = Track(project='.')\nt.log_metric('x', 2)\n")
    assert proc.returncode == 0, proc.stderr
    run = runs_json(blase, project)[0]
    assert run["status"] == "succeeded" and run["metrics"] == {"x": 2.0}


def test_killed_script_leaves_an_interrupted_run(project: Path, blase) -> None:
    path = project / "script.py"
    path.write_text(
        "import time\nfrom pathlib import Path\nfrom blase_tui import Track\n"
        "t = Track(project='.')\nt.start_run()\nt.log_metric('x', 1)\nt._run().flush()\n"
        "Path('started').write_text('')\ntime.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, str(path)], cwd=project, env=_env())
    wait_for(lambda: (project / "started").exists(), what="script to start its run")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run = runs_json(blase, project)[0]
    assert run["status"] == "interrupted" and run["metrics"] == {"x": 1.0}


def test_track_inside_a_step_writes_to_the_step_run(tmp_path: Path, blase) -> None:
    from conftest import make_project

    src = (
        "from blase_tui import Track, step\n"
        "@step\ndef s():\n"
        "    t = Track(project='testproj')\n"
        "    t.start_run()\n"
        "    t.log_metric('inside', 7)\n"
        "    t.log_param('k', 'v')\n"
    )
    project = make_project(tmp_path / "p", main_src=src)
    proc = blase("step", "s", cwd=project)
    assert proc.returncode == 0, proc.stderr
    runs = runs_json(blase, project)
    assert len(runs) == 1
    step = show_json(blase, project, runs[0]["id"])["steps"][0]
    assert step["metrics"] == {"inside": 7.0} and step["params"] == {"k": "v"}


def test_unknown_project_name_outside_any_project(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from blase_tui import Track\nTrack(project='nowhere-xyz')"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True,
    )
    assert proc.returncode == 1
    assert "ConfigError: no project named `nowhere-xyz`" in proc.stderr


def test_seed_style_track_inside_a_step_uses_the_step_run(tmp_path: Path, blase) -> None:
    from conftest import make_project

    src = (
        "from blase_tui import Track, step\n"
        "@step\ndef s():\n"
        "    Track(project='example').log_metric('loss', 0.5)\n"
    )
    project = make_project(tmp_path / "p", main_src=src)
    assert blase("step", "s", cwd=project).returncode == 0
    runs = runs_json(blase, project)
    assert len(runs) == 1 and show_json(blase, project, runs[0]["id"])["steps"][0]["metrics"] == {"loss": 0.5}


def test_ctrl_c_in_a_script_marks_the_run_interrupted(project: Path, blase) -> None:
    path = project / "script.py"
    path.write_text(
        "import time\nfrom pathlib import Path\nfrom blase_tui import Track\n"
        "t = Track(project='.')\nt.start_run()\nt.log_dataset('main.py', role='input')\n"
        "Path('started').write_text('')\ntime.sleep(60)\n"
    )
    err = open(project / "script.stderr", "wb")  # noqa: SIM115 - read below when the script does not end
    env = {**_env(), "PYTHONFAULTHANDLER": "1"}  # SIGABRT dumps every thread's stack
    # Ctrl-C must reach the script even when the tests themselves run with SIGINT ignored (a shell starts
    # background jobs so, and a child inherits it): that is how it timed out in a backgrounded CI run
    proc = subprocess.Popen([sys.executable, str(path)], cwd=project, env=env, stderr=err,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(lambda: (project / "started").exists(), what="script to start its run")
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:  # say where it was stuck
        proc.send_signal(signal.SIGABRT)
        proc.wait(timeout=10)
        raise AssertionError("the script did not end after SIGINT; its stderr:\n"
                             + (project / "script.stderr").read_text(errors="replace")[-3000:]) from None
    finally:
        err.close()
    run = runs_json(blase, project)[0]
    assert run["status"] == "interrupted"
    shown = show_json(blase, project, run["id"])
    assert shown["steps"][0]["status"] == "interrupted"
    assert [d["path"] for d in shown["steps"][0]["datasets"]] == ["main.py"], "the script's datasets are listed"


HOLD = (
    "import sys, time\nfrom pathlib import Path\nfrom blase_tui import Track\n"
    "t = Track()\nt.log_metric('x', 1)\nPath('started').write_text('')\n"
    "while not Path('release').exists():\n    time.sleep(0.05)\n"
)


def test_a_second_copy_of_a_named_script_step_exits_3(project: Path, blase) -> None:
    """`python job.py --step crunch` holds the step's lock, as `blase step crunch` does."""
    (project / "job.py").write_text(HOLD)
    first = subprocess.Popen([sys.executable, "job.py", "--step", "crunch"], cwd=project, env=_env(),
                             stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (project / "started").exists(), what="the first copy to start")
    second = subprocess.run([sys.executable, "job.py", "--step", "crunch"], cwd=project, env=_env(),
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 3
    assert second.stderr.strip().startswith("blase: step `crunch` is already running (pid")
    (project / "release").write_text("")
    assert first.wait(timeout=60) == 0
    runs = runs_json(blase, project)
    assert len(runs) == 1 and runs[0]["steps"] == [{"step": "crunch", "status": "succeeded"}]


def test_sigterm_interrupts_a_script_step(project: Path, blase) -> None:
    (project / "job.py").write_text(HOLD)
    proc = subprocess.Popen([sys.executable, "job.py"], cwd=project, env=_env(), stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (project / "started").exists(), what="the script to start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    run = show_json(blase, project, "latest")
    assert run["status"] == "interrupted"
    assert run["steps"][0]["step"] == "job" and run["steps"][0]["status"] == "interrupted"


def test_sys_exit_decides_the_script_steps_status(project: Path, blase) -> None:
    (project / "ok.py").write_text("import sys\nfrom blase_tui import Track\nTrack().log_metric('x', 1)\nsys.exit(0)\n")
    (project / "bad.py").write_text("import sys\nfrom blase_tui import Track\nTrack().log_metric('x', 1)\nsys.exit(4)\n")
    assert subprocess.run([sys.executable, "ok.py"], cwd=project, env=_env(), capture_output=True).returncode == 0
    bad = subprocess.run([sys.executable, "bad.py"], cwd=project, env=_env(), capture_output=True, text=True)
    assert bad.returncode == 4
    assert "blase: step `bad` failed: the script exited with code 4" in bad.stderr
    statuses = {r["steps"][0]["step"]: r["status"] for r in runs_json(blase, project)}
    assert statuses == {"ok": "succeeded", "bad": "failed"}
