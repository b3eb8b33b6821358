"""Results users can trust (issue 23): a step is reused only while the code it uses, its params and its inputs
are unchanged, and a change reruns exactly the steps it affects; lineage follows seed 004's own chain (run ids in
params of any name, in lists, and files read from a run's folder); a folder has one hash whoever reads or
writes it; reproductions stay aside."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import make_project, runs_json, show_json

# Seed 004's chain as a user writes it for blase: each step takes the previous run's id, under the seed's param
# names, and reads that run's artifacts from its folder.
SEED_004 = '''
import numpy as np

import helper
from blase_tui import Extract, runs, step


def _load(path):
    return np.concatenate([np.asarray(b["array"]) for b in Extract().load_npy(path)])


@step
def cutouts(ctx, window_size: int = 64):
    """Cut the mosaic into windows."""
    arr = helper.cut(_load("data/mosaic.npy"), window_size)
    np.save(ctx.artifact_dir / "cutouts.npy", arr)


@step
def merge(ctx, cutouts_ids: list = []):
    """Merge cutout runs."""
    parts = [_load(runs.get(r).artifact_path("cutouts.npy"))[:, :16] for r in cutouts_ids]
    np.save(ctx.artifact_dir / "merged.npy", np.concatenate(parts))


@step
def features(ctx, merged_cutouts_id: str = ""):
    """Features of the merged cutouts."""
    x = _load(runs.get(merged_cutouts_id).artifact_path("merged.npy"))
    np.save(ctx.artifact_dir / "features.npy", x.mean(axis=1, keepdims=True))


@step
def cluster(ctx, features_id: str = "", n_clusters: int = 3):
    """Cluster the features."""
    x = _load(runs.get(features_id).artifact_path("features.npy"))
    np.save(ctx.artifact_dir / "clusters.npy", (x[:, 0] * 1000).astype(int) % n_clusters)


@step
def sample(ctx, clustering_id: str = "", num_samples: int = 5):
    """Sample from the clusters."""
    c = _load(runs.get(clustering_id).artifact_path("clusters.npy"))
    (ctx.artifact_dir / "sample.txt").write_text(helper.tag() + str(c[:num_samples].tolist()))
'''

HELPER = '''
from extra import SUFFIX


def cut(mosaic, w):
    n = mosaic.shape[0] // w
    return mosaic[: n * w].reshape(n, w, -1)[:, :, :4].reshape(n, -1)


def tag():
    return "t" + SUFFIX
'''


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    import numpy as np

    root = make_project(tmp_path / "curation", main_src=SEED_004,
                        toml='[project]\nname = "curation"\nscripts = ["main.py"]\n')
    (root / "helper.py").write_text(HELPER)
    (root / "extra.py").write_text('SUFFIX = "a"\n')
    (root / "data").mkdir()
    np.save(root / "data" / "mosaic.npy", np.random.default_rng(0).random((1024, 16)))
    return root


def _latest(blase, root: Path, step: str, *params: str) -> str:
    args = [a for p in params for a in ("--param", p)]
    return blase("runs", "find", "--step", step, *args, "--latest", cwd=root, check=True).stdout.strip()


def _run_chain(blase, root: Path) -> list[str]:
    """Seed 004's walkthrough; returns the steps that executed (made a run), sorted."""
    before = {r["id"] for r in runs_json(blase, root)}
    for w in (64, 128):
        blase("step", "cutouts", "--set", f"window_size={w}", cwd=root, check=True)
    small, large = _latest(blase, root, "cutouts", "window_size=64"), _latest(blase, root, "cutouts", "window_size=128")
    blase("step", "merge", "--set", f'cutouts_ids=["{small[-6:]}", "{large}"]', cwd=root, check=True)
    blase("step", "features", "--set", f"merged_cutouts_id={_latest(blase, root, 'merge')}", cwd=root, check=True)
    blase("step", "cluster", "--set", f"features_id={_latest(blase, root, 'features')}", cwd=root, check=True)
    blase("step", "sample", "--set", f"clustering_id={_latest(blase, root, 'cluster')}", cwd=root, check=True)
    return sorted(s["step"] for r in runs_json(blase, root) if r["id"] not in before for s in r["steps"])


