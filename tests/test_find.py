"""Finding runs from scripts (issue 12): `runs find` with --json, --name, --where, --all, usage errors for unknown
names, run ids in params given as prefixes, the Python API, and artifacts that keep their exec bit."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import make_project, runs_json, show_json

STEPS = '''
import os
from pathlib import Path

from blase_tui import main, step


@step
def cutouts(ctx, window_size: int = 64, seed: int = 0):
    """Cutouts of one size."""
    ctx.log_metric("count", float(window_size) * 10)
    (ctx.artifact_dir / "n.txt").write_text(str(window_size))


@step
def merge(ctx, cutouts_run: str = ""):
    """Merge a cutouts run."""
    ctx.log_metric("merged", 1.0)


@step
def script(ctx):
    """Leave a program as an artifact."""
    path = ctx.artifact_dir / "run.sh"
    path.write_text("#!/bin/sh\\necho ran\\n")
    path.chmod(0o755)


if __name__ == "__main__":
    main()
'''


@pytest.fixture
def proj(tmp_path: Path, blase) -> Path:
    project = make_project(tmp_path / "p", main_src=STEPS, toml='[project]\nname = "find"\n')
    for size in (64, 128):
        assert blase("step", "cutouts", "--set", f"window_size={size}", "--start-run", "--name",
                     f"cutouts_{size}", "--end-run", cwd=project).returncode == 0
    return project


def test_find_json_name_where_and_all(proj: Path, blase) -> None:
    runs = {r["name"]: r["id"] for r in runs_json(blase, proj)}
    out = json.loads(blase("runs", "find", "--step", "cutouts", "--json", "--all", cwd=proj, check=True).stdout)
    assert [r["id"] for r in out] == [runs["cutouts_128"], runs["cutouts_64"]]
    assert out[0]["params"]["window_size"] == 128 and out[0]["metrics"]["count"] == 1280.0
    assert out[0]["folder"] == str(proj / "runs" / runs["cutouts_128"])
    found = blase("runs", "find", "--name", "cutouts_6*", cwd=proj, check=True).stdout.strip()
    assert found == runs["cutouts_64"]
    found = blase("runs", "find", "--step", "cutouts", "--where", "count>1000", cwd=proj, check=True).stdout.strip()
    assert found == runs["cutouts_128"]
    found = blase("runs", "find", "--step", "cutouts", "--where", "window_size<100", cwd=proj, check=True)
    assert found.stdout.strip() == runs["cutouts_64"], "numeric params compare as numbers"
    every = blase("runs", "find", "--step", "cutouts", "--all", cwd=proj, check=True).stdout.split()
    assert every == [runs["cutouts_128"], runs["cutouts_64"]]
    none = blase("runs", "find", "--step", "cutouts", "--where", "count>99999", cwd=proj)
    assert none.returncode == 1 and "no run matches" in none.stderr
    # the step/key name `blase runs list` gives a metric two steps log is understood too
    found = blase("runs", "find", "--step", "cutouts", "--where", "cutouts/count>1000", cwd=proj, check=True)
    assert found.stdout.strip() == runs["cutouts_128"]
    # a misspelt step in `runs list` is a usage error as in `runs find`, not "no runs match"
    listed = blase("runs", "list", "--step", "cutuots", cwd=proj)
    assert listed.returncode == 2 and "no run has a step `cutuots`; steps with runs: cutouts" in listed.stderr


@pytest.mark.parametrize(("args", "expected"), [
    (("--step", "nosuch"), "--step nosuch: no run has a step `nosuch`; steps with runs: cutouts"),
    (("--step", "cutouts", "--param", "size=64"), "--param size: no run of step `cutouts` has a param `size`"),
    (("--step", "cutouts", "--where", "count>>1"), "--where count>>1: write it as NAME>NUMBER"),
    (("--param", "window_size=64",), "give --step STEP or --name NAME"),
    (("--step", "cutouts", "--where", "cont>1"), "--where cont: no run has a metric or param `cont`; metrics: count"),
    (("--step", "cutouts", "--param", 'window_size=["g","r"'),
     '--param window_size=["g","r": the value starts like JSON but is not valid JSON'),
    (("--step", "cutouts", "--json", "--param", "seed={1"), "--param seed={1: the value starts like JSON"),
])
def test_find_usage_errors_exit_2(proj: Path, blase, args: tuple[str, ...], expected: str) -> None:
    proc = blase("runs", "find", *args, cwd=proj)
    assert proc.returncode == 2 and expected in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_typer_usage_errors_are_one_blase_line(proj: Path, blase) -> None:
    proc = blase("runs", "find", "--bogus", cwd=proj)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "blase: No such option: --bogus (`blase runs find --help` lists what it takes)."
    assert "╭" not in proc.stderr
    proc = blase("nosuchcommand", cwd=proj)
    assert proc.returncode == 2 and proc.stderr.startswith("blase: No such command 'nosuchcommand'")


def test_identical_runs_say_so(proj: Path, blase) -> None:
    assert blase("step", "cutouts", "--set", "window_size=64", "--force", cwd=proj).returncode == 0
    proc = blase("runs", "find", "--step", "cutouts", "--param", "window_size=64", cwd=proj)
    assert proc.returncode == 1
    assert "their params are the same (they differ only in when they ran)" in proc.stderr
    assert "(none" not in proc.stderr


def test_run_ids_in_params_may_be_prefixes_and_are_recorded_whole(proj: Path, blase) -> None:
    target = {r["name"]: r["id"] for r in runs_json(blase, proj)}["cutouts_64"]
    tail = target.rsplit("-", 1)[1]
    assert blase("step", "merge", "--set", f"cutouts_run={tail}", cwd=proj).returncode == 0
    merged = show_json(blase, proj, "latest")
    assert merged["steps"][0]["params"]["cutouts_run"] == target
    found = blase("runs", "find", "--step", "merge", "--param", f"cutouts_run={target[:-2]}", cwd=proj, check=True)
    assert found.stdout.strip() == merged["id"]
    bad = blase("step", "merge", "--set", "cutouts_run=zzzzzz", cwd=proj)
    assert bad.returncode == 2 and "param `cutouts_run` of step `merge`: no run matches `zzzzzz`" in bad.stderr


def test_python_api_find_and_get(proj: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from blase_tui import ConfigError, runs

    monkeypatch.chdir(proj)
    found = runs.find("cutouts", params={"window_size": 128})
    assert len(found) == 1
    run = runs.get(found[0].id[-6:])
    assert run.id == found[0].id and run.name == "cutouts_128" and run.status == "succeeded"
    assert run.params["window_size"] == 128 and run.metrics["count"] == 1280.0
    assert run.artifact_path("n.txt").read_text() == "128"
    assert run.folder == proj / "runs" / run.id
    assert [r.name for r in runs.find("cutouts", where="count<1000")] == ["cutouts_64"]
    assert [r.id for r in runs.find(name="cutouts_*", latest=True)] == [found[0].id]
    with pytest.raises(ConfigError, match="no run has a step `nope`"):
        runs.find("nope")
    with pytest.raises(ConfigError, match="has no artifact `missing.txt`"):
        run.artifact_path("missing.txt")


def test_artifacts_keep_their_exec_bit(proj: Path, blase) -> None:
    assert blase("step", "script", cwd=proj).returncode == 0
    run = show_json(blase, proj, "latest")
    program = proj / "runs" / run["id"] / "script" / "artifacts" / "run.sh"
    assert program.stat().st_mode & stat.S_IXUSR and not program.stat().st_mode & stat.S_IWUSR
    assert subprocess.run([str(program)], capture_output=True, text=True, cwd=program.parent).stdout == "ran\n"
    assert os.access(program, os.X_OK)


CHAIN = '''
from pathlib import Path
from blase_tui import step


def _read(ctx, path):
    ctx.log_dataset(path, role="input")
    return Path(path).read_text()


def _write(ctx, path, text):
    Path(path).write_text(text)
    ctx.log_dataset(path, role="output")


@step
def cutouts(ctx, window_size: int = 64):
    """Cut the mosaic at one window size."""
    _write(ctx, f"data/cutouts_{window_size}.txt", _read(ctx, "data/mosaic.txt") + f" cut {window_size}")


@step
def merge(ctx, small_run: str = "", large_run: str = ""):
    """Merge two cutout runs."""
    _write(ctx, "data/merged.txt", _read(ctx, "data/cutouts_64.txt") + _read(ctx, "data/cutouts_128.txt"))


@step
def features(ctx, merge_run: str = ""):
    """Features of the merged cutouts."""
    _write(ctx, "data/features.txt", _read(ctx, "data/merged.txt").upper())


@step
def cluster(ctx, features_run: str = "", n_clusters: int = 4):
    """Cluster the features."""
    _write(ctx, "data/clusters.txt", _read(ctx, "data/features.txt") + f" k={n_clusters}")


@step
def sample(ctx, cluster_run: str = ""):
    """Sample from the clusters."""
    _write(ctx, "data/sample.txt", _read(ctx, "data/clusters.txt")[:20])
'''


def test_an_unchanged_chain_runs_nothing_and_a_change_reruns_what_it_affects(tmp_path: Path, blase) -> None:
    """Seed 004's chain: each step takes the previous run id from `runs find --latest`."""
    project = make_project(tmp_path / "chain", main_src=CHAIN, toml='[project]\nname = "chain"\n')
    (project / "data").mkdir()
    (project / "data" / "mosaic.txt").write_text("mosaic")

    def latest(step: str, *params: str) -> str:
        args = [a for p in params for a in ("--param", p)]
        return blase("runs", "find", "--step", step, *args, "--latest", cwd=project, check=True).stdout.strip()

    def chain(n_clusters: int) -> list[str]:
        """Run the chain; returns the steps that ran (those that made a run)."""
        before = {r["id"] for r in runs_json(blase, project)}
        for w in (64, 128):
            blase("step", "cutouts", "--set", f"window_size={w}", cwd=project, check=True)
        blase("step", "merge", "--set", f"small_run={latest('cutouts', 'window_size=64')}",
              "--set", f"large_run={latest('cutouts', 'window_size=128')}", cwd=project, check=True)
        blase("step", "features", "--set", f"merge_run={latest('merge')}", cwd=project, check=True)
        blase("step", "cluster", "--set", f"features_run={latest('features')}", "--set", f"n_clusters={n_clusters}",
              cwd=project, check=True)
        blase("step", "sample", "--set", f"cluster_run={latest('cluster', f'n_clusters={n_clusters}')}",
              cwd=project, check=True)
        new = [r for r in runs_json(blase, project) if r["id"] not in before]
        return sorted(s["step"] for r in new for s in r["steps"])

    assert chain(4) == ["cluster", "cutouts", "cutouts", "features", "merge", "sample"]
    assert chain(4) == [], "an unchanged chain executes nothing and creates no run"
    assert chain(6) == ["cluster", "sample"], "a changed n_clusters reruns exactly what it affects"


