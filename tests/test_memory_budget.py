"""One memory budget: one default, one function from a budget and a record size to a batch size, used by every
reader, and the same batches from ``Extract()`` in a step and in a notebook of the same project."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import _env, make_project, run_blase
from PIL import Image

from blase_tui.core.config import DEFAULT_MEMORY_BUDGET, load_config
from blase_tui.labelling.config import LabellingConfig
from blase_tui.modules import budget, extract
from blase_tui.modules.extract import Extract
from blase_tui.modules.prepare import Prepare
from blase_tui.modules.train import Train

MEASURE = '''
"""The batch sizes Extract() gives with no budget given: the step and the notebook call this alike."""
import json
from pathlib import Path

from blase_tui import Extract


def measure(out):
    ex = Extract()
    sizes = {
        "budget": ex.memory_budget,
        "parquet": [len(b) for b in ex.load_parquet("data/table.parquet")],
        "csv": [len(b) for b in ex.load_csv("data/table.csv")],
    }
    Path(out).write_text(json.dumps(sizes))
'''

MAIN = '''
from blase_tui import main, step

import measure


@step
def sizes(ctx):
    measure.measure("in_step.json")


if __name__ == "__main__":
    main()
'''


def _table(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"a": rng.integers(0, 10**6, n), "b": rng.integers(0, 10**6, n), "c": rng.integers(0, 10**6, n)})


def _write_csv(table: pa.Table, path: Path) -> None:
    import pyarrow.csv as pcsv

    path.parent.mkdir(parents=True, exist_ok=True)
    pcsv.write_csv(table, path)


def test_extract_batches_the_same_in_a_step_and_in_a_notebook_of_the_project(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", main_src=MAIN, toml='[project]\nname = "budgeted"\nmemory_budget = "8MiB"\n')
    (project / "measure.py").write_text(MEASURE)
    table = _table(400_000)
    (project / "data").mkdir()
    pq.write_table(table, project / "data" / "table.parquet")
    _write_csv(table, project / "data" / "table.csv")

    run_blase("step", "sizes", cwd=project, check=True, timeout=180)
    # a notebook: a plain process in the project's folder, no step, no project script
    notebook = subprocess.run([sys.executable, "-c", "import measure; measure.measure('in_notebook.json')"],
                              cwd=project, env=_env(), capture_output=True, text=True, timeout=180)
    assert notebook.returncode == 0, notebook.stderr
    in_step = json.loads((project / "in_step.json").read_text())
    in_notebook = json.loads((project / "in_notebook.json").read_text())

    assert in_step["budget"] == in_notebook["budget"] == 8 * 2**20
    for reader in ("parquet", "csv"):
        assert sum(in_step[reader]) == 400_000
        assert len(in_step[reader]) > 2, f"{reader}: 8 MiB of budget must take several batches"
        assert in_notebook[reader] == in_step[reader], reader
    # and not the default's batches: outside any project, the one default applies
    outside = subprocess.run([sys.executable, "-c", "from blase_tui import Extract; print(Extract().memory_budget)"],
                             cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60)
    assert outside.returncode == 0, outside.stderr
    assert int(outside.stdout) == DEFAULT_MEMORY_BUDGET


def test_outside_a_step_the_working_directorys_project_sets_the_budget(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Extract().memory_budget == DEFAULT_MEMORY_BUDGET
    assert Prepare().memory_budget == Train().memory_budget == DEFAULT_MEMORY_BUDGET
    project = make_project(tmp_path / "p", toml='[project]\nname = "p"\nmemory_budget = "24MiB"\n')
    (project / "sub").mkdir()
    monkeypatch.chdir(project / "sub")  # found walking up, as the blase command finds it
    assert Extract().memory_budget == Prepare().memory_budget == Train().memory_budget == 24 * 2**20
    assert Extract(memory_budget="1MiB").memory_budget == 2**20, "a budget given to the module wins"
    # a project without memory_budget gets the one default, as its steps do
    (project / "blase.toml").write_text('[project]\nname = "p"\n')
    assert Extract().memory_budget == load_config(project).memory_budget == DEFAULT_MEMORY_BUDGET
    assert LabellingConfig(root=project, key="k", keys={}, targets={}).memory_budget == DEFAULT_MEMORY_BUDGET


def test_records_per_batch_shares_and_clamps() -> None:
    mib = 2**20
    assert budget.records_per_batch(64, 256 * mib) == 256 * mib // 4 // 64, "a batch takes a quarter"
    assert budget.records_per_batch(64, 128 * mib) * 2 == budget.records_per_batch(64, 256 * mib)
    assert budget.records_per_batch(10 * mib, mib) == 1, "never less than one record"
    assert budget.records_per_batch(0, 4000) == 1000, "a record takes at least a byte"
    # what Monitor needs: 8 bytes a value, (width + 4) values, held 4 times, within 1,000 and 1,000,000 rows
    per_record = 8 * (10 + 4) * 4
    assert budget.records_per_batch(per_record, mib, min_rows=1000, max_rows=1_000_000) == 1000
    assert budget.records_per_batch(per_record, 256 * mib, min_rows=1000, max_rows=1_000_000) == 149796
    assert budget.records_per_batch(8, 64 * 2**30, min_rows=1000, max_rows=1_000_000) == 1_000_000
    assert budget.per_worker(512 * mib, 4) == 128 * mib
    assert budget.per_worker(512 * mib, 0) == budget.per_worker(512 * mib, None) == 512 * mib
    assert budget.share_of(512 * mib, budget.JOIN_SHARE) == 256 * mib
    assert budget.share_of(512 * mib, budget.WHOLE_SHARE) == 512 * mib


def _files(root: Path) -> dict[str, Path]:
    """One input of each reader, each many records of one size."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    table = _table(20_000)
    pq.write_table(table, root / "t.parquet")
    _write_csv(table, root / "t.csv")
    np.save(root / "x.npy", rng.standard_normal((20_000, 32)).astype(np.float32))
    with (root / "r.jsonl").open("w") as fh:
        for i in range(3000):
            fh.write(json.dumps({"id": i, "v": [float(x) for x in rng.standard_normal(8)]}) + "\n")
    (root / "r.json").write_text(json.dumps([{"id": i, "v": float(i)} for i in range(3000)]))
    images = root / "imgs" / "cat"
    images.mkdir(parents=True)
    for i in range(200):
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(images / f"{i:03d}.png")
    clips = root / "wav" / "dog"
    clips.mkdir(parents=True)
    for i in range(200):
        with wave.open(str(clips / f"{i:03d}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(rng.integers(-1000, 1000, 400, dtype=np.int16).tobytes())
    return {"parquet": root / "t.parquet", "csv": root / "t.csv", "npy": root / "x.npy", "jsonl": root / "r.jsonl",
            "json": root / "r.json", "images": root / "imgs", "audio": root / "wav"}


def _read(ex: Extract, reader: str, path: Path) -> list[int]:
    return [len(b) for b in getattr(ex, f"load_{reader}")(path)]


def test_every_reader_sizes_its_batches_with_the_one_function(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    files = _files(tmp_path / "in")
    monkeypatch.chdir(tmp_path)
    calls: list[tuple[float, int]] = []
    real = budget.records_per_batch

    def spy(bytes_per_record: float, memory_budget: int, **kw: int) -> int:
        calls.append((bytes_per_record, memory_budget))
        return real(bytes_per_record, memory_budget, **kw)

    monkeypatch.setattr(extract, "records_per_batch", spy)
    budgets = {"parquet": 480_000, "csv": 96_000, "npy": 512_000, "jsonl": 40_000, "json": 40_000,
               "images": 40_000, "audio": 40_000}
    for reader, path in files.items():
        calls.clear()
        full = _read(Extract(memory_budget=budgets[reader]), reader, path)
        assert calls, f"load_{reader} did not size its batches with records_per_batch"
        per_record, used = calls[-1]
        assert used == budgets[reader]
        want = real(per_record, budgets[reader])
        # the per-record readers (JSON, images, audio) measure a first batch of a few records, then size the rest
        assert len(full) > 3 and set(full[1:-1]) == {want}, (reader, full[:4], want)
        half = _read(Extract(memory_budget=budgets[reader] // 2), reader, path)
        assert set(half[1:-1]) == {real(calls[-1][0], budgets[reader] // 2)} and len(half) > len(full), reader
    # csv, parquet and npy: half the budget, half the batch (their records are of one size, measured exactly)
    monkeypatch.undo()
    for reader, bytes_per_record in (("csv", 24), ("npy", 128)):
        b = budgets[reader]
        assert _read(Extract(memory_budget=b), reader, files[reader])[0] == b // 4 // bytes_per_record
    for reader in ("csv", "parquet", "npy"):
        b = budgets[reader]
        whole, half = _read(Extract(memory_budget=b), reader, files[reader]), \
            _read(Extract(memory_budget=b // 2), reader, files[reader])
        assert abs(2 * half[0] - whole[0]) <= 1, (reader, whole[0], half[0])