def test_seed_004_chain_reruns_exactly_what_a_change_affects_and_lineage_draws_the_tree(chain: Path, blase) -> None:
    root = chain
    assert _run_chain(blase, root) == ["cluster", "cutouts", "cutouts", "features", "merge", "sample"]
    assert _run_chain(blase, root) == [], "an unchanged chain executes nothing"

    merge = show_json(blase, root, _latest(blase, root, "merge"))
    ids = merge["steps"][0]["params"]["cutouts_ids"]
    assert ids == [_latest(blase, root, "cutouts", "window_size=64"), _latest(blase, root, "cutouts", "window_size=128")], \
        "a tail inside a list is recorded as the whole id"

    main = root / "main.py"
    main.write_text(main.read_text().replace('    """Sample from the clusters."""\n',
                                             '    """Sample from the clusters."""\n    # pick the first few\n'))
    assert _run_chain(blase, root) == ["sample"], "a comment in one step reruns that step only"

    # an edit to a module the helper imports reruns the steps that use the helper (cutouts, sample); cutouts
    # makes the same arrays again, so merge, features and cluster, given the new cutouts runs, are up to date
    (root / "extra.py").write_text('SUFFIX = "b"\n')
    assert _run_chain(blase, root) == ["cutouts", "cutouts", "sample"]
    newest = show_json(blase, root, _latest(blase, root, "sample"))
    assert (root / "runs" / newest["id"] / "sample" / "artifacts" / "sample.txt").read_text().startswith("tb")

    graph = json.loads(blase("runs", "lineage", newest["id"], "--json", cwd=root, check=True).stdout)
    steps = sorted(s for r in graph["runs"].values() for s in r["steps"])
    assert steps == ["cluster", "cutouts", "cutouts", "features", "merge", "sample"], "the whole six-run tree"
    vias = {k["via"] for k in graph["links"]}
    assert {"param clustering_id", "param features_id", "param merged_cutouts_id", "param cutouts_ids"} <= vias
    assert any(v.startswith("runs/") and v.endswith("/cutouts/artifacts/cutouts.npy") for v in vias), \
        "a file read from a run's folder links to that run"
    first_cutouts = next(rid for rid, r in graph["runs"].items() if r["steps"] == ["cutouts"])
    down = json.loads(blase("runs", "lineage", first_cutouts, "--down", "--json", cwd=root, check=True).stdout)
    assert {s for r in down["runs"].values() for s in r["steps"]} >= {"merge", "features", "cluster", "sample"}
    text = blase("runs", "lineage", newest["id"], cwd=root, check=True).stdout
    assert "via param clustering_id" in text and "no run fed it" not in text