def test_a_step_up_to_date_in_the_open_run_that_computed_it_adds_nothing(tmp_path: Path, blase) -> None:
    """The same step twice in one open run: the second is up to date, says that this run computed it, and the
    run does not list the step twice; in another open run it is recorded as a reference, as before."""
    project = make_project(tmp_path / "chain", main_src=CHAIN, toml='[project]\nname = "chain"\n')
    (project / "data").mkdir()
    (project / "data" / "mosaic.txt").write_text("mosaic")
    blase("step", "cutouts", "--start-run", cwd=project, check=True)
    again = blase("step", "cutouts", cwd=project, check=True)
    run_id = runs_json(blase, project)[0]["id"]
    assert f"up to date: nothing ran; the open run {run_id} computed them in an earlier execution" in again.stderr
    assert [s["step"] for s in show_json(blase, project, run_id)["steps"]] == ["cutouts"]
    blase("step", "cutouts", "--end-run", cwd=project, check=True)  # closing the run still works
    assert show_json(blase, project, run_id)["status"] == "succeeded"
    blase("step", "cutouts", "--start-run", cwd=project, check=True)  # another run: a reference to the first
    second = runs_json(blase, project)[0]
    assert second["id"] != run_id and [s["step"] for s in second["steps"]] == ["cutouts"]


