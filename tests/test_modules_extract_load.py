"""Extract, Transform and Load on real files: every reader, bad records, budgets, order, atomic writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import wave
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import _env, make_project, show_json, wait_for
from PIL import Image

from blase_tui.errors import BlaseError
from blase_tui.modules.extract import DataError, Extract
from blase_tui.modules.load import Load, read_manifest
from blase_tui.modules.transform import Transform


def _images(root: Path, n: int = 12, size: int = 16) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = []
    for i in range(n):
        label = "cat" if i % 2 else "dog"
        array = rng.integers(0, 255, (size, size), dtype=np.uint8)
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(root / label / f"img_{i:03d}.png")
        arrays.append(array)
    return arrays


def test_load_images_keys_labels_and_budget(tmp_path: Path) -> None:
    arrays = _images(tmp_path / "imgs", n=12, size=16)
    # 16*16 bytes (+ overhead) per image, a quarter of a 4 KiB budget per batch: a few images per batch
    batches = list(Extract(memory_budget=4096).load_images(tmp_path / "imgs"))
    assert len(batches) > 2 and all(len(b) <= 4 for b in batches)
    keys = [k for b in batches for k in b.keys]
    assert keys == sorted(keys) and len(keys) == 12
    assert keys[0] == "cat/img_001.png"
    first = batches[0]
    assert first["image"].shape[1:] == (16, 16) and first["image"].dtype == np.uint8
    assert np.array_equal(first["image"][0], arrays[1])
    assert list(first["label"][:2]) == ["cat", "cat"]
    assert first.meta.total_records == 12
    one = list(Extract(batch_size=5).load_images(tmp_path / "imgs"))
    assert [len(b) for b in one] == [5, 5, 2]


def test_corrupt_png_is_skipped_and_listed_or_fails_with_its_name(tmp_path: Path) -> None:
    _images(tmp_path / "imgs", n=4)
    (tmp_path / "imgs" / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    ex = Extract()
    keys = [k for b in ex.load_images(tmp_path / "imgs") for k in b.keys]
    assert "cat/broken.png" not in keys and len(keys) == 4
    assert [b.record for b in ex.bad_records] == ["cat/broken.png"]
    assert "not a readable image" in ex.bad_records[0].reason
    with pytest.raises(DataError, match=r"broken\.png: record cat/broken\.png cannot be read .*on_error=\"skip\""):
        list(Extract(on_error="fail").load_images(tmp_path / "imgs"))


def test_empty_and_missing_folders_say_so(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(BlaseError, match="no image files .* in .*empty; .*allow_empty=True"):
        list(Extract().load_images(tmp_path / "empty"))
    assert list(Extract().load_images(tmp_path / "empty", allow_empty=True)) == []
    with pytest.raises(BlaseError, match="nowhere does not exist"):
        list(Extract().load_images(tmp_path / "nowhere"))
    with pytest.raises(BlaseError, match="does not exist"):
        list(Extract().load_parquet(tmp_path / "nowhere.parquet"))


def test_malformed_csv_row(tmp_path: Path) -> None:
    csv = tmp_path / "rows.csv"
    csv.write_text("a,b\n1,2\n3,4,5\n6,7\n8,9\n")
    ex = Extract()
    batches = list(ex.load_csv(csv))
    keys = [k for b in batches for k in b.keys]
    assert keys == ["rows.csv:0", "rows.csv:2", "rows.csv:3"], "keys stay the row numbers of the file"
    table = pa.concat_tables([b.data for b in batches])
    assert table.column("a").to_pylist() == [1, 6, 8]
    assert ex.bad_records[0].record == "line 3" and "expected 2 fields, found 3" in ex.bad_records[0].reason
    with pytest.raises(DataError, match=r"rows\.csv: record line 3 cannot be read"):
        list(Extract(on_error="fail").load_csv(csv))
    (tmp_path / "typed.csv").write_text("a\n1\nx\n")
    with pytest.raises(DataError, match="typed.csv: cannot parse"):
        list(Extract().load_csv(tmp_path / "typed.csv", column_types={"a": pa.int64()}))


def test_parquet_columns_filters_and_totals(tmp_path: Path) -> None:
    n = 50_000
    table = pa.table({"id": np.arange(n), "mag": np.linspace(15, 22, n), "x": np.zeros(n)})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=5000)
    ex = Extract(memory_budget=256 * 1024)
    batches = list(ex.load_parquet(tmp_path / "a.parquet", columns=["id", "mag"]))
    assert sum(len(b) for b in batches) == n and len(batches) > 5
    assert batches[0].columns == ["id", "mag"] and batches[0].meta.total_records == n
    assert batches[1].keys[0] == f"a.parquet:{len(batches[0])}"
    bright = list(ex.load_parquet(tmp_path, filters=[("mag", ">", 21.0)], key_column="id"))
    ids = [int(k) for b in bright for k in b.keys]
    expected = np.flatnonzero(np.linspace(15, 22, n) > 21.0)
    assert ids == expected.tolist()
    # a filter on a column that is not read, and keys that stay the file's row numbers
    only_id = list(ex.load_parquet(tmp_path / "a.parquet", columns=["id"], filters=[("mag", ">", 21.0)]))
    assert only_id[0].columns == ["id"]
    assert [k for b in only_id for k in b.keys] == [f"a.parquet:{i}" for i in expected]
    table2 = pa.table({"band": ["g", "r", "g and x"], "v": [1, 2, 3]})
    pq.write_table(table2, tmp_path / "b.parquet")
    picked = list(ex.load_parquet(tmp_path / "b.parquet", filters=[("band", "==", "g and x")]))
    assert [k for b in picked for k in b.keys] == ["b.parquet:2"]


def test_npy_is_memory_mapped(tmp_path: Path) -> None:
    array = np.arange(10_000 * 32, dtype=np.float32).reshape(10_000, 32)
    np.save(tmp_path / "x.npy", array)
    batches = list(Extract(batch_size=3000).load_npy(tmp_path / "x.npy"))
    assert [len(b) for b in batches] == [3000, 3000, 3000, 1000]
    assert isinstance(batches[0]["array"], np.memmap)
    assert np.array_equal(np.concatenate([b["array"] for b in batches]), array)
    (tmp_path / "bad.npy").write_bytes(b"nonsense")
    with pytest.raises(DataError, match="bad.npy: not a readable .npy file"):
        list(Extract().load_npy(tmp_path / "bad.npy"))


def test_jsonl_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_text('{"candid": 11, "mag": 19.1}\n{oops\n[1, 2]\n{"candid": 12, "mag": 20.2}\n')
    ex = Extract()
    batches = list(ex.load_jsonl(path, key_column="candid"))
    assert [k for b in batches for k in b.keys] == ["11", "12"]
    assert [b.record for b in ex.bad_records] == ["line 2", "line 3"]


def test_json_array_is_read_in_batches_with_keys_floats_and_bad_elements(tmp_path: Path) -> None:
    records = [{"id": i, "mag": i + 0.25, **({"note": "late key"} if i == 7 else {})} for i in range(10)]
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps([*records[:5], [1, 2], *records[5:], "text"], indent=2))
    ex = Extract()
    batches = list(ex.load_json(path, batch_size=4))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert [k for b in batches for k in b.keys] == [f"alerts.json:{i}" for i in (0, 1, 2, 3, 4, 6, 7, 8, 9, 10)]
    table = pa.concat_tables([b.data for b in batches], promote_options="default")
    assert table.column("id").to_pylist() == list(range(10))
    assert table.column("mag").type == pa.float64() and table.column("mag").to_pylist()[3] == 3.25
    assert table.column("note").to_pylist()[7] == "late key", "a key the batch's first record lacks is kept"
    assert [(b.record, b.reason) for b in ex.bad_records] == [
        ("element 5", "a JSON array, not an object"), ("element 11", "a JSON string, not an object")]
    assert batches[1].bad_records[0].record == "element 5"
    by_id = list(Extract().load_json(tmp_path, key_column="id"))
    assert [k for b in by_id for k in b.keys] == [str(i) for i in range(10)]
    assert all(type(v) is float for v in table.column("mag").to_pylist()), "never ijson's Decimal"


def test_json_object_is_one_record_keyed_by_its_path(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "a.json").write_text('\ufeff{"name": "a", "score": 0.5, "tags": ["x"]}\n')
    (tmp_path / "runs" / "b.json").write_text('{"name": "b", "score": 2}')
    (tmp_path / "runs" / "list.json").write_text('[{"name": "c", "score": 1.5}]')
    ex = Extract()
    batches = list(ex.load_json(tmp_path / "runs"))
    assert [k for b in batches for k in b.keys] == ["a.json", "b.json", "list.json:0"]
    assert batches[0].data.to_pylist()[0] == {"name": "a", "score": 0.5, "tags": ["x"]}
    assert not ex.bad_records
    (tmp_path / "n.json").write_text("42")
    ex = Extract()
    assert sum(len(b) for b in ex.load_json(tmp_path / "n.json")) == 0
    assert "not a JSON array of objects nor an object" in ex.bad_records[0].reason
    (tmp_path / "lines.json").write_text('{"a": 1}\n{"a": 2}\n')
    with pytest.raises(DataError, match=r"lines\.json holds more than one JSON value .*load_jsonl"):
        list(Extract().load_json(tmp_path / "lines.json"))


def test_malformed_json_is_a_bad_record_naming_where_or_fails(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text('[{"a": 1}, {"a": 2},\n {"a": 3} oops {"a": 4}]')
    ex = Extract()
    keys = [k for b in ex.load_json(path) for k in b.keys]
    assert keys == ["cut.json:0", "cut.json:1", "cut.json:2"]
    (bad,) = ex.bad_records
    assert bad.record == "element 3" and "not valid JSON from here on" in bad.reason and "oops" in bad.reason
    with pytest.raises(DataError, match=r"cut\.json: record element 3 cannot be read \(not valid JSON"):
        list(Extract(on_error="fail").load_json(path))
    (tmp_path / "truncated.json").write_text('[{"a": 1}, {"a": ')
    ex = Extract()
    assert sum(len(b) for b in ex.load_json(tmp_path / "truncated.json")) == 1
    assert ex.bad_records[0].record == "element 1" and "premature EOF" in ex.bad_records[0].reason


def test_json_array_is_streamed(tmp_path: Path) -> None:
    element = '{"id": %d, "x": %d.5, "s": "' + "abcdefghij" * 10 + '"}'
    path = tmp_path / "big.json"
    path.write_text("[" + ",".join(element % (i, i) for i in range(20_000)) + "]")  # 2.7 MB
    list(Extract().load_json(path.parent, allow_empty=True, batch_size=10))  # imports out of the measure
    tracemalloc.start()
    try:
        total = sum(len(b) for b in Extract(batch_size=200).load_json(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == 20_000
    # the whole file parsed at once would take several times its size in Python objects
    assert peak < path.stat().st_size / 2, f"{peak} bytes at the peak for a {path.stat().st_size}-byte file"
    # batches come before the parser reaches the end: a file cut short fails only after them
    path.write_text(path.read_text()[:-200])
    batches = Extract(batch_size=200, on_error="fail").load_json(path)
    assert len(next(batches)) == 200
    with pytest.raises(DataError, match="premature EOF"):
        list(batches)


def test_jsonl_reader_given_a_json_array_says_to_use_load_json(tmp_path: Path) -> None:
    one_line = tmp_path / "b.json"
    one_line.write_text('[{"a": 1}, {"a": 2}]\n')
    pretty = tmp_path / "pretty.jsonl"
    pretty.write_text(json.dumps([{"a": 1}, {"a": 2}], indent=2))
    for path in (one_line, pretty):
        with pytest.raises(DataError, match=rf"{path.name} holds one JSON array, not JSON lines .*load_json"):
            list(Extract().load_jsonl(path))
    # a JSON-lines file whose first line happens to be an array reads as before
    stray = tmp_path / "stray.jsonl"
    stray.write_text('[1, 2]\n{"a": 1}\n{"b": 2}\n')
    ex = Extract()
    (batch,) = list(ex.load_jsonl(stray))
    assert batch.keys == ["stray.jsonl:2", "stray.jsonl:3"] and batch.data.to_pylist() == [
        {"a": 1, "b": None}, {"a": None, "b": 2}]
    assert [b.record for b in ex.bad_records] == ["line 1"]


def test_a_file_of_only_bad_records_is_said_on_the_console(tmp_path: Path, blase, capsys) -> None:
    src = """
