"""Every template of `blase create` runs end to end, as a new user would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import _env, show_json

pytestmark = pytest.mark.timeout(300)
SIX = ["etl", "inspect", "clean", "prepare", "train", "evaluate"]


def create(blase, tmp_path: Path, template: str) -> Path:
    proc = blase("create", template, "proj", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "proj"


def one_run(blase, project: Path, steps: list[str]) -> dict:
    """The steps as one run: the first opens it, the last closes it."""
    for i, step in enumerate(steps):
        flags = ["--start-run"] if i == 0 else ["--end-run"] if i == len(steps) - 1 else []
        proc = blase("step", step, *flags, cwd=project, timeout=300)
        assert proc.returncode == 0, f"{step}: {proc.stderr}"
    run = show_json(blase, project, "latest")
    assert run["status"] == "succeeded" and [s["step"] for s in run["steps"]] == steps
    return {s["step"]: s for s in run["steps"]}


def test_list_shows_every_template_on_one_line(tmp_path: Path, blase) -> None:
    proc = blase("create", "--list", cwd=tmp_path)
    assert proc.returncode == 0
    lines = proc.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["blank", "images", "tabular", "json", "audio", "alerts", "rl"]
    assert all(len(line.split(None, 1)) == 2 for line in lines), "each template has its summary"


def test_blank_runs_its_nine_stubs_the_seed_way(tmp_path: Path, blase) -> None:
    project = create(blase, tmp_path, "blank")
    steps = ["etl", "inspect", "clean", "prepare", "train", "evaluate", "deploy", "monitor", "update"]
    listed = [s["step"] for s in json.loads(blase("steps", "--json", cwd=project).stdout)]
    assert listed == steps
    for i, step in enumerate(steps):
        flags = ["--start_run"] if i == 0 else ["--end_run"] if i == len(steps) - 1 else []
        proc = subprocess.run([sys.executable, "main.py", "--step", step, *flags], cwd=project, env=_env(),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{step}: {proc.stderr}"
        assert f"step `{step}` is a stub" in proc.stderr, "a stub says what belongs in it"
    run = show_json(blase, project, "latest")
    assert [s["step"] for s in run["steps"]] == steps and run["status"] == "succeeded"


# what each step of the tabular, audio and images templates reads from which earlier step
PRODUCERS = {"inspect": {"etl"}, "clean": {"etl"}, "prepare": {"etl", "clean"}, "train": {"prepare"},
             "evaluate": {"prepare", "train"}}


def each_step_links_to_its_producers(blase, project: Path, steps: list[str]) -> None:
    """Each step as a run of its own (forced: the project already ran them as one run): `runs lineage` of each
    names the runs of the steps it read from. The first step may read what the earlier run's first step wrote
    (the audio template's etl writes its clips when they are missing, then reads them)."""
    earlier = {r["id"] for r in json.loads(blase("runs", "list", "--json", "--limit", "0", cwd=project,
                                                  check=True).stdout)}
    ran: dict[str, str] = {}
    for step in steps:
        blase("step", step, "--force", cwd=project, check=True, timeout=300)
        ran[step] = show_json(blase, project, "latest")["id"]
        graph = json.loads(blase("runs", "lineage", ran[step], "--json", cwd=project, check=True).stdout)
        fed_by = {k["from"] for k in graph["links"] if k["to"] == ran[step]}
        if step == steps[0]:
            fed_by -= earlier
        assert fed_by == {ran[p] for p in PRODUCERS.get(step, set())}, (step, graph["links"])


def reproduces_identically(blase, project: Path) -> None:
    proc = blase("runs", "reproduce", "latest", "--json", cwd=project, timeout=600)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["identical"], [r for r in report["results"]
                                                         if r["status"] not in ("identical", "same", "timing")]


def test_tabular_from_csv_to_scikit_learn(tmp_path: Path, blase) -> None:
    project = create(blase, tmp_path, "tabular")
    steps = one_run(blase, project, SIX)
    reproduces_identically(blase, project)
    assert steps["clean"]["metrics"]["excluded_cleaned"] > 0, "rows with a missing value are left out"
    schema = json.loads(next((project / "runs").glob("*/inspect/artifacts/schema.json")).read_text())
    assert schema["label"] == "diagnosis" and schema["records"] == 569
    assert schema["columns"]["id"]["feature_type"] == "identifier"
    assert schema["columns"]["mean_radius"]["feature_type"] == "continuous"
    assert schema["columns"]["mean_radius"]["scaling"]
    counts = steps["prepare"]["metrics"]
    assert counts["train_records"] + counts["val_records"] + counts["test_records"] == \
        569 - steps["clean"]["metrics"]["excluded_cleaned"]
    assert steps["evaluate"]["metrics"]["accuracy"] > 0.85
    assert (project / "models" / "diagnosis.pkl").is_file()
    each_step_links_to_its_producers(blase, project, SIX)


def test_audio_from_wav_clips(tmp_path: Path, blase) -> None:
    project = create(blase, tmp_path, "audio")
    steps = one_run(blase, project, SIX)
    reproduces_identically(blase, project)
    assert steps["clean"]["metrics"]["excluded_cleaned"] == 6, "the six near-silent clips are left out"
    assert "data/raw/clips" in [d["path"] for d in steps["etl"]["datasets"] if d["role"] == "input"]
    assert steps["evaluate"]["metrics"]["accuracy"] > 0.8
    each_step_links_to_its_producers(blase, project, SIX)


def test_alerts_label_then_train(tmp_path: Path, blase) -> None:
    from test_sample_active_learning import oracle_round

    project = create(blase, tmp_path, "alerts")
    assert (project / "scripts" / "alerts.py").is_file(), "the pool writer comes from the sample"
    blase("step", "etl", "--set", "alerts=600", cwd=project, check=True)
    number, strategy, model, first = oracle_round(project)
    assert (number, strategy, model) == (1, "random", None) and len(first) >= 20
    blase("step", "train", cwd=project, check=True, timeout=300)
    number, strategy, model, second = oracle_round(project)
    assert (number, strategy, model) == (2, "least_confidence", "realbogus:1")
    assert not set(first) & set(second)


def test_images_is_the_sample(tmp_path: Path, blase) -> None:
    project = create(blase, tmp_path, "images")
    listed = [s["step"] for s in json.loads(blase("steps", "--json", cwd=project).stdout)]
    assert listed == ["etl", "inspect", "clean", "prepare", "train", "evaluate", "al_train"]
    config = project / "blase.toml"
    config.write_text(config.read_text().replace("epochs = 8", "epochs = 1"))
    each_step_links_to_its_producers(blase, project, SIX)


def pipeline_run(blase, project: Path) -> dict:
    """`blase run` (the template's [pipeline]) as a new user would: one run holding every step, then nothing to
    do the second time."""
    proc = blase("run", cwd=project, timeout=600)
    assert proc.returncode == 0, proc.stderr
    run = show_json(blase, project, "latest")
    order = json.loads(blase("status", "--json", cwd=project, check=True).stdout)
    assert run["status"] == "succeeded" and [s["step"] for s in run["steps"]] == order["pipeline"]
    assert all(s["state"] == "up to date" for s in order["steps"]), order
    return {s["step"]: s for s in run["steps"]}


def test_json_records_in_arrays_and_lines_to_a_classifier(tmp_path: Path, blase) -> None:
    """Issue 28: `blase create json`: JSON arrays and JSON lines with nested objects and missing fields."""
    project = create(blase, tmp_path, "json")
    assert (project / "README.md").is_file()
    steps = pipeline_run(blase, project)
    assert list(steps) == ["etl", "inspect", "prepare", "train", "evaluate"]
    assert sorted(p.name for p in (project / "data" / "raw").iterdir()) == [
        "events.jsonl", "export-2026-10.json", "export-2026-11.json"]
    counts = steps["prepare"]["metrics"]
    assert counts["train_records"] + counts["val_records"] + counts["test_records"] == 3000
    schema = json.loads(next((project / "runs").glob("*/inspect/artifacts/schema.json")).read_text())
    assert schema["label"] == "churned" and schema["records"] == 3000
    assert schema["columns"]["id"]["feature_type"] == "identifier"
    assert steps["evaluate"]["metrics"]["accuracy"] > 0.7
    # a line that is not a record is a bad record of etl, not a crash
    with (project / "data" / "raw" / "events.jsonl").open("a") as fh:
        fh.write("{not json\n")
    proc = blase("run", cwd=project, timeout=600)
    assert proc.returncode == 0, proc.stderr
    run_id = show_json(blase, project, "latest")["id"]
    bad = (project / "runs" / run_id / "etl" / "bad_records.jsonl").read_text().splitlines()
    assert len(bad) == 1 and "events.jsonl" in bad[0] and "line 1801" in bad[0], bad


def test_rl_trains_registers_evaluates_and_serves_a_cartpole_policy(tmp_path: Path, blase) -> None:
    """Issue 28: `blase create rl`: episode returns as metrics, the policy registered, evaluated over fixed seeds
    from the registry, and served by `blase serve`."""
    pytest.importorskip("gymnasium", reason="the rl template needs gymnasium (the rl extra)")
    from conftest import Server

    project = create(blase, tmp_path, "rl")
    steps = pipeline_run(blase, project)
    assert list(steps) == ["train", "evaluate"]
    assert steps["train"]["metrics"]["episodes"] == 20 * 24 and "episode_return" in steps["train"]["metrics"]
    assert steps["evaluate"]["metrics"]["mean_return"] >= 195, steps["evaluate"]["metrics"]  # CartPole solved
    models = json.loads(blase("models", "list", "--json", cwd=project, check=True).stdout)
    assert [(m["name"], m["version"]) for m in models] == [("cartpole_policy", 1)]
    server = Server(project, "cartpole_policy")
    try:
        status, answer = server.post({"inputs": [[0.0, 0.0, 0.05, 0.5], [0.0, 0.0, -0.05, -0.5]]})
        assert status == 200, answer
        assert [int(p) for p in answer["predictions"]] == [1, 0]  # pole falling right: push right; left: left
    finally:
        server.stop()
