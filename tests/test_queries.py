"""find, diff and reindex over real runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import make_project, runs_json, show_json


def test_find_by_params_tags_ambiguity_and_path(project: Path, blase) -> None:
    for n in (2, 4):
        assert blase("step", "a", "--set", f"n={n}", "--force", cwd=project).returncode == 0
    assert blase("step", "a", "--set", "n=4", "--set", "name=other", "--force", cwd=project).returncode == 0
    newest = runs_json(blase, project)[0]["id"]

    one = blase("runs", "find", "--step", "a", "--param", "n=2", cwd=project)
    assert one.returncode == 0
    found = one.stdout.strip()
    assert show_json(blase, project, found)["steps"][0]["params"]["n"] == 2

    several = blase("runs", "find", "--step", "a", "--param", "n=4", cwd=project)
    assert several.returncode == 1
    assert "2 runs match; they differ in name" in several.stderr
    assert several.stdout == ""

    latest = blase("runs", "find", "--step", "a", "--param", "n=4", "--latest", cwd=project)
    assert latest.returncode == 0 and latest.stdout.strip() == newest

    path = blase("runs", "find", "--step", "a", "--param", "n=4", "--param", "name=other", "--path", cwd=project)
    assert path.returncode == 0
    assert Path(path.stdout.strip()) == project.resolve() / "runs" / newest
    assert (Path(path.stdout.strip()) / "run.json").is_file()

    none = blase("runs", "find", "--step", "a", "--param", "n=99", cwd=project)
    assert none.returncode == 1 and "no run matches" in none.stderr


def test_find_by_tag_from_track(project: Path, blase) -> None:
    import subprocess
    import sys

    from conftest import _env

    script = project / "tagged.py"
    script.write_text(
        "from blase_tui import Track\n"
        "for size in (64, 128):\n"
        "    t = Track(project='.')\n"
        "    with t.start_run(name='cutouts', tags={'survey': 'ztf'}):\n"
        "        t.log_params({'window_size': size})\n"
    )
    proc = subprocess.run([sys.executable, str(script)], cwd=project, env=_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    runs = runs_json(blase, project)
    assert len(runs) == 2 and all(r["status"] == "succeeded" for r in runs)
    # each with-block is a run of its own, and the script is a step execution (named after it) in each
    shown = show_json(blase, project, runs[0]["id"])
    assert shown["tags"] == {"survey": "ztf"} and shown["steps"][0]["params"] == {"window_size": 128}
    found = blase("runs", "find", "--step", "tagged", "--param", "window_size=64", cwd=project)
    assert found.stdout.strip() == runs[1]["id"]


def test_diff_shows_changed_param_and_code_hash(project: Path, blase) -> None:
    assert blase("step", "a", "--set", "n=2", cwd=project).returncode == 0
    main = project / "main.py"
    main.write_text(main.read_text().replace('"Log a few metrics', '"Log some metrics'))
    assert blase("step", "a", "--set", "n=5", cwd=project).returncode == 0
    runs = runs_json(blase, project)
    proc = blase("runs", "diff", runs[1]["id"], runs[0]["id"], "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    diff = json.loads(proc.stdout)["sections"]
    assert diff["params"]["changed"] == {"a.n": [2, 5]}
    # the hashes of the step's code, and the file that changed in the code each run kept as it closed
    assert set(diff["code"]["changed"]) == {"a.code_hash", "a.function_hash", "code/main.py"}
    assert diff["metrics"]["changed"]["a/loss"] == [0.5, 0.2]
    assert diff["environment"]["changed"] == {}
    text = blase("runs", "diff", runs[1]["id"], runs[0]["id"], cwd=project)
    assert "a.n" in text.stdout and "code: 3 differ" in text.stdout
    assert "-0.3 ✓ better" in text.stdout  # a.loss went from 0.5 to 0.2: lower is better for a loss
    same = blase("runs", "diff", "latest", runs[0]["id"][-6:], cwd=project)
    assert same.returncode == 2 and f"are the same run, {runs[0]['id']}: nothing differs" in same.stderr


def test_diff_puts_values_that_differ_before_items_one_run_lacks() -> None:
    from blase_tui.store.diff import _section, summary

    a = {"train.lr": 0.1, "train.seed": 1, "clean.min": None}
    b = {"train.lr": 0.2, "train.seed": 1, "etl.scale": 4, "clean.min": 0.2, "a.x": 1, "prepare.y": 2}
    section = _section(a, b)
    # clean.min is None in A and 0.2 in B: both have it, so it differs; it is not "only in B"
    assert list(section["changed"]) == ["clean.min", "train.lr", "a.x", "etl.scale", "prepare.y"]
    assert (section["differ"], section["only_a"], section["only_b"], section["same"]) == (2, 0, 3, 1)
    assert summary(section) == "2 differ, 3 only in B, 1 the same"
    assert summary(_section(b, a)) == "2 differ, 3 only in A, 1 the same"
    assert summary(_section({"x": 1}, {"x": 1})) == "all 1 the same"
    assert summary(_section({"x": 1}, {"x": 2})) == "1 differs"
    assert summary(_section({}, {})) == "nothing to compare"


def test_reindex_finds_a_copied_run_folder(tmp_path: Path, project: Path, blase) -> None:
    assert blase("step", "a", "--set", "n=4", cwd=project).returncode == 0
    run = show_json(blase, project, "latest")
    fresh = make_project(tmp_path / "fresh")
    shutil.copytree(project / "runs" / run["id"], fresh / "runs" / run["id"])
    refused = blase("runs", "list", cwd=fresh)  # a run folder and no index: lost, not an empty project
    assert refused.returncode == 2 and "`blase runs reindex`" in refused.stderr
    assert not (fresh / "runs" / "blase.db").exists()
    proc = blase("runs", "reindex", cwd=fresh)
    assert proc.returncode == 0 and "1 run(s) added" in proc.stdout
    copied = show_json(blase, fresh, run["id"])
    for key in ("status", "started", "params"):
        assert copied[key] == run[key]
    step, original = copied["steps"][0], run["steps"][0]
    assert step["params"] == original["params"] and step["metrics"] == original["metrics"]
    assert step["artifacts"] == original["artifacts"]
    digest = step["artifacts"][0]["hash"]
    cas_object = fresh / ".blase" / "cas" / "objects" / digest[:2] / digest[2:]
    assert cas_object.read_text() == "n=4"
    # reindexing twice adds nothing
    assert "0 run(s) added, 1 already indexed" in blase("runs", "reindex", cwd=fresh).stdout


def test_reindex_reports_a_broken_run_json(project: Path, blase) -> None:
    broken = project / "runs" / "20260101-000000000-aaaaaa"
    broken.mkdir(parents=True)
    (broken / "run.json").write_text("{not json")
    proc = blase("runs", "reindex", cwd=project)
    assert proc.returncode == 0
    assert "skipped runs/20260101-000000000-aaaaaa" in proc.stdout


def test_find_matches_numbers_however_they_were_typed(project: Path, blase) -> None:
    assert blase("step", "a", "--set", "lr=2", cwd=project).returncode == 0  # stored as 2.0 (lr is a float)
    assert blase("runs", "find", "--step", "a", "--param", "lr=2", cwd=project).returncode == 0
    assert blase("runs", "find", "--step", "a", "--param", "lr=2.0", cwd=project).returncode == 0
    assert blase("runs", "find", "--step", "a", "--param", "lr=3", cwd=project).returncode == 1


def test_run_ids_resolve_by_their_random_tail(project: Path, blase) -> None:
    assert blase("step", "b", cwd=project).returncode == 0
    run_id = runs_json(blase, project)[0]["id"]
    assert show_json(blase, project, run_id.rsplit("-", 1)[1][:4])["id"] == run_id


def test_find_matches_numbers_written_with_a_leading_dot(project: Path, blase) -> None:
    assert blase("step", "a", "--set", "lr=.5", cwd=project).returncode == 0
    assert blase("runs", "find", "--step", "a", "--param", "lr=.5", cwd=project).returncode == 0
    assert blase("runs", "find", "--step", "a", "--param", "lr=0.5", cwd=project).returncode == 0


def test_a_metric_two_steps_log_keeps_its_step(project: Path, blase) -> None:
    """train's accuracy and evaluate's are both shown, as train/accuracy and evaluate/accuracy; a metric only
    one step logged keeps its plain name; a filter on the plain name reads the last step's value."""
    from blase_tui.core.project import Project
    from blase_tui.store.query import last_metrics, run_rows
    from blase_tui.tui.widgets.runs_table import matches

    store = Project.at(project).store
    run_id = store.create_run(explicit=True)
    for step, value in (("train", 0.99), ("evaluate", 0.91)):
        step_run_id, _ = store.begin_step(run_id, step, pid=1, pid_started=None)
        store.log_metrics([(run_id, step_run_id, "accuracy", value, None, 1.0)])
    store.log_metrics([(run_id, step_run_id, "f1", 0.9, None, 2.0)])
    expected = {"train/accuracy": 0.99, "evaluate/accuracy": 0.91, "f1": 0.9}
    assert last_metrics(store, [run_id])[run_id] == expected
    row = next(r for r in run_rows(store) if r["id"] == run_id)
    assert row["metrics"] == expected
    assert matches(row, ["accuracy>0.9"]) and not matches(row, ["accuracy>0.95"])
    assert matches(row, ["train/accuracy>0.95"])
    listed = json.loads(blase("runs", "list", "--json", cwd=project).stdout)
    assert listed[0]["metrics"] == expected
    # a later run where only train ran: its accuracy is still train/accuracy, the column it belongs in, never
    # a plain `accuracy` column that would hold train's value for some runs and nothing for others
    only_train = store.create_run(explicit=True)
    step_run_id, _ = store.begin_step(only_train, "train", pid=1, pid_started=None)
    store.log_metrics([(only_train, step_run_id, "accuracy", 0.97, None, 3.0)])
    assert last_metrics(store, [only_train])[only_train] == {"train/accuracy": 0.97}
    partial = {r["id"]: r for r in run_rows(store, changed_since=1e12, after_rowid=1)}  # the TUI's partial read
    assert partial[only_train]["metrics"] == {"train/accuracy": 0.97}
    assert {k for r in run_rows(store) for k in r["metrics"]} == set(expected)


