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


def _inspect(blase, tmp_path: Path, frame: pd.DataFrame, name: str) -> dict:
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    proc = blase("inspect", str(path), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _outliers(report: dict) -> dict[str, str]:
    return {g["column"]: g["text"] for g in report["summary"]["suggestions"] if g["kind"] == "outliers"}


def test_the_schema_of_scikit_learns_tables_is_one_a_data_scientist_would_accept(tmp_path: Path, blase) -> None:
    """Issue 28: the diabetes table's label was `sex` (binary) and never the regression `target`; 27 of 30 natural
    breast-cancer columns were warned about outliers, and values injected at 100x a column's max read like them."""
    from sklearn.datasets import load_breast_cancer, load_diabetes

    diabetes = _inspect(blase, tmp_path, load_diabetes(as_frame=True).frame, "diabetes")
    assert diabetes["schema"]["label"] == "target" and diabetes["schema"]["task"] == "regression"
    assert "named like a label" in diabetes["schema"]["label_reason"]
    assert diabetes["schema"]["columns"]["sex"]["feature_type"] == "binary"
    assert not _outliers(diabetes)

    cancer = load_breast_cancer(as_frame=True).frame
    natural = _inspect(blase, tmp_path, cancer, "cancer")
    assert natural["schema"]["label"] == "target" and natural["schema"]["task"] == "classification"
    assert len(_outliers(natural)) <= 2, _outliers(natural)  # a natural sample's own tail is not an outlier
    rng = np.random.default_rng(0)
    rows = sorted(rng.choice(len(cancer), 3, replace=False).tolist())
    injected = cancer.copy()
    hit = list(cancer.columns[:10])
    for column in hit:
        injected.loc[rows, column] = cancer[column].max() * 100
    injected.loc[rng.choice(len(cancer), 40, replace=False), "worst area"] = np.nan
    report = _inspect(blase, tmp_path, injected, "injected")
    flagged = _outliers(report)
    for column in hit:
        assert column in flagged and flagged[column].startswith("3 value(s) stand far out"), (column, flagged)
        assert all(f"injected.csv:{r}" in flagged[column] for r in rows), flagged[column]  # the rows, named
    assert len(set(flagged) - set(hit)) <= 2
    assert report["schema"]["columns"]["worst area"]["missing_share"] == pytest.approx(40 / len(cancer))


def test_identifiers_whatever_their_type_and_robust_scaling(tmp_path: Path, blase) -> None:
    """An integer `patient_id` was typed continuous and standardised; `height` with five values of 1700 got
    "standardise (mean 185, std 153)"."""
    rng = np.random.default_rng(1)
    n = 400
    frame = pd.DataFrame({"patient_id": rng.permutation(np.arange(70_000, 70_000 + n)),
                          "objectId": [f"ZTF{i:07d}" for i in rng.permutation(n)],
                          "site_id": rng.integers(1, 6, n), "height": rng.normal(175, 8, n).round(1),
                          "income": rng.lognormal(10, 1, n).round(2), "y": rng.integers(0, 2, n)})
    frame.loc[[3, 50, 120, 200, 333], "height"] = 1700.0
    report = _inspect(blase, tmp_path, frame, "patients")
    columns = report["schema"]["columns"]
    assert columns["patient_id"]["feature_type"] == "identifier" and columns["patient_id"]["scaling"].startswith("drop")
    assert columns["objectId"]["feature_type"] == "identifier"
    assert columns["site_id"]["feature_type"] == "categorical"  # an id with five values groups rows
    assert columns["height"]["scaling"].startswith("robust scaling (median 17"), columns["height"]["scaling"]
    assert _outliers(report)["height"].startswith("5 value(s) stand far out")
    assert "income" not in _outliers(report)  # a lognormal's long tail is its own
    assert columns["income"]["scaling"].startswith("log1p(x / ")
    assert report["schema"]["label"] == "y"