def test_lineage_of_the_chain(tmp_path: Path, blase) -> None:
    project = make_project(tmp_path / "chain", main_src=CHAIN, toml='[project]\nname = "chain"\n')
    (project / "data").mkdir()
    (project / "data" / "mosaic.txt").write_text("mosaic")
    ids: dict[str, str] = {}
    for w in (64, 128):
        blase("step", "cutouts", "--set", f"window_size={w}", cwd=project, check=True)
        ids[f"cutouts{w}"] = runs_json(blase, project)[0]["id"]
    blase("step", "merge", "--set", f"small_run={ids['cutouts64'][-6:]}", "--set", f"large_run={ids['cutouts128']}",
          cwd=project, check=True)
    ids["merge"] = runs_json(blase, project)[0]["id"]
    for step, param in (("features", "merge_run"), ("cluster", "features_run"), ("sample", "cluster_run")):
        previous = runs_json(blase, project)[0]["id"]
        blase("step", step, "--set", f"{param}={previous}", cwd=project, check=True)
        ids[step] = runs_json(blase, project)[0]["id"]
    graph = json.loads(blase("runs", "lineage", ids["sample"], "--json", cwd=project, check=True).stdout)
    assert set(graph["runs"]) == set(ids.values()), "the sample run's lineage holds every run of the chain"
    links = {(k["from"], k["to"], k["via"]) for k in graph["links"]}
    assert (ids["cluster"], ids["sample"], "param cluster_run") in links
    assert (ids["cluster"], ids["sample"], "data/clusters.txt") in links, "data written by one, read by the next"
    assert (ids["cutouts64"], ids["merge"], "param small_run") in links and \
        (ids["cutouts128"], ids["merge"], "data/cutouts_128.txt") in links
    text = blase("runs", "lineage", ids["sample"], cwd=project, check=True).stdout
    assert text.splitlines()[0].startswith(ids["sample"]) and f"<- {ids['cluster']}  cluster" in text
    down = json.loads(blase("runs", "lineage", ids["cutouts64"], "--down", "--json", cwd=project, check=True).stdout)
    assert set(down["runs"]) == {ids["cutouts64"], ids["merge"], ids["features"], ids["cluster"], ids["sample"]}


