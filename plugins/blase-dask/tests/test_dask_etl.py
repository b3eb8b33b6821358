"""blase-dask (issue 15): Extract -> Transform -> Load on a real LocalCluster writes what one process writes.

Batches are sized from one worker's share of the budget, so a step on 2 workers with a 2 MiB budget is compared
with the step in one process with 1 MiB: same shards byte for byte, same manifest hash, same recorded datasets
and params, the same bad records reported once, one progress bar. A function that fails names its batch; a
worker that dies is replaced and its batch written all the same.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("blase_dask", reason="blase-dask is not installed: pip install -e plugins/blase-dask")

pytestmark = pytest.mark.timeout(300)

MAIN = '''
import multiprocessing
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from blase_tui import Examine, Extract, Load, Transform, step


def affine(batch):
    table = batch.data
    return pa.table({f.name: pc.add(pc.multiply(table.column(f.name), 2.0), 1.0) if pa.types.is_floating(f.type)
                     else table.column(f.name) for f in table.schema})


def invert(batch):
    return {"image": 255 - batch["image"], "label": batch["label"]}


def explode(batch):
    if any(key.endswith("img_020.png") for key in batch.keys):
        raise ValueError("no pictures of 20 today")
    return invert(batch)


def die_once(batch):
    marker = Path("died")
    if multiprocessing.parent_process() is not None and not marker.exists():  # on a worker, the first time
        marker.write_text(str(os.getpid()))
        os._exit(1)
    return invert(batch)


@step
def tables(ctx):
    extractor, transformer, loader = Extract(), Transform(), Load()
    for batch in extractor.load_parquet("data/parquet"):
        loader.save_to_filesystem(transformer.apply_function(batch, affine), directory="out/tables")


@step
def inspect(ctx, where: str = "summary"):
    """Examine's statistics of the tables and the pictures."""
    for name, batches in (("tables", Extract().load_parquet("data/parquet")),
                          ("pictures", Extract(batch_size=7).load_images("data/images"))):
        examiner = Examine()
        for batch in batches:
            examiner.process_batch(batch)
        examiner.generate_summary(f"{where}/{name}", plots=False, show=False)


@step
def pictures(ctx, fn: str = "invert", on_error: str = "skip", look: bool = False):
    extractor, transformer, loader = Extract(batch_size=7, on_error=on_error), Transform(), Load()
    seen = 0
    for i, batch in enumerate(extractor.load_images("data/images")):
        if look and i % 2 == 0:  # the loop reads every other batch itself: those are read here, the others on workers
            seen += len(batch)
        loader.save_to_filesystem(transformer.apply_function(batch, globals()[fn]), directory="out/pictures")
    ctx.log_metric("seen", seen)
