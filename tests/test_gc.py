"""Deleting runs and reclaiming their space (issue 16): `blase runs delete` removes a finished run's folder and
records; `blase gc` then removes the content-store objects nothing refers to any more: not an object another
run, a registered model or a kept output still holds, not one written in the last hour."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from conftest import runs_json, show_json, wait_for

from blase_tui.store.runstore import RunStore


def _objects(project: Path) -> dict[str, Path]:
    objects = project / ".blase" / "cas" / "objects"
    return {p.parent.name + p.name: p for p in objects.glob("*/*") if not p.name.startswith(".tmp-")}


def _age(project: Path, seconds: float = 7200) -> None:
    """Make every object look written ``seconds`` ago (gc keeps what is younger than an hour)."""
    then = time.time() - seconds
    for path in _objects(project).values():
        os.utime(path, (then, then))


def test_delete_then_gc_frees_only_what_nothing_else_holds(project: Path, blase) -> None:
    for n in (1, 2, 1):  # the third run's a.txt has the first's content: one object for both
        assert blase("step", "a", "--set", f"n={n}", "--force", cwd=project).returncode == 0
    third, second, first = (r["id"] for r in runs_json(blase, project))
    a_txt = {r: show_json(blase, project, r)["steps"][0]["artifacts"][0]["hash"] for r in (first, second, third)}
    assert a_txt[first] == a_txt[third] != a_txt[second]
    before = _objects(project)
    _age(project)

    assert blase("runs", "delete", first, second, cwd=project).returncode == 2  # nobody to ask: needs --yes
    proc = blase("runs", "delete", first, second, "--yes", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert f"deleted run {first}" in proc.stdout and f"deleted run {second}" in proc.stdout
    assert not (project / "runs" / first).exists() and not (project / "runs" / second).exists()
    assert [r["id"] for r in runs_json(blase, project)] == [third]
    gone = blase("runs", "show", second[-6:], cwd=project)  # by its tail, as a person would type it
    assert gone.returncode == 2 and f"run {second} was deleted (" in gone.stderr, gone.stderr
    assert _objects(project).keys() == before.keys()  # nothing goes before gc

    dry = blase("gc", "--dry-run", cwd=project)
    assert dry.returncode == 0 and "would remove 1 object(s)" in dry.stdout
    assert _objects(project).keys() == before.keys()
    done = blase("gc", cwd=project)
    assert done.returncode == 0 and "removed 1 object(s)" in done.stdout
    assert set(before) - set(_objects(project)) == {a_txt[second]}  # the second run's a.txt alone
    # the remaining run is whole: its artifact's object is there and its folder's link reads it
    assert (project / "runs" / third / "a" / "artifacts" / "a.txt").read_text() == "n=1"
    assert blase("gc", cwd=project).stdout.startswith("removed 0 object(s)")


def test_gc_keeps_young_objects_models_and_removes_interrupted_deletes(project: Path, blase) -> None:
    for n in (4, 5):
        assert blase("step", "a", "--set", f"n={n}", "--force", cwd=project).returncode == 0
    newer, older = (r["id"] for r in runs_json(blase, project))
    held = show_json(blase, project, older)["steps"][0]["artifacts"][0]["hash"]
    store = RunStore(project)
    try:  # a model registered from the older run refers to its file
        with store.db.write() as conn:
            conn.execute("INSERT INTO models (name, version, run_id, file_hash, file_name, created)"
                         " VALUES ('m', 1, ?, ?, 'a.txt', ?)", (older, held, time.time()))
    finally:
        store.close()
    assert blase("runs", "delete", older, newer, "--yes", cwd=project).returncode == 0
    young = blase("gc", "--dry-run", cwd=project)
    assert "would remove 0 object(s)" in young.stdout and "written in the last 1 h, kept for now" in young.stdout
    _age(project)
    trash = project / "runs" / ".trash-20260101-000000000-zzzzzz"  # a delete cut short
    (trash / "a").mkdir(parents=True)
    (trash / "a" / "log.txt").write_text("x")
    proc = blase("gc", cwd=project)
    assert proc.returncode == 0 and "1 leftover(s)" in proc.stdout
    assert not trash.exists()
    assert held in _objects(project)  # the model's file stays, though its run is gone


def test_a_running_run_is_not_deleted(project: Path, blase, spawn) -> None:
    step = spawn("step", "slow", cwd=project)
    wait_for(lambda: (project / "started").exists(), what="slow step to start")
    run_id = show_json(blase, project, "latest")["id"]
    proc = blase("runs", "delete", run_id, "--yes", cwd=project)
    assert proc.returncode == 2 and "is running; stop it first" in proc.stderr
    assert (project / "runs" / run_id).exists()
    (project / "release").write_text("go")
    assert step.wait(timeout=60) == 0
    assert json.loads((project / "runs" / run_id / "run.json").read_text())["status"] == "succeeded"


async def test_deleting_from_the_runs_table(project: Path, blase) -> None:
    from test_tui import runs_loaded, until

    from blase_tui.tui.app import make_app

    for n in (1, 2, 3):
        assert blase("step", "a", "--set", f"n={n}", "--force", cwd=project).returncode == 0
    app = make_app(project)
    async with app.run_test(size=(100, 30)) as pilot:
        runs = await runs_loaded(pilot, app, 3)
        newest, middle, oldest = runs.order
        await pilot.press("down", "D")
        dialog = await until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen" and app.screen)
        assert middle in dialog.question
        await pilot.press("y")
        await until(pilot, lambda: middle not in runs.rows, what="the deleted run to leave the table")
        assert runs.order == [newest, oldest] and runs.current_id == oldest
    assert [r["id"] for r in runs_json(blase, project)] == [newest, oldest]
    assert not (project / "runs" / middle).exists()