async def test_the_run_screen_shows_lineage(tmp_path: Path, blase) -> None:
    from blase_tui.tui.app import make_app
    from blase_tui.tui.screens.run import RunScreen

    project = make_project(tmp_path / "chain", main_src=CHAIN, toml='[project]\nname = "chain"\n')
    (project / "data").mkdir()
    (project / "data" / "mosaic.txt").write_text("mosaic")
    for w in (64, 128):
        blase("step", "cutouts", "--set", f"window_size={w}", cwd=project, check=True)
    small, large = (r["id"] for r in reversed(runs_json(blase, project)))
    blase("step", "merge", "--set", f"small_run={small}", "--set", f"large_run={large}", cwd=project, check=True)
    merge = runs_json(blase, project)[0]["id"]
    app = make_app(project)
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(RunScreen(app.project, merge))  # type: ignore[attr-defined]
        for _ in range(200):
            await pilot.pause(0.05)
            if isinstance(app.screen, RunScreen) and app.screen.desc is not None:
                break
        lineage = app.screen.lineage
        assert {(d, r) for d, r, _, _ in lineage} == {("fed by", small), ("fed by", large)}


SETS = '''
from blase_tui import step


@step(sets=["bands"], reuse=True)
def stack(ctx, bands: list = ["g"], layers: list = [1]):
    """Stack bands (a set) with layers (a list: order matters)."""
    ctx.log_metric("n", float(len(bands)))
    (ctx.artifact_dir / "bands.txt").write_text(",".join(bands))
'''


def test_list_params_declared_sets_match_in_any_order(tmp_path: Path, blase) -> None:
    root = make_project(tmp_path / "sets", main_src=SETS, toml='[project]\nname = "sets"\n')
    blase("step", "stack", "--set", 'bands=["r", "g"]', "--set", "layers=[1, 2]", cwd=root, check=True)
    first = show_json(blase, root, "latest")
    assert first["steps"][0]["params"]["bands"] == ["g", "r"], "a set is recorded sorted"
    again = blase("step", "stack", "--set", 'bands=["g", "r", "r"]', "--set", "layers=[1, 2]", cwd=root, check=True)
    assert "is up to date" in again.stderr, "the same set in another order is the same param value"
    found = blase("runs", "find", "--step", "stack", "--param", 'bands=["r","g"]', cwd=root)
    assert found.returncode == 0 and found.stdout.split() == [first["id"]]
    # a plain list keeps its order: [2, 1] is another value, a new execution, and does not find the first run
    assert blase("runs", "find", "--step", "stack", "--param", "layers=[2,1]", cwd=root).returncode == 1
    blase("step", "stack", "--set", 'bands=["r", "g"]', "--set", "layers=[2, 1]", cwd=root, check=True)
    assert len(blase("runs", "find", "--step", "stack", "--param", 'bands=["g","r"]', "--all", cwd=root).stdout.split()) == 2