def test_name_given_to_a_step_that_joins_an_open_run(project: Path, blase) -> None:
    """--name on a step joining an open run names the run when it has no name, and is not silently dropped
    when it has one."""
    assert blase("step", "a", "--start-run", cwd=project).returncode == 0
    assert blase("step", "b", "--name", "first", cwd=project).returncode == 0
    assert show_json(blase, project, "latest")["name"] == "first"
    proc = blase("step", "c", "--name", "second", cwd=project)
    assert proc.returncode == 0 and "--name second not used: this step joins the open run" in proc.stderr
    assert show_json(blase, project, "latest")["name"] == "first"


def test_runs_edit_names_notes_and_tags_a_run(project: Path, blase) -> None:
    assert blase("step", "a", cwd=project).returncode == 0
    proc = blase("runs", "edit", "latest", "--name", "baseline", "--note", "first try", "--tag", "data=v2",
                 "--tag", "owner=me", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "name 'baseline'; note 'first try'; tags data=v2, owner=me" in proc.stdout
    shown = show_json(blase, project, "latest")
    assert shown["name"] == "baseline" and shown["note"] == "first try"
    assert show_json(blase, project, "baseline")["id"] == shown["id"]  # a run is found by its name too
    assert "baseline" in blase("runs", "list", cwd=project).stdout  # and listed with it
    assert shown["tags"] == {"data": "v2", "owner": "me"}
    assert blase("runs", "edit", shown["id"], "--untag", "owner", "--name", "", cwd=project).returncode == 0
    shown = show_json(blase, project, "latest")
    assert shown["name"] is None and shown["tags"] == {"data": "v2"}
    for args, said in ((("latest",), "nothing to change"), (("latest", "--tag", "oops"), "--tag oops: write it as"),
                       (("nope", "--name", "x"), "no run matches `nope`"),
                       (("latest", "--untag", "nosuch"), "has no tag `nosuch`")):
        bad = blase("runs", "edit", *args, cwd=project)
        assert bad.returncode == 2 and said in bad.stderr and "Traceback" not in bad.stderr


def test_runs_artifact_lists_and_previews_what_the_tui_shows(project: Path, blase) -> None:
    assert blase("step", "a", "--set", "n=4", cwd=project).returncode == 0
    listed = blase("runs", "artifact", "latest", cwd=project)
    assert listed.returncode == 0, listed.stderr
    assert "a/a.txt" in listed.stdout and "3 B" in listed.stdout
    assert "artifacts/code/main.py" in listed.stdout  # the code kept with the run
    shown = blase("runs", "artifact", "latest", "a/a.txt", "--width", "60", cwd=project)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("a.txt  text") and "1 lines" in lines[0] and lines[1] == "n=4"
    from PIL import Image

    run_dir = project / "runs" / show_json(blase, project, "latest")["id"]
    Image.new("RGB", (8, 8), "red").save(run_dir / "a" / "artifacts" / "red.png")
    piped = blase("runs", "artifact", "latest", "a/red.png", cwd=project)  # no colour through a pipe
    assert piped.returncode == 0 and "red.png: an image; its preview needs a colour terminal" in piped.stdout
    assert "▄" not in piped.stdout
    bare = blase("runs", "artifact", "latest", "a.txt", "--width", "60", cwd=project)  # as `runs show` names it
    assert bare.returncode == 0 and bare.stdout.splitlines()[1] == "n=4", bare.stderr
    log = blase("runs", "artifact", "latest", "a/log.txt", cwd=project)  # a file of the run's folder
    assert log.returncode == 0 and "log" in log.stdout.splitlines()[0]
    for bad in ("a/nope.txt", "../../blase.toml", "/etc/passwd"):
        proc = blase("runs", "artifact", "latest", bad, cwd=project)
        assert proc.returncode == 2 and f"has no artifact or file {bad}" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