'''


def blase(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blase_tui", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240, stdin=subprocess.DEVNULL)


def _budget(project: Path, budget: str) -> None:
    (project / "blase.toml").write_text(f'[project]\nname = "etl"\nmemory_budget = "{budget}"\n')


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    root = tmp_path_factory.mktemp("dask-etl") / "proj"
    (root / "data" / "parquet").mkdir(parents=True)
    (root / "main.py").write_text(MAIN)
    rng = np.random.default_rng(0)
    for i in range(3):  # 3 files x 2 row groups of 6,000 rows: a batch is about 5,000 rows, so groups split
        table = pa.table({**{c: rng.standard_normal(12_000) for c in "abcd"},
                          "n": rng.integers(0, 50, 12_000), "kind": rng.choice(["x", "y", "z"], 12_000)})
        pq.write_table(table, root / "data" / "parquet" / f"part-{i}.parquet", row_group_size=6_000)
    for i in range(30):
        folder = root / "data" / "images" / "abc"[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / f"img_{i:03d}.png")
    (root / "data" / "images" / "b" / "img_007.png").write_bytes(b"not a png at all")
    good = (root / "data" / "images" / "a" / "img_015.png").read_bytes()
    (root / "data" / "images" / "a" / "img_015.png").write_bytes(good[: len(good) // 2])
    return root


def _copy(source: Path, tmp_path: Path) -> Path:
    project = tmp_path / "proj"
    shutil.copytree(source, project)
    return project


def _files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "_manifest.json"}


def _run(project: Path) -> dict:
    return json.loads(blase("runs", "show", "latest", "--json", cwd=project).stdout)


def _step_folder(project: Path, run: dict) -> Path:
    return project / "runs" / run["id"] / run["steps"][0]["folder"]


def _outcome(project: Path, step: str, output: str, *executor: str) -> dict:
    proc = blase("step", step, "--force", *executor, cwd=project)
    assert proc.returncode == 0, proc.stderr
    run = _run(project)
    folder = _step_folder(project, run)
    manifest = json.loads((project / output / "_manifest.json").read_text())
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    bad = folder / "bad_records.jsonl"
    return {"manifest": manifest, "files": _files(project / output), "step": run["steps"][0], "events": events,
            "bad": bad.read_text().splitlines() if bad.exists() else [], "stderr": proc.stderr}


def _same_records(alone: dict, spread: dict) -> None:
    """What the run's records say about the step: the same params and datasets (hashes, records)."""
    a, b = alone["step"], spread["step"]
    assert a["params"] == b["params"]
    assert [(d["role"], d["path"], d["hash"], d["records"]) for d in a["datasets"]] == \
           [(d["role"], d["path"], d["hash"], d["records"]) for d in b["datasets"]]


def test_a_parquet_pipeline_writes_the_same_shards_on_dask_workers(source: Path, tmp_path: Path) -> None:
    project = _copy(source, tmp_path)
    _budget(project, "1MiB")
    alone = _outcome(project, "tables", "out/tables")
    _budget(project, "2MiB")  # two workers with 1 MiB each: the same batches
    spread = _outcome(project, "tables", "out/tables", "--executor", "dask", "--workers", "2")
    assert "2 worker(s) on a LocalCluster, 1 MiB of the budget each" in spread["stderr"]
    assert spread["manifest"]["hash"] == alone["manifest"]["hash"]
    assert spread["manifest"]["records"] == 36_000
    assert len(spread["manifest"]["shards"]) == 12  # each 6,000-row group in two batches, as in one process
    assert spread["files"] == alone["files"] and len(spread["files"]) == 12
    assert not list((project / "out" / "tables").glob(".*partial*"))
    _same_records(alone, spread)
    # one progress bar over all the workers' rows, as in one process
    bars = {e["stage"] for e in spread["events"] if e["type"] == "progress"}
    assert bars == {"load_parquet data/parquet"}
    last = [e for e in spread["events"] if e["type"] == "progress"][-1]
    assert last["done"] == last["total"] == 36_000 and last["finished"]


def test_images_with_bad_records_are_written_alike_and_reported_once(source: Path, tmp_path: Path) -> None:
    project = _copy(source, tmp_path)
    _budget(project, "64MiB")
    alone = _outcome(project, "pictures", "out/pictures")
    spread = _outcome(project, "pictures", "out/pictures", "--executor", "dask", "--workers", "2")
    assert spread["manifest"]["hash"] == alone["manifest"]["hash"]
    assert spread["manifest"]["records"] == 28
    assert spread["files"] == alone["files"]
    # batches of 7 files, bad ones counted: a/img_015 in the first, b/img_007 in the second
    assert [s["records"] for s in spread["manifest"]["shards"]] == [6, 6, 7, 7, 2]
    assert spread["bad"] == alone["bad"] and len(spread["bad"]) == 2
    assert [json.loads(line)["record"] for line in spread["bad"]] == ["a/img_015.png", "b/img_007.png"]
    assert sum(e["type"] == "bad_record" for e in spread["events"]) == 2
    _same_records(alone, spread)


def test_batches_the_loop_reads_itself_are_read_in_the_step_and_written_alike(source: Path, tmp_path: Path) -> None:
    project = _copy(source, tmp_path)
    _budget(project, "64MiB")
    alone = _outcome(project, "pictures", "out/pictures")
    proc = blase("step", "pictures", "--force", "--set", "look=true", "--executor", "dask", "--workers", "2",
                 cwd=project)
    assert proc.returncode == 0, proc.stderr
    folder = _step_folder(project, _run(project))
    assert json.loads((project / "out" / "pictures" / "_manifest.json").read_text())["hash"] == \
        alone["manifest"]["hash"]
    assert _files(project / "out" / "pictures") == alone["files"]
    bad = (folder / "bad_records.jsonl").read_text().splitlines()
    assert bad == alone["bad"]  # once each, whichever side read the batch
    assert _run(project)["steps"][0]["metrics"]["seen"] == 6 + 7 + 2


def test_a_function_that_fails_stops_the_step_naming_its_batch(source: Path, tmp_path: Path) -> None:
    project = _copy(source, tmp_path)
    _budget(project, "64MiB")
    proc = blase("step", "pictures", "--set", "fn=explode", "--executor", "dask", "--workers", "2", cwd=project)
    assert proc.returncode == 1
    assert "the batch of images" in proc.stderr and "failed on a Dask worker: ValueError: no pictures of 20 today" \
        in proc.stderr
    assert "Traceback" not in proc.stderr
    run = _run(project)
    assert run["status"] == "failed"


def test_a_bad_record_with_on_error_fail_names_the_file(source: Path, tmp_path: Path) -> None:
    project = _copy(source, tmp_path)
    _budget(project, "64MiB")
    proc = blase("step", "pictures", "--set", "on_error=fail", "--executor", "dask", "--workers", "2", cwd=project)
    assert proc.returncode == 1
    assert "img_015.png: record a/img_015.png cannot be read" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_worker_that_dies_is_replaced_and_its_batch_written(source: Path, tmp_path: Path) -> None:
    project = _copy(source, tmp_path)
    _budget(project, "64MiB")
    alone = _outcome(project, "pictures", "out/pictures")
    proc = blase("step", "pictures", "--force", "--set", "fn=die_once", "--executor", "dask", "--workers", "2",
                 cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert (project / "died").exists(), "no worker died"
    manifest = json.loads((project / "out" / "pictures" / "_manifest.json").read_text())
    assert manifest["hash"] == alone["manifest"]["hash"]


def test_the_sample_projects_etl_is_the_same_on_dask_workers(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[3] / "sample_project"
    project = tmp_path / "sample"
    shutil.copytree(sample, project, ignore=shutil.ignore_patterns("runs", "data", ".blase", "__pycache__"))
    alone = _outcome(project, "etl", "data/interim/processed_images")
    spread = _outcome(project, "etl", "data/interim/processed_images", "--executor", "dask", "--workers", "2")
    assert spread["manifest"]["hash"] == alone["manifest"]["hash"] and spread["manifest"]["records"] == 1797
    assert spread["files"] == alone["files"]
    _same_records(alone, spread)


def test_examine_adds_up_the_workers_statistics(source: Path, tmp_path: Path) -> None:
    """Each worker examines its batches; the step merges them: counts, ranges, exact quantiles (up to 1,000
    distinct values) and value counts are the ones one process finds; means and spreads agree to float
    rounding; quantiles of many distinct values come from merged sketches (within the sketch's error)."""
    project = _copy(source, tmp_path)
    _budget(project, "1MiB")
    assert blase("step", "inspect", "--set", "where=alone", cwd=project).returncode == 0
    _budget(project, "2MiB")
    proc = blase("step", "inspect", "--set", "where=spread", "--executor", "dask", "--workers", "2", cwd=project)
    assert proc.returncode == 0, proc.stderr
    for name in ("tables", "pictures"):
        alone = json.loads((project / "alone" / name / "summary.json").read_text())
        spread = json.loads((project / "spread" / name / "summary.json").read_text())
        assert spread["records"] == alone["records"] == {"tables": 36_000, "pictures": 28}[name]
        assert spread["batches"] == alone["batches"]
        assert spread["columns"].keys() == alone["columns"].keys()
        for column, ours in spread["columns"].items():
            theirs = alone["columns"][column]
            channels = ours.get("channels")
            pairs = [(ours, theirs)] if channels is None else \
                [(channels[c], theirs["channels"][c]) for c in channels]
            for a, b in pairs:
                for key in ("count", "missing", "min", "max", "distinct", "top_values"):
                    assert a.get(key) == b.get(key), (name, column, key)
                if a["kind"] == "numeric":
                    assert a["mean"] == pytest.approx(b["mean"], rel=1e-9, abs=1e-12)
                    assert a["std"] == pytest.approx(b["std"], rel=1e-9)
                    if a["distinct"] is not None:  # exact quantiles
                        assert a["quantiles"] == b["quantiles"]
                    else:  # merged sketches: within the sketch's rank error (columns a-d are standard normal)
                        for q, v in a["quantiles"].items():
                            rank = 0.5 * (1 + math.erf(v / math.sqrt(2)))
                            assert rank == pytest.approx(0.5 * (1 + math.erf(b["quantiles"][q] / math.sqrt(2))),
                                                         abs=0.03), (column, q)
    assert json.loads((project / "spread" / "tables" / "summary.json").read_text())["columns"]["n"]["distinct"] == 50


def test_the_example_in_the_scaling_docs_runs_on_workers(tmp_path: Path) -> None:
    import re

    import pyarrow as pa
    import pyarrow.parquet as pq

    docs = Path(__file__).resolve().parents[3] / "docs" / "scaling.md"
    (example,) = [b for b in re.findall(r"```python\n(.*?)```", docs.read_text(), flags=re.S) if "@step" in b]
    project = tmp_path / "alerts"
    (project / "data" / "raw" / "alerts").mkdir(parents=True)
    (project / "main.py").write_text(example)
    _budget(project, "64MiB")
    rng = np.random.default_rng(1)
    for i in range(3):
        pq.write_table(pa.table({"candid": np.arange(i * 1000, (i + 1) * 1000), "mag": rng.uniform(15, 21, 1000)}),
                       project / "data" / "raw" / "alerts" / f"night-{i}.parquet", row_group_size=250)
    proc = blase("step", "etl", "--executor", "dask", "--workers", "2", cwd=project)
    assert proc.returncode == 0, proc.stderr
    out = pq.read_table(project / "data" / "interim" / "alerts")
    assert out.num_rows == 3000 and out["flux"].to_pylist()[0] == pytest.approx(
        10 ** (pq.read_table(project / "data" / "raw" / "alerts" / "night-0.parquet")["mag"][0].as_py() / -2.5))
    manifest = json.loads((project / "data" / "interim" / "alerts" / "_manifest.json").read_text())
    assert len(manifest["shards"]) == 12  # one per row group, renamed into place in order