def test_a_helper_the_scripts_setting_leaves_out_still_counts_and_is_kept_with_the_run(tmp_path: Path, blase) -> None:
    """`scripts = ["main.py"]`, and main.py imports helper.py, which imports extra.py (untracked in git)."""
    main = '''
from pathlib import Path

import helper
from blase_tui import step


@step
def make(ctx):
    """Write out.txt from the helper."""
    Path("data/out.txt").write_text(helper.tag())
    ctx.log_dataset("data/in.txt", role="input")
    ctx.log_dataset("data/out.txt", role="output")


@step
def other(ctx):
    """Uses no helper."""
    Path("data/other.txt").write_text(Path("data/in.txt").read_text())
    ctx.log_dataset("data/in.txt", role="input")
    ctx.log_dataset("data/other.txt", role="output")
'''
    root = make_project(tmp_path / "own", main_src=main, toml='[project]\nname = "own"\nscripts = ["main.py"]\n')
    (root / "helper.py").write_text("from extra import SUFFIX\n\n\ndef tag():\n    return 'out-' + SUFFIX\n")
    (root / "extra.py").write_text('SUFFIX = "a"\n')
    (root / "data").mkdir()
    (root / "data" / "in.txt").write_text("in")
    git = shutil.which("git")
    if git:
        for args in (["init", "-q"], ["add", "main.py", "helper.py", "blase.toml", "data/in.txt"],
                     ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one"]):
            subprocess.run([git, *args], cwd=root, check=True, capture_output=True)
    blase("step", "make", cwd=root, check=True)
    blase("step", "other", cwd=root, check=True)
    (root / "extra.py").write_text('SUFFIX = "b"\n')
    again = blase("step", "make", cwd=root, check=True)
    assert "up to date" not in again.stderr and (root / "data" / "out.txt").read_text() == "out-b", \
        "an edit to a module the step imports (through another) reruns it"
    assert "up to date" in blase("step", "other", cwd=root, check=True).stderr, "a step that uses no helper is not"

    run = show_json(blase, root, "latest")
    assert {"helper.py", "extra.py", "main.py::make"} <= set(run["steps"][0]["code"])
    kept = {a["name"] for a in run["artifacts"]}
    assert {"code/main.py", "code/helper.py", "code/extra.py"} <= kept, "the modules it used are kept with the run"
    for code in ("recorded", "current"):
        proc = blase("runs", "reproduce", run["id"], "--code", code, "--json", cwd=root, timeout=300)
        report = json.loads(proc.stdout)
        assert proc.returncode == 0 and report["identical"], (code, proc.stderr[-2000:])
    (root / "helper.py").write_text("from extra import SUFFIX\n\n\ndef tag():\n    return 'new-' + SUFFIX\n")
    proc = blase("runs", "reproduce", run["id"], "--code", "current", cwd=root, timeout=300)
    assert proc.returncode == 1 and "changed since the run: helper.py" in proc.stdout, proc.stdout
    assert "- out-b" in proc.stdout and "+ new-b" in proc.stdout, "the differing output's first lines are shown"


def test_a_parquet_folder_has_one_hash_and_an_exclusion_set_is_an_input(tmp_path: Path, blase) -> None:
    from blase_tui.core import templates

    root = templates.create("tabular", tmp_path / "lin")
    for step in ("etl", "clean", "prepare"):
        blase("step", step, cwd=root, check=True, timeout=300)
    etl, clean, prepare = (_latest(blase, root, s) for s in ("etl", "clean", "prepare"))
    written = {d["path"]: d["hash"] for d in show_json(blase, root, etl)["steps"][0]["datasets"] if d["role"] == "output"}
    read = {d["path"]: d["hash"] for d in show_json(blase, root, clean)["steps"][0]["datasets"] if d["role"] == "input"}
    assert written["data/interim/patients"] == read["data/interim/patients"], "the writer and the reader agree"
    graph = json.loads(blase("runs", "lineage", prepare, "--json", cwd=root, check=True).stdout)
    links = {(k["from"], k["via"]) for k in graph["links"]}
    assert (etl, "data/interim/patients") in links and (clean, "exclusions:cleaned_v1") in links

    proc = blase("runs", "reproduce", clean, "--step", "clean", "--json", cwd=root, timeout=300)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["identical"], report
    assert not any("changed since the run" in n for n in report["notes"]), report["notes"]
    assert {r["name"] for r in report["results"] if r["kind"] == "artifact"} == {"exclusions/cleaned_v1.json"}
    from blase_tui.store.runstore import RunStore

    store = RunStore(root)
    try:  # what the reproduction saved stayed in its own store: the project's set has no new version
        assert store.db.query("SELECT MAX(version) AS v FROM exclusions WHERE name = 'cleaned'")[0]["v"] == 1
    finally:
        store.close()

    # a clean step that now leaves out more: the prepare step that read `cleaned` is stale and runs again
    main = root / "main.py"
    main.write_text(main.read_text().replace("cleaner.apply_filter(batch, has_missing,",
                                             "cleaner.apply_filter(batch, lambda b: has_missing(b) | True,"))
    blase("step", "clean", cwd=root, check=True)
    again = blase("step", "prepare", cwd=root, check=True)
    assert "up to date" not in again.stderr, "a new version of the exclusion set it reads reruns the step"
    read = {d["path"] for d in show_json(blase, root, "latest")["steps"][0]["datasets"] if d["role"] == "input"}
    assert "exclusions:cleaned_v2" in read


def test_reproductions_stay_aside(chain: Path, blase) -> None:
    root = chain
    _run_chain(blase, root)
    features = _latest(blase, root, "features")
    proc = blase("runs", "reproduce", features, "--json", cwd=root, timeout=300)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["identical"], report
    copy = report["new_runs"][0]
    assert _latest(blase, root, "features") == features, "find never returns a reproduction by default"
    found = blase("runs", "find", "--step", "features", "--all", "--reproductions", cwd=root, check=True).stdout.split()
    assert found == [copy, features]
    assert _run_chain(blase, root) == [], "reuse never takes a reproduction: the chain below runs nothing"
    listed = blase("runs", "list", cwd=root, check=True).stdout
    assert f"reproduces {features[-6:]}" in listed
    assert f"a reproduction of run {features}" in blase("runs", "show", copy, cwd=root, check=True).stdout
    assert next(r for r in runs_json(blase, root) if r["id"] == copy)["reproduces"] == features


SHAPES = '''
import functools
import random
import subprocess
import sys

import registry
import seeding  # noqa: F401 - imported for what it does: it seeds the RNG
import plugins_a  # noqa: F401 - registers plugin "a"
from starmod import *  # noqa: F403
from blase_tui import step

try:
    import optmod
except ImportError:
    optmod = None

ANN = "ann1"


def traced(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)
    return wrapper


@step
def s_random(ctx):
    """Uses the RNG seeding.py seeds on import."""
    return random.random()


@step
def s_registry(ctx):
    """Calls what plugins_a registered."""
    return registry.REG["a"]()


@step
def s_lookup(ctx):
    """Looks a module name up at run time."""
    return getattr(sys.modules[__name__], "ANN")


@step
def s_subprocess(ctx):
    """Runs a project script."""
    return subprocess.run([sys.executable, "tool.py"], check=True)


@step
@traced
def s_wrapped(ctx):
    """Wrapped by a decorator of the project's."""
    return 1


@step
def s_star(ctx):
    """Uses a name a star import brings."""
    return starred()


@step
def s_plain(ctx):
    """Uses nothing of the project's."""
    return 2
'''

PARTS = """
import json, sys
from pathlib import Path
from blase_tui.core.codeuse import step_code
from blase_tui.core.project import Project

project = Project.discover(Path.cwd())
steps = project.load_steps()
print(json.dumps({n: step_code(project.root, i.func, entry=project.root / "main.py").parts for n, i in steps.items()}))
"""


def test_code_a_step_uses_however_it_reaches_it(tmp_path: Path) -> None:
    """Each edit reruns exactly the steps that use what changed: a module that does something when imported
    (seeds the RNG, registers a plugin) counts for every step of the module importing it, a name looked up in
    sys.modules makes every file count, a script a step runs is its code; a wrapper, a star import and a
    `try: import` do not make unrelated steps rerun."""
    import sys as _sys

    root = make_project(tmp_path / "shapes", main_src=SHAPES, toml='[project]\nname = "shapes"\n')
    files = {"registry.py": "REG = {}\n", "seeding.py": "import random\n\nrandom.seed(1)\n",
             "plugins_a.py": 'from registry import REG\n\nREG["a"] = lambda: "a1"\n', "tool.py": "print(1)\n",
             "starmod.py": "def starred():\n    return 1\n\n\ndef other():\n    return 2\n",
             "optmod.py": "X = 1\n"}
    for name, text in files.items():
        (root / name).write_text(text)

    def parts() -> dict[str, dict[str, str]]:
        proc = subprocess.run([_sys.executable, "-c", PARTS], cwd=root, capture_output=True, text=True, check=True,
                              env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).parents[1])})
        return json.loads(proc.stdout)

    def changed_by(file: str, text: str) -> set[str]:
        before = parts()
        (root / file).write_text(text)
        after = parts()
        return {step for step in before if before[step] != after[step]}

    assert changed_by("seeding.py", "import random\n\nrandom.seed(2)\n") == set(parts())
    assert "s_registry" in changed_by("plugins_a.py", 'from registry import REG\n\nREG["a"] = lambda: "a2"\n')
    assert changed_by("main.py", SHAPES.replace('ANN = "ann1"', 'ANN = "ann2"')) == {"s_lookup"}
    assert changed_by("tool.py", "print(2)\n") == {"s_subprocess", "s_lookup"}
    assert changed_by("starmod.py", "def starred():\n    return 3\n\n\ndef other():\n    return 2\n") == \
        {"s_star", "s_lookup"}
    assert changed_by("optmod.py", "X = 2\n") == {"s_lookup"}, "only the step that looks everything up"
    edited = (root / "main.py").read_text().replace('"""Uses nothing of the project\'s."""\n    return 2',
                                                    '"""Uses nothing of the project\'s."""\n    return 3')
    assert changed_by("main.py", edited) == {"s_plain", "s_lookup"}, "a wrapped step does not take every edit"


