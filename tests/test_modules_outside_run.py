"""The seed's module calls do what they say outside any run too (a notebook, a test): Clean keeps its exclusion
set in the project, Examine writes where the docs say and says so, save_model writes exactly the file asked
for in the format its suffix names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_project

from blase_tui import BlaseError, Clean, Examine, Load, Prepare, Train
from blase_tui.modules.batch import Batch, BatchMeta


def _batch(n: int = 12) -> Batch:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    x[:, 1] += y * 3
    return Batch([f"r{i:02d}" for i in range(n)], {"features": x, "label": y}, BatchMeta("test", 0))


def test_clean_outside_any_run_saves_in_the_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p")
    monkeypatch.chdir(project)
    cleaner = Clean()
    batch = _batch()
    cleaner.apply_filter(batch, lambda b: b["features"][:, 0] < -1, reason="too low")
    kept = cleaner.remove_keys(batch)
    assert cleaner.clear_keys() == "cleaned_v1"
    prepare = Prepare()
    assert prepare.load_exclusion_keys("cleaned_v1") == len(batch) - len(kept) > 0


def test_clean_outside_any_project_keeps_the_set_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    cleaner = Clean()
    cleaner.exclude(["r01"], reason="seen")
    assert cleaner.clear_keys() is None
    assert cleaner.excluded_sets == [{"r01": "seen"}]
    assert "exclusion set not saved (no blase.toml in" in capsys.readouterr().err


def test_examine_outside_any_run_writes_to_examine_and_says_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    examiner = Examine()
    examiner.process_batch(_batch())
    examiner.generate_summary(plots=False, show=False)
    assert (tmp_path / "examine" / "summary.json").is_file()
    assert "summary written to examine/summary.json" in capsys.readouterr().err


def test_suggest_schema_names_the_label_and_scalings(tmp_path: Path) -> None:
    import pyarrow as pa

    rng = np.random.default_rng(1)
    n = 2000
    table = pa.table({
        "id": [f"p{i}" for i in range(n)],
        "size": rng.lognormal(0, 2, n),              # right-skewed, positive
        "height": rng.normal(170, 10, n),
        "kind": rng.choice(["a", "b", "c"], n),
        "outcome": rng.integers(0, 2, n),
    })
    examiner = Examine()
    examiner.process_batch(Batch([f"k{i}" for i in range(n)], table, BatchMeta("t", 0)))
    schema = examiner.suggest_schema()
    columns = schema["columns"]
    assert schema["label"] == "outcome" and columns["outcome"]["role"] == "label"
    assert columns["id"]["feature_type"] == "identifier" and columns["id"]["scaling"].startswith("drop")
    assert columns["size"]["scaling"].startswith("log1p")
    assert columns["height"]["scaling"].startswith("standardise")
    assert columns["kind"]["scaling"].startswith("one-hot")


def test_save_model_writes_exactly_the_path_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.linear_model import LogisticRegression

    from blase_tui.modules.evaluate import load_model

    monkeypatch.chdir(tmp_path)
    Load().save_to_filesystem(_batch(40), tmp_path / "prepared" / "train")
    trainer = Train()
    trainer.set_model(LogisticRegression(), framework="sklearn")
    trainer.train(epochs=1, data_dir=tmp_path / "prepared")
    with pytest.raises(BlaseError, match=r"model\.bin: a sklearn model is saved as \.skops or \.joblib or \.pkl"):
        trainer.save_model(tmp_path / "model.bin")
    assert not (tmp_path / "model.bin").exists()
    assert trainer.save_model(tmp_path / "models" / "m.joblib") == str(tmp_path / "models" / "m.joblib")
    adapter, card = load_model(tmp_path / "models" / "m.joblib")
    assert card["framework"] == "sklearn"
    assert np.array_equal(adapter.model.predict(_batch(40)["features"]), trainer.adapter.model.predict(_batch(40)["features"]))