from blase_tui import step
from blase_tui.modules.extract import Extract

@step
def etl(ctx):
    extract = Extract()
    for path in ("data/rows.jsonl", "data/good.csv", "data/semicolons.csv"):
        reader = extract.load_jsonl if path.endswith(".jsonl") else extract.load_csv
        print(path, sum(len(b) for b in reader(path)))
"""
    project = make_project(tmp_path / "p", main_src=src)
    (project / "data").mkdir()
    (project / "data" / "rows.jsonl").write_text("[1, 2]\n[3, 4]\n[5]\n")
    (project / "data" / "good.csv").write_text("a,b\n1,2\n3\n")
    (project / "data" / "semicolons.csv").write_text("a,b,c\n1;2;3\n4;5;6\n")
    proc = blase("step", "etl", cwd=project)
    assert proc.returncode == 0, proc.stderr
    run_id = show_json(blase, project, "latest")["id"]
    lines = [line for line in proc.stderr.splitlines() if "were bad" in line or "was bad" in line]
    assert len(lines) == 2, proc.stderr
    assert lines[0].endswith(
        "WARNING load_jsonl data/rows.jsonl: all 3 records were bad (first: line 1 — a JSON list, not an object);"
        f" see runs/{run_id}/etl/bad_records.jsonl")
    assert "load_csv data/semicolons.csv: all 2 records were bad (first: line 2 — expected 3 fields" in lines[1]
    # outside any step: on standard error all the same
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1\n")
    assert list(Extract().load_csv(bad)) == []
    assert capsys.readouterr().err.startswith(f"blase: load_csv {bad}: its only record was bad (line 2 — expected")


def _wav(path: Path, samples: np.ndarray, rate: int = 8000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())


def test_wav_audio(tmp_path: Path) -> None:
    _wav(tmp_path / "a.wav", np.array([0, 16384, -16384, 32767]))
    _wav(tmp_path / "b.wav", np.array([0, 100, 200, 300]))
    (tmp_path / "c.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    ex = Extract()
    (batch,) = list(ex.load_audio(tmp_path))
    assert batch.keys == ["a.wav", "b.wav"] and batch["audio"].shape == (2, 4)
    assert batch["audio"][0].tolist() == pytest.approx([0, 0.5, -0.5, 32767 / 32768])
    assert batch["sample_rate"].tolist() == [8000, 8000]
    assert [b.record for b in ex.bad_records] == ["c.wav"]


def _slow_double(value: np.ndarray) -> np.ndarray:
    time.sleep(0.02 * float(value[0] % 3))  # finish out of order on purpose
    return value * 2


def _halve(batch):  # noqa: ANN001, ANN202
    return {"array": batch["array"] / 2}


def test_parallel_transform_keeps_order(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.arange(60, dtype=np.float64).reshape(30, 2))
    (batch,) = list(Extract().load_npy(tmp_path / "x.npy"))
    with Transform(workers=3) as t:
        doubled = t.apply_function(batch, _slow_double, column="array")
        halved = t.apply_function(batch, _halve)
    serial = Transform().apply_function(batch, _slow_double, column="array")
    assert doubled.keys == batch.keys == halved.keys
    assert np.array_equal(doubled["array"], serial["array"])
    assert np.array_equal(halved["array"], np.asarray(batch["array"]) / 2)
    assert doubled.meta.lineage == ("load_npy", "_slow_double")


def test_load_writes_shards_with_a_manifest_and_replaces_old_output(tmp_path: Path) -> None:
    _images(tmp_path / "imgs", n=10)
    out = tmp_path / "out"
    for _ in range(2):  # the second Load replaces what the first wrote
        loader = Load()
        for batch in Extract(batch_size=4).load_images(tmp_path / "imgs"):
            loader.save_to_filesystem(batch, out)
    manifest = read_manifest(out)
    assert manifest["records"] == 10 and len(manifest["shards"]) == 3
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["_manifest.json"] + [f"part-0000{i}.{c}.npy" for i in range(3)
                                                 for c in ("image", "label", "key")])
    keys = np.concatenate([np.load(out / f"part-0000{i}.key.npy") for i in range(3)])
    assert keys[0] == "cat/img_001.png" and len(keys) == 10
    loader = Load()
    for batch in Extract(batch_size=4).load_images(tmp_path / "imgs"):
        loader.save_to_filesystem(batch, tmp_path / "png", format="png")
        loader.save_to_filesystem(batch, tmp_path / "pq", format="parquet")
    assert len(list((tmp_path / "png").rglob("*.png"))) == 10
    assert pq.read_table(tmp_path / "pq" / "part-00000.parquet").column_names[0] == "key"


KILLED_WRITER = """
import sys, numpy as np
from pathlib import Path
from blase_tui.modules.batch import Batch, BatchMeta
from blase_tui.modules.load import Load
out = Path(sys.argv[1])
loader = Load()
big = np.ones((4, 2048, 2048), dtype=np.float32)   # 64 MiB per shard: writing takes a while
i = 0
while True:
    loader.save_to_filesystem(Batch([f"k{i}-{j}" for j in range(4)], {"x": big * i}, BatchMeta("t", i)), out)
    Path(out.parent, "shards").write_text(str(i))
    i += 1
