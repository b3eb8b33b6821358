"""`blase inspect PATH` (issue 28): Examine's summary and schema of a dataset a user brings, outside any project,
printed and written as JSON; `Extract().load(path)` picks the reader by what the path holds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from blase_tui.modules.extract import Extract


def table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 300
    frame = pd.DataFrame({"patient_id": np.arange(1000, 1000 + n), "height": rng.normal(175, 8, n).round(1),
                          "smoker": rng.integers(0, 2, n), "target": rng.normal(150, 70, n).round()})
    frame.loc[rng.choice(n, 30, replace=False), "height"] = np.nan
    return frame


def test_inspect_a_csv_prints_and_writes_the_summary_and_schema(tmp_path: Path, blase) -> None:
    data = tmp_path / "mine" / "patients.csv"
    data.parent.mkdir()
    table().to_csv(data, index=False)
    proc = blase("inspect", str(data), "--out", str(tmp_path / "report.json"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "suggested schema" in proc.stdout and f"written to {tmp_path / 'report.json'}" in proc.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["reader"] == "load_csv" and report["summary"]["records"] == 300
    height = report["summary"]["columns"]["height"]
    assert height["missing"] == 30 and height["count"] == 270
    assert report["schema"]["columns"]["height"]["missing_share"] == pytest.approx(0.1)
    assert set(report["schema"]["columns"]) == {"patient_id", "height", "smoker", "target"}
    # the default place is inspect/NAME.json in the working directory; --json prints the same report
    default = blase("inspect", str(data), "--json", cwd=tmp_path)
    assert json.loads(default.stdout)["summary"]["records"] == 300
    assert json.loads((tmp_path / "inspect" / "patients.csv.json").read_text())["summary"]["records"] == 300


def test_inspect_bad_paths_are_one_line_each(tmp_path: Path, blase) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    for arg, said in (("nothing.csv", "does not exist"), ("notes.txt", "blase reads .csv, .tsv, .parquet"),
                      ("empty", "holds no file blase reads")):
        proc = blase("inspect", arg, cwd=tmp_path)
        assert proc.returncode == 2 and said in proc.stderr, (arg, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "inspect").exists()  # nothing written for a bad path


def test_extract_load_picks_the_reader_by_what_the_path_holds(tmp_path: Path) -> None:
    frame = table()
    frame.to_parquet(tmp_path / "a.parquet")
    frame.to_json(tmp_path / "a.jsonl", orient="records", lines=True)
    frame.to_csv(tmp_path / "a.tsv", sep="\t", index=False)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i in range(3):
        frame.iloc[i * 100:(i + 1) * 100].to_parquet(folder / f"part-{i}.parquet")
    for path in ("a.parquet", "a.jsonl", "a.tsv", "parts"):
        batches = list(Extract(batch_size=64).load(tmp_path / path))
        assert sum(len(b) for b in batches) == 300, path
        assert len(batches) > 1  # streamed in batches, not read whole
        heights = np.concatenate([np.asarray(b.column("height"), dtype=float) for b in batches])
        assert np.isnan(heights).sum() == 30, path
