"""Examine, Clean and Prepare on real data, and the seed's data steps running unchanged."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO, make_project, show_json
from PIL import Image

from blase_tui.errors import BlaseError
from blase_tui.modules.batch import Batch, BatchMeta
from blase_tui.modules.examine import Examine
from blase_tui.modules.extract import Extract
from blase_tui.modules.prepare import Prepare, split_of


def _table_source(tmp_path: Path, n: int = 5000) -> Path:
    rng = np.random.default_rng(1)
    x = rng.normal(10, 3, n)
    x[:50] = np.nan
    x[50:120] = 500.0
    pq.write_table(pa.table({
        "candid": np.arange(1000, 1000 + n), "x": x, "band": rng.choice(["g", "r", "i"], n),
        "label": rng.integers(0, 3, n), "const": np.ones(n),
    }), tmp_path / "alerts.parquet", row_group_size=700)
    return tmp_path / "alerts.parquet"


def test_examine_streams_exact_moments_and_suggests(tmp_path: Path) -> None:
    path = _table_source(tmp_path)
    examiner = Examine()
    batches = list(Extract(memory_budget=64 * 1024).load_parquet(path))
    assert len(batches) > 3
    for b in batches:
        examiner.process_batch(b)
    summary = examiner.generate_summary(tmp_path / "out", show=False)
    x = pq.read_table(path).column("x").to_numpy()
    s = summary["columns"]["x"]
    assert s["count"] == 4950 and s["missing"] == 50
    assert s["mean"] == pytest.approx(np.nanmean(x)) and s["std"] == pytest.approx(np.nanstd(x))
    assert s["quantiles"]["p50"] == pytest.approx(np.nanmedian(x), rel=0.02)
    assert sum(s["histogram"]["counts"]) == pytest.approx(4950, abs=5)
    assert summary["columns"]["band"]["top_values"].keys() == {"g", "r", "i"}
    kinds = {(g["column"], g["kind"]) for g in summary["suggestions"]}
    assert {("x", "imputation"), ("x", "outliers"), ("label", "label_candidate"), ("const", "constant"),
            ("candid", "feature_type")} <= kinds
    assert next(g for g in summary["suggestions"] if g["column"] == "candid")["text"] == "identifier"
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["records"] == 5000
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert "hist_x.png" in pngs and "values_band.png" in pngs
    assert Image.open(tmp_path / "out" / "hist_x.png").size[0] > 300


def test_split_is_deterministic_and_survives_appending(tmp_path: Path) -> None:
    keys = [f"img_{i}.png" for i in range(3000)]
    first = {k: split_of(k, 42, (0.7, 0.2, 0.1)) for k in keys}
    grown = {k: split_of(k, 42, (0.7, 0.2, 0.1)) for k in keys + [f"new_{i}.png" for i in range(3000)]}
    assert all(grown[k] == first[k] for k in keys)
    share = sum(v == "train" for v in first.values()) / len(first)
    assert 0.66 < share < 0.74
    assert {k: split_of(k, 7, (0.7, 0.2, 0.1)) for k in keys} != first, "the seed matters"


def _batches(keys: list[str], **columns: np.ndarray) -> list[Batch]:
    return [Batch(keys[i:i + 10], {c: v[i:i + 10] for c, v in columns.items()}, BatchMeta("t", i // 10, None, len(keys)))
            for i in range(0, len(keys), 10)]


def test_prepare_joins_by_key_and_reports_missing_keys(tmp_path: Path) -> None:
    keys = [f"k{i:03d}" for i in range(100)]
    features = _batches(keys, x=np.arange(100, dtype=np.float64))
    # targets arrive in another order and lack five keys
    order = [k for k in reversed(keys) if k not in {"k000", "k010", "k020", "k030", "k040"}]
    targets = _batches(order, y=np.array([int(k[1:]) % 2 for k in order]))
    prep = Prepare()
    prep.register_source("features", iter(features))
    prep.register_source("targets", iter(targets))
    prep.set_split(0.6, 0.2, 0.2, seed=3)
    report = prep.convert(output_format="parquet", output_dir=tmp_path / "prep")
    assert sum(report["counts"].values()) == 95
    assert report["missing_keys"]["targets"]["count"] == 5
    assert report["missing_keys"]["targets"]["examples"] == ["k000", "k010", "k020", "k030", "k040"]
    table = pa.concat_tables([pq.read_table(p) for s in ("train", "val", "test")
                              for p in sorted((tmp_path / "prep" / s).glob("*.parquet"))])
    rows = dict(zip(table.column("key").to_pylist(), zip(table.column("x").to_pylist(), table.column("y").to_pylist(),
                                                          strict=True), strict=True))
    assert rows["k007"] == (7.0, 1) and rows["k008"] == (8.0, 0)
    for split in ("train", "val", "test"):
        got = pq.read_table(tmp_path / "prep" / split).column("key").to_pylist()
        assert all(split_of(k, 3, (0.6, 0.2, 0.2)) == split for k in got)
    norm = json.loads((tmp_path / "prep" / "_normalization.json").read_text())
    train_x = [x for k, (x, _) in rows.items() if split_of(k, 3, (0.6, 0.2, 0.2)) == "train"]
    assert norm["x"]["mean"][0] == pytest.approx(np.mean(train_x))


def test_group_keeps_a_group_in_one_split(tmp_path: Path) -> None:
    keys = [f"r{i}" for i in range(200)]
    patients = np.array([f"p{i // 5}" for i in range(200)])
    prep = Prepare()
    prep.register_source("rows", iter(_batches(keys, patient=patients, v=np.arange(200.0))))
    prep.set_split(0.5, 0.25, 0.25, seed=1, group="patient")
    prep.convert(output_format="parquet", output_dir=tmp_path / "g")
    where = {}
    for split in ("train", "val", "test"):
        for p in pq.read_table(tmp_path / "g" / split).column("patient").to_pylist():
            where.setdefault(p, set()).add(split)
    assert len(where) == 40 and all(len(s) == 1 for s in where.values())


def test_rolling_windows(tmp_path: Path) -> None:
    n = 103
    keys = [f"t{i:03d}" for i in range(n)]
    prep = Prepare()
    prep.register_source("series", iter(_batches(keys, t=np.arange(n), v=np.arange(n, dtype=np.float64) * 10,
                                                  target=np.arange(n) * 100)))
    prep.set_windows(window=5, horizon=2, stride=3, features=["v"], target="target", order_by="t")
    prep.set_split(0.6, 0.2, 0.2)
    report = prep.convert(output_format="npy", output_dir=tmp_path / "w")
    expected_windows = len(range(0, n - 7 + 1, 3))
    assert sum(report["counts"].values()) == expected_windows
    x = np.concatenate([np.load(p) for s in ("train", "val", "test") for p in sorted((tmp_path / "w" / s).glob("*.x.npy"))])
    y = np.concatenate([np.load(p) for s in ("train", "val", "test") for p in sorted((tmp_path / "w" / s).glob("*.y.npy"))])
    assert x.shape == (expected_windows, 5, 1)
    assert x[1, :, 0].tolist() == [30.0, 40.0, 50.0, 60.0, 70.0], "window 2 starts at record 3, crossing batches"
    assert y[1] == (3 + 5 + 2 - 1) * 100
    train_keys = np.load(next((tmp_path / "w" / "train").glob("*.key.npy")))
    test_keys = np.concatenate([np.load(p) for p in (tmp_path / "w" / "test").glob("*.key.npy")])
    assert max(train_keys) < min(test_keys), "time order: no future in training"
    bad = Prepare()
    shuffled = keys[::-1]
    bad.register_source("s", iter(_batches(shuffled, t=np.arange(n)[::-1].copy(), v=np.zeros(n), target=np.zeros(n))))
    bad.set_windows(window=3, order_by="t", target="target", features=["v"])
    with pytest.raises(BlaseError, match="sorted by 't'"):
        bad.convert(output_dir=tmp_path / "bad")


def test_tfrecord_output_reads_back(tmp_path: Path) -> None:
    keys = [f"k{i}" for i in range(30)]
    prep = Prepare()
    prep.register_source("s", iter(_batches(keys, image=np.arange(30 * 4, dtype=np.float32).reshape(30, 2, 2),
                                            label=np.arange(30) % 3)))
    prep.set_split(1.0, 0.0, 0.0)
    prep.convert(output_format="tfrecord", output_dir=tmp_path / "tf")
    # read back with an independent reader, in its own process: its protobuf classes clash with TensorFlow's
    reader = (
        "import json, sys\nfrom tfrecord.reader import tfrecord_loader\n"
        "rows = [{k: (v.decode() if isinstance(v, bytes) else v.tolist()) for k, v in r.items()}"
        " for r in tfrecord_loader(sys.argv[1], None)]\nprint(json.dumps(rows))\n"
    )
    proc = subprocess.run([sys.executable, "-c", reader, str(tmp_path / "tf" / "train" / "data.tfrecord")],
                          capture_output=True, text=True, check=True)
    records = json.loads(proc.stdout)
    assert [r["key"] for r in records] == keys
    assert records[7]["image"] == [28.0, 29.0, 30.0, 31.0] and records[7]["image_shape"] == [2, 2]
    assert records[7]["label"] == [1]


def _seed_functions() -> str:
    text = (REPO / "tests" / "data" / "seed_000_api_vision.txt").read_text()  # a copy of shared/seeds/000_*
    code = text[text.index("# main.py"):text.index("def train():")]
    code = code.replace("from blase import", "from blase_tui import").replace("# main.py", "")
    # The seed's import line also names the modules of later issues (Train, Deploy...); import the names
    # blase_tui has today, so the four data functions themselves run exactly as written.
    import blase_tui

    line = re.search(r"from blase_tui import (.+)", code)
    names = [n.strip() for n in line.group(1).split(",")]
    available = [n for n in names if n in blase_tui.__all__]
    assert {"Extract", "Transform", "Load", "Examine", "Clean", "Prepare"} <= set(available)
    return code.replace(line.group(0), "from blase_tui import " + ", ".join(available))


SEED_ENGINEER = '''
import numpy as np

def example_func(batch):
    return {"image": batch["image"].astype(np.float32) / 255.0, "label": batch["label"]}

def filter_bad_images(batch):
    return batch["image"].reshape(len(batch), -1).max(axis=1) == 0
'''


def test_seed_data_steps_run_unchanged(tmp_path: Path, blase) -> None:
    code = _seed_functions()
    assert "def etl():" in code and "def prepare():" in code and "from blase_tui import Extract" in code
    footer = "\nfrom blase_tui import step\nfor _f in (etl, inspect, clean, prepare):\n    step(_f)\n"
    project = make_project(tmp_path / "seed", main_src=code + footer)
    (project / "scripts").mkdir()
    (project / "scripts" / "__init__.py").write_text("")
    (project / "scripts" / "engineer.py").write_text(SEED_ENGINEER)
    (project / "scripts" / "model.py").write_text("model = None\n")
    rng = np.random.default_rng(0)
    for i in range(40):
        folder = project / "data" / "raw" / "images" / str(i % 4)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.zeros((8, 8), np.uint8) if i in (3, 17) else rng.integers(1, 255, (8, 8), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    for name in ("etl", "inspect", "clean", "prepare"):
        proc = blase("step", name, cwd=project)
        assert proc.returncode == 0, f"{name}: {proc.stderr}"
    processed = json.loads((project / "data" / "interim" / "processed_images" / "_manifest.json").read_text())
    assert processed["records"] == 40
    manifest = json.loads((project / "data" / "prepared" / "_manifest.json").read_text())
    assert manifest["excluded"] == 2 and sum(manifest["counts"].values()) == 38
    run = show_json(blase, project, "latest")
    out = [d for d in run["steps"][0]["datasets"] if d["role"] == "output"]
    assert out and out[0]["path"] == "data/prepared"
    inspect_run = [r for r in json.loads(blase("runs", "list", "--json", cwd=project).stdout)
                   if r["steps"][0]["step"] == "inspect"][0]
    arts = {a["name"] for a in show_json(blase, project, inspect_run["id"])["steps"][0]["artifacts"]}
    assert "summary.json" in arts and any(re.match(r"hist_.*\.png", a) for a in arts)