"""


def test_a_killed_writer_leaves_no_file_that_looks_whole(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(KILLED_WRITER)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(script), str(out)], env=_env())
    try:
        wait_for(lambda: (tmp_path / "shards").exists(), timeout=120, what="a first complete shard")
        wait_for(lambda: any(p.name.startswith(".tmp-") for p in out.iterdir()), timeout=60,
                 what="a shard being written")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    manifest = read_manifest(out)
    for shard in manifest["shards"]:
        for f in shard["files"]:
            assert np.load(out / f["name"], mmap_mode="r").shape == tuple(f["shape"])
    visible = [p for p in out.iterdir() if not p.name.startswith(".")]
    for p in visible:
        if p.suffix == ".npy":
            np.load(p, mmap_mode="r")  # every visible shard is whole
    assert any(p.name.startswith(".tmp-") for p in out.iterdir()), "the half-written shard kept its temp name"
    # readers ignore the half file
    assert sum(len(b) for b in Extract().load_npy(out)) == sum(
        s["records"] for s in manifest["shards"]) * 2  # x and key columns are both .npy files


def test_modules_inside_a_step_record_datasets_and_bad_records(tmp_path: Path, blase) -> None:
    src = '''
from blase_tui import step
from blase_tui.modules.extract import Extract
from blase_tui.modules.load import Load

@step
def etl(ctx):
    loader = Load()
    for batch in Extract().load_images("data/raw"):
        loader.save_to_filesystem(batch, "data/out")
'''
    project = make_project(tmp_path / "p", main_src=src)
    _images(project / "data" / "raw", n=6)
    (project / "data" / "raw" / "dog" / "bad.png").write_bytes(b"junk")
    proc = blase("step", "etl", cwd=project)
    assert proc.returncode == 0, proc.stderr
    step = show_json(blase, project, "latest")["steps"][0]
    roles = {(d["role"], d["path"]) for d in step["datasets"]}
    assert roles == {("input", "data/raw"), ("output", "data/out")}
    out = next(d for d in step["datasets"] if d["role"] == "output")
    assert out["records"] == 6 and out["hash"] == read_manifest(project / "data" / "out")["hash"]
    folder = project / "runs" / show_json(blase, project, "latest")["id"] / "etl"
    bad = [json.loads(line) for line in (folder / "bad_records.jsonl").read_text().splitlines()]
    assert [b["record"] for b in bad] == ["dog/bad.png"]