def test_sets_must_name_params(tmp_path: Path, blase) -> None:
    root = make_project(tmp_path / "bad", main_src="from blase_tui import step\n\n@step(sets=['colours'])\n"
                        "def s(ctx, bands: list = []):\n    pass\n", toml='[project]\nname = "bad"\n')
    proc = blase("step", "s", cwd=root)
    assert proc.returncode == 2 and "@step(sets=...) of step `s` names `colours`" in proc.stderr


def test_find_json_exits_as_the_text_form_does(proj: Path, blase) -> None:
    """`--json` prints the matches (or []) and exits 1 for no match or several without --latest or --all."""
    runs = {r["name"]: r["id"] for r in runs_json(blase, proj)}
    none = blase("runs", "find", "--step", "cutouts", "--param", "window_size=32", "--json", cwd=proj)
    assert none.returncode == 1 and json.loads(none.stdout) == [] and "no run matches" in none.stderr
    several = blase("runs", "find", "--step", "cutouts", "--json", cwd=proj)
    assert several.returncode == 1 and "2 runs match; they differ in window_size" in several.stderr
    assert [r["id"] for r in json.loads(several.stdout)] == [runs["cutouts_128"], runs["cutouts_64"]]
    for extra in (("--all",), ("--latest",), ("--param", "window_size=64")):
        ok = blase("runs", "find", "--step", "cutouts", "--json", *extra, cwd=proj)
        assert ok.returncode == 0 and ok.stderr == "", (extra, ok.stderr)
    assert [r["id"] for r in json.loads(ok.stdout)] == [runs["cutouts_64"]]


def test_find_by_name_compares_every_param_the_runs_recorded(tmp_path: Path, blase) -> None:
    """Without --step, the ambiguity message compares the params the matched runs recorded, any step's."""
    root = make_project(tmp_path / "photo", main_src=SETS, toml='[project]\nname = "photo"\n')
    for bands, layers, name in (('["g"]', "[1]", "photo_g"), ('["g", "r"]', "[1, 2]", "photo_gr")):
        blase("step", "stack", "--set", f"bands={bands}", "--set", f"layers={layers}", "--start-run", "--name", name,
              "--end-run", cwd=root, check=True)
    proc = blase("runs", "find", "--name", "photo_*", cwd=root)
    assert proc.returncode == 1 and "2 runs match; they differ in bands, layers." in proc.stderr, proc.stderr
    assert '["g", "r"]  [1, 2]' in proc.stderr and '["g"]       [1]' in proc.stderr  # each run's values
    bad = blase("runs", "find", "--name", "photo_*", "--param", 'bands=["g","r"', cwd=root)
    assert bad.returncode == 2 and bad.stdout == ""
    assert '--param bands=["g","r": the value starts like JSON but is not valid JSON' in bad.stderr
    good = blase("runs", "find", "--name", "photo_*", "--param", 'bands=["r","g"]', cwd=root, check=True)
    assert good.stdout.strip() == show_json(blase, root, "latest")["id"]


def test_name_on_an_up_to_date_step_names_the_run_that_computed_it(tmp_path: Path, blase) -> None:
    project = make_project(tmp_path / "chain", main_src=CHAIN, toml='[project]\nname = "chain"\n')
    (project / "data").mkdir()
    (project / "data" / "mosaic.txt").write_text("mosaic")
    blase("step", "cutouts", "--set", "window_size=64", cwd=project, check=True)
    producer = runs_json(blase, project)[0]["id"]
    again = blase("step", "cutouts", "--set", "window_size=64", "--name", "cutouts_64", cwd=project, check=True)
    assert "is up to date" in again.stderr
    assert f"run {producer}, which computed the outputs, had no name: named it cutouts_64." in again.stderr
    found = blase("runs", "find", "--name", "cutouts_64", cwd=project, check=True)
    assert found.stdout.strip() == producer and len(runs_json(blase, project)) == 1
    # a run that has a name keeps it; the line says how to rename it, and the other name finds nothing
    other = blase("step", "cutouts", "--set", "window_size=64", "--name", "other", "--quiet", cwd=project, check=True)
    assert (f"--name other not used: nothing ran, and run {producer}, which computed the outputs, is named"
            f" cutouts_64; `blase runs edit {producer} --name other` renames it." in other.stderr)
    assert show_json(blase, project, producer)["name"] == "cutouts_64"
    assert blase("runs", "find", "--name", "other", cwd=project).returncode == 1