def test_code_that_runs_on_import_counts_wherever_the_step_is(tmp_path: Path) -> None:
    """A registering decorator in the step's own module, an entry module that seeds the RNG on import while the
    steps live in another module, and a module that imports by name at its top level."""
    import os as _os
    import sys as _sys

    root = make_project(tmp_path / "imports", main_src="import seeding  # noqa: F401\nfrom pipeline import *\n",
                        toml='[project]\nname = "imports"\n')
    (root / "seeding.py").write_text("import random\n\nrandom.seed(1)\n")
    (root / "pipeline.py").write_text('''
import importlib

from blase_tui import step

REG = {}


def register(name):
    def wrap(func):
        REG[name] = func
        return func
    return wrap


@register("double")
def double(x):
    return 2 * x


@step
def use_registry(ctx):
    """Looks the function up by name."""
    return REG["double"](3)
''')
    (root / "loader.py").write_text('import importlib\n\nPLUGIN = importlib.import_module("plugin")\n')
    (root / "plugin.py").write_text("VALUE = 1\n")

    def parts() -> dict[str, dict[str, str]]:
        proc = subprocess.run([_sys.executable, "-c", PARTS], cwd=root, capture_output=True, text=True, check=True,
                              env={**_os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
        return json.loads(proc.stdout)

    first = parts()["use_registry"]
    assert "seeding.py" in first, "the entry's import that seeds the RNG runs before every step"
    pipeline = (root / "pipeline.py").read_text()
    (root / "pipeline.py").write_text(pipeline.replace("return 2 * x", "return 3 * x"))
    assert parts()["use_registry"] != first, "a registered function the step looks up is its code"
    (root / "pipeline.py").write_text("import loader  # noqa: F401\n" + pipeline)
    assert "plugin.py" in parts()["use_registry"], "in doubt (an import by name on import): every file"


def test_png_shards_in_nested_folders_hash_as_every_reader_does(tmp_path: Path) -> None:
    """Keys that become folders whose names sort differently as text and as paths (`a-b/` before `a/`)."""
    import numpy as np

    from blase_tui import Load
    from blase_tui.modules.batch import Batch, BatchMeta
    from blase_tui.store.filehash import dataset_hash

    images = np.zeros((4, 4, 4), dtype=np.uint8)
    batch = Batch(["a/x", "a-b/y", "a/b/z", "ab"], {"image": images}, BatchMeta("t", 0))
    out = tmp_path / "pngs"
    manifest = json.loads(Load().save_to_filesystem(batch, out, format="png").read_text())
    assert manifest["hash"] == dataset_hash(None, out)


def test_json_records_whose_fields_disagree_are_one_sentence(tmp_path: Path) -> None:
    from blase_tui import Extract
    from blase_tui.modules.readers.common import DataError

    (tmp_path / "a.json").write_text(json.dumps([{"id": 1}, {"id": "A7"}]))
    with pytest.raises(DataError, match="disagree on the field `id`: a number in one, text in record 2"):
        list(Extract().load_json(tmp_path / "a.json"))


def test_a_crafted_run_json_code_field_is_refused_quietly(tmp_path: Path, blase) -> None:
    """`code` as a list, code parts leading out of the project: reindex takes the run without them (no
    traceback), and nothing outside the project is read as the run's code or changed."""
    root = make_project(tmp_path / "p", main_src=SEED_004, toml='[project]\nname = "p"\n')
    outside = tmp_path / "decoy.py"
    outside.write_text("SECRET = 1\n")
    run_id = "20261206-000000000-zzzzzz"
    folder = root / "runs" / run_id / "cutouts"
    folder.mkdir(parents=True)
    (root / "runs" / run_id / "run.json").write_text(json.dumps({
        "format": 1, "id": run_id, "status": "succeeded", "started": 1.0, "ended": 2.0, "steps": [
            {"step": "cutouts", "folder": "cutouts", "status": "succeeded", "started": 1.0, "ended": 2.0,
             "code": ["main.py"], "code_loaded": {"../decoy.py": "0" * 64}, "params": {}, "artifacts": [],
             "datasets": []}]}))
    proc = blase("runs", "reindex", cwd=root)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert show_json(blase, root, run_id)["steps"][0]["code"] == {}
    assert outside.read_text() == "SECRET = 1\n"
