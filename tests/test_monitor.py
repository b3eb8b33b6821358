"""`Monitor` (issue 14): drift tests whose false-alarm rate is alpha at every sample size, that find a small
shift in one feature and only there; performance estimated without labels; the seed's API over a folder of
live files and over `blase serve`'s prediction log; triggers from blase.toml; bad priors in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_project, run_blase

from blase_tui.modules.drift import FeatureDrift, holm, ks_test
from blase_tui.modules.monitor import Monitor
from blase_tui.modules.priors import FeaturePriors, prediction_priors

ALPHA = 0.05
FEATURES = 20


def _flags(rng: np.random.Generator, n: int, m: int, shift: float = 0.0) -> list[bool]:
    """One no-change (or shifted) trial: a fresh reference of m values and n live values per feature, tested
    as Monitor tests them (KS, then Holm across the features)."""
    reference = np.sort(rng.normal(size=(m, FEATURES)), axis=0)
    live = rng.normal(size=(n, FEATURES))
    live[:, 0] += shift
    results = []
    for f in range(FEATURES):
        d, p = ks_test(reference[:, f], live[:, f])
        results.append(FeatureDrift(str(f), "ks", d, p, n, m))
    return [r.drifted for r in holm(results, ALPHA)]


def test_a_fifth_of_a_standard_deviation_is_found_in_that_feature_only() -> None:
    rng = np.random.default_rng(7)
    trials = 200
    found = others = 0
    for _ in range(trials):
        flags = _flags(rng, 10_000, 10_000, shift=0.2)
        found += flags[0]
        others += any(flags[1:])
    assert found / trials >= 0.95
    assert others / trials <= 1.5 * ALPHA


def test_estimated_accuracy_follows_covariate_shift() -> None:
    """A calibrated classifier (logistic regression on logistic data) on shifted inputs: without labels, the
    estimated accuracy is within 0.03 of the accuracy the labels show."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    w = np.array([1.5, -1.0])

    def draw(n: int, centre: float) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(loc=centre, size=(n, 2))
        y = (rng.random(n) < 1 / (1 + np.exp(-(x @ w)))).astype(int)
        return x, y

    x, y = draw(20_000, 0.0)
    clf = LogisticRegression().fit(x, y)
    xv, yv = draw(5_000, 0.0)
    monitor = Monitor(window=50_000)
    monitor.load_prediction_priors(prediction_priors("classification", [0, 1], clf.predict(xv), yv,
                                                     clf.predict_proba(xv)))
    for centre in (0.0, 0.8, -1.5):
        live, truth = draw(20_000, centre)
        fresh = Monitor(window=50_000)
        fresh.prediction_priors = monitor.prediction_priors
        fresh.submit_live_batch(pd.DataFrame(live, columns=["a", "b"]), clf.predict_proba(live), None)
        estimated = fresh.track_performance_metrics()["estimated_accuracy"]
        realised = float(np.mean(clf.predict(live) == truth))
        assert abs(estimated - realised) <= 0.03, (centre, estimated, realised)


def _frame(rng: np.random.Generator, n: int, shift: float = 0.0, colour_shift: bool = False) -> pd.DataFrame:
    colours = rng.choice(["red", "green", "blue"], size=n, p=[0.2, 0.3, 0.5] if colour_shift else [0.5, 0.3, 0.2])
    return pd.DataFrame({"age": rng.normal(40 + shift * 10, 10, n), "income": rng.lognormal(8, 0.5, n),
                         "colour": colours})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "mon", toml='[project]\nname = "mon"\n\n[monitor.triggers]\n'
                        'drift_share = 0.5\nfeatures = ["colour"]\nmin_samples = 500\n')
    rng = np.random.default_rng(0)
    builder = FeaturePriors()
    for _ in range(4):  # streamed: four batches of training data
        builder.update(_frame(rng, 5_000))
    (root / "priors").mkdir()
    (root / "priors" / "features.json").write_text(json.dumps(builder.to_json()))
    live = root / "live"
    live.mkdir()
    for hour in range(3):  # seed 002's hourly files: the third hour has older people and other colours
        _frame(rng, 2_000, shift=1.0 if hour == 2 else 0.0, colour_shift=hour == 2).to_parquet(
            live / f"alerts_{hour:02d}.parquet")
    return root


def test_the_seed_loop_over_hourly_files(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    monitor = Monitor(alpha=0.001)  # a false alarm in the two unchanged hours: 0.2%, not 10%
    priors = monitor.load_feature_priors("priors/features.json")
    assert priors["rows"] == 20_000 and len(priors["features"]["age"]["sample"]) == 10_000
    flagged, fired = [], []
    for features, preds, true in monitor.stream_batches("live", batch_rows=2_000):
        assert preds is None and true is None and list(features.columns) == ["age", "income", "colour"]
        monitor.submit_live_batch(features, preds, true)
        results = monitor.detect_feature_drift(features)
        flagged.append(sorted(r.feature for r in results if r.drifted))
        fired.append(monitor.check_triggers())
    assert flagged == [[], [], ["age", "colour"]]
    assert fired == [False, False, True]
    assert "feature colour drifted" in monitor.fired
    assert any("67% of the features drifted" in why for why in monitor.fired)


def test_the_prediction_log_is_a_source(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from blase_tui.serve.predlog import Entry, PredictionLog

    monkeypatch.chdir(project)
    rng = np.random.default_rng(5)
    log = PredictionLog(project / "predictions" / "m", model="m", version=1)
    for i in range(10):
        x = rng.normal(40, 10, (50, 2))
        proba = rng.dirichlet([1, 1], size=50)
        log.add(Entry(f"r{i}", float(i), 1.0, x, proba.argmax(axis=1), proba, ["age", "income"]))
    log.flush()
    monitor = Monitor()
    monitor.load_feature_priors({"format": 1, "kind": "features", "features": {
        "age": {"type": "numeric", "sample": rng.normal(40, 10, 2000).tolist()},
        "income": {"type": "numeric", "histogram": {"edges": [0, 20, 40, 60, 80], "counts": [10, 490, 490, 10]}}}})
    batches = list(monitor.stream_batches())  # the project's predictions/ folder
    assert len(batches) == 1
    features, preds, true = batches[0]
    assert list(features.columns) == ["age", "income"] and preds.shape == (500, 2) and true is None
    results = {r.feature: r for r in monitor.detect_feature_drift(features)}
    assert results["age"].test == "ks" and results["income"].test == "chi2"
    monitor.submit_live_batch(features, preds, true)
    assert 0.5 <= monitor.track_performance_metrics()["estimated_accuracy"] <= 1


def test_in_a_step_drift_is_recorded(project: Path) -> None:
    main = '''
from blase_tui import Monitor, step


@step
def monitor(ctx):
    """Watch the hourly files."""
    m = Monitor(alpha=0.001)
    m.load_feature_priors("priors/features.json")
    for features, preds, true in m.stream_batches("live", batch_rows=2000):
        m.submit_live_batch(features, preds, true)
        m.detect_feature_drift(features)
        if m.check_triggers():
            print("Retraining condition met!")
'''
    (project / "main.py").write_text(main)
    proc = run_blase("step", "monitor", cwd=project, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Retraining condition met!" in proc.stderr + proc.stdout
    run = json.loads(run_blase("runs", "show", "latest", "--json", cwd=project, check=True).stdout)
    step = run["steps"][0]
    assert step["metrics"]["drift/share"] == pytest.approx(2 / 3)
    assert {"monitor/drift_0003.json", "monitor/trigger_0003.json"} <= {a["name"] for a in step["artifacts"]}
    assert "priors/features.json" in {d["path"] for d in step["datasets"] if d["role"] == "input"}
    assert run["tags"]["monitor.trigger"].startswith("67% of the features drifted")


@pytest.mark.parametrize(("text", "expected"), [
    ("{nope", "is not valid JSON"),
    ('{"kind": "features", "features": {"a": {"type": "numeric"}}}', "needs a \"sample\" of values or a \"histogram\""),
    ('{"kind": "features", "features": {"a": {"type": "text"}}}', "needs \"type\": \"numeric\" or \"categorical\""),
    ('{"kind": "predictions"}', "holds no features priors"),
])
def test_bad_priors_are_one_line(project: Path, text: str, expected: str) -> None:
    (project / "priors" / "bad.json").write_text(text)
    (project / "main.py").write_text('from blase_tui import Monitor, step\n\n\n@step\ndef m(ctx):\n'
                                     '    Monitor().load_feature_priors("priors/bad.json")\n')
    proc = run_blase("step", "m", cwd=project)
    assert proc.returncode == 1 and expected in proc.stderr


def test_bad_trigger_config_is_a_usage_error(project: Path) -> None:
    (project / "blase.toml").write_text('[project]\nname = "mon"\n\n[monitor.triggers]\ndrift_share = "lots"\n')
    proc = run_blase("steps", cwd=project)
    assert proc.returncode == 2 and "[monitor.triggers] drift_share must be a number" in proc.stderr


def test_training_records_the_priors_a_model_reference_loads(tmp_path: Path) -> None:
    """The tabular template's train step (Train on npy shards): its model carries feature and prediction
    priors, and Monitor finds them by the model's name; after an evaluation, the prediction priors are the test
    split's."""
    import subprocess
    import sys

    from conftest import _env

    root = tmp_path / "tab"
    run_blase("create", "tabular", str(root), cwd=tmp_path, check=True)
    for step in ("etl", "clean", "prepare", "train", "evaluate"):
        run_blase("step", step, cwd=root, check=True, timeout=200)
    script = (
        "import json, numpy as np, pandas as pd\n"
        "from blase_tui import Monitor, models\n"
        "m = Monitor()\n"
        "f = m.load_feature_priors('diagnosis')\n"
        "p = m.load_prediction_priors('diagnosis')\n"
        "ref = {k: np.asarray(v['sample']) for k, v in f['features'].items()}\n"
        "rng = np.random.default_rng(0)\n"
        "same = pd.DataFrame({k: rng.choice(v, 300) for k, v in ref.items()})\n"
        "moved = same.copy(); moved['x0'] = moved['x0'] * 1.5\n"
        "print(json.dumps({'features': len(f['features']), 'task': p['task'], 'accuracy': p['metrics']['accuracy'],\n"
        "  'rows': p['rows'],\n"
        "  'calibrated': sum(p['calibration']['counts']),\n"
        "  'same': [r.feature for r in m.detect_feature_drift(same) if r.drifted],\n"
        "  'moved': [r.feature for r in m.detect_feature_drift(moved) if r.drifted],\n"
        "  'seed_way': len(Monitor().load_feature_priors('priors/features.json')['features'])}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=root, env=_env(), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["features"] == 30 and result["task"] == "classification"
    assert 0.8 <= result["accuracy"] <= 1 and result["calibrated"] > 0
    test_rows = json.loads(run_blase("runs", "show", "latest", "--json", cwd=root, check=True).stdout)["steps"][0][
        "metrics"]
    evaluated = json.loads(next((root / "runs").rglob("evaluation/evaluation.json")).read_text())
    assert result["rows"] == evaluated["records"], "the prediction priors are the newest evaluation's (test split)"
    assert result["accuracy"] == pytest.approx(test_rows["accuracy"])
    assert result["same"] == [] and result["moved"] == ["x0"]
    # the seed's monitor step names priors/features.json, which nobody wrote: the newest model's priors stand in
    assert result["seed_way"] == 30
    assert "priors/features.json does not exist; using the features priors diagnosis v1 recorded (the newest" \
        " registered model)" in out.stderr

    # a second version trained (and not promoted) while the log shows v1 being served: the seed's monitor
    # uses the priors of the version it is watching, not the newest
    run_blase("step", "train", "--force", cwd=root, check=True, timeout=200)
    log = root / "predictions" / "diagnosis" / "2026-12-06"
    log.mkdir(parents=True)
    pd.DataFrame({"model": ["diagnosis"], "version": [1], "prediction": [0]}).to_parquet(log / "120000-1-1.parquet")
    out = subprocess.run([sys.executable, "-c", "from blase_tui import Monitor\n"
                          "Monitor().load_feature_priors('priors/features.json')"], cwd=root, env=_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "using the features priors diagnosis v1 recorded (the version the prediction log names)" in out.stderr


@pytest.mark.parametrize(("kind", "text", "expected"), [
    ("features", '{"kind": "features", "features": {"age": {"type": "numeric", "sampel": [1, 2]}}}',
     "unknown key 'sampel' in feature 'age'; the keys are count, counts, histogram"),
    ("features", '{"kind": "features", "features": {"age": {"type": "numeric", "sample": "abc"}}}',
     "numeric feature 'age': \"sample\" must be a list of numbers"),
    ("features", '{"kind": "features", "features": {"a": {"type": "numeric", "sample": [1]}}, "image": {"shape": 3}}',
     "\"image\" must hold \"shape\""),
    ("features", '{"kind": "features", "features": {"a": {"type": "categorical", "counts": {"x": "many"}}}}',
     "categorical feature 'a' needs \"counts\""),
    ("predictions", '{"kind": "predictions", "clases": [0, 1]}', "unknown key 'clases'; the keys are calibration"),
    ("predictions", '{"kind": "predictions", "calibration": "x"}', "\"calibration\" must be a table"),
    ("predictions", '{"kind": "predictions", "calibration": {"sample": {"logit": [1.0], "correct": []}}}',
     "calibration \"sample\" must hold \"logit\" and \"correct\""),
    ("predictions", '[1, 2]', "holds no predictions priors (its \"kind\" is 'list')"),
])
def test_malformed_priors_are_one_line_naming_the_key(tmp_path: Path, kind: str, text: str, expected: str) -> None:
    """A typo or a wrong value in a priors file written by hand: one line naming the file and the key, never a
    traceback from deep inside the tests, and never silently ignored (a misspelt "classes" made a false alarm)."""
    from blase_tui.errors import BlaseError
    from blase_tui.modules import priors as priors_mod

    path = tmp_path / f"{kind}.json"
    path.write_text(text)
    with pytest.raises(BlaseError) as caught:
        priors_mod.read(path, kind)
    message = str(caught.value)
    assert expected in message and str(path) in message and "\n" not in message, message


def test_training_priors_give_no_estimate_rather_than_an_optimistic_one(capsys) -> None:
    """Prediction priors from the records the model trained on (no validation split): every one right at its
    confidence, so a calibration on them says the model is always right. No estimate, and one line saying why."""
    rng = np.random.default_rng(1)
    proba = rng.dirichlet([1, 1], size=400)
    truth = proba.argmax(axis=1)  # the training records: all right
    priors = prediction_priors("classification", [0, 1], proba.argmax(axis=1), truth, proba)
    priors["split"] = "train"
    monitor = Monitor()
    monitor.load_prediction_priors(priors)
    monitor.submit_live_batch(pd.DataFrame({"a": np.zeros(200)}), rng.dirichlet([1, 1], size=200), None)
    out = monitor.track_performance_metrics()
    assert "estimated_accuracy" not in out and out["records"] == 200
    assert "no performance estimate: the prediction priors come from the records the model was trained on" \
        in capsys.readouterr().err
    priors["split"] = "validation"
    monitor.load_prediction_priors(priors)
    assert "estimated_accuracy" in monitor.track_performance_metrics()


def test_triggers_given_in_code_are_checked() -> None:
    from blase_tui.errors import BlaseError

    with pytest.raises(BlaseError, match=r"^Monitor\(triggers=\.\.\.\): unknown key `feature`; expected one of"
                                         r" drift_share, features, metric_drop, min_samples\.$"):
        Monitor(triggers={"feature": ["visits"]})
    with pytest.raises(BlaseError, match=r"min_samples must be a number, 0 or more"):
        Monitor(triggers={"min_samples": "many"})


# ------------------------------------------------------------------------------------ streamed drift report
def test_counts_on_the_reference_grid_give_the_exact_ks_and_wasserstein() -> None:
    """What the streamed report keeps per feature (counts on the reference's values) gives the KS statistic of
    the raw values exactly, ties included, and Wasserstein within 2% of scipy's (interpolated only where the
    two distribution functions cross inside an interval)."""
    from scipy.stats import wasserstein_distance

    from blase_tui.modules.drift import NumericLive, NumericReference

    rng = np.random.default_rng(3)
    for trial in range(60):
        reference = rng.normal(size=int(rng.integers(1000, 5000)))
        live = rng.normal(rng.uniform(-0.3, 0.3), rng.uniform(0.8, 1.3), size=int(rng.integers(10, 20_000)))
        if trial % 3 == 0:  # ties between and within the two samples
            reference, live = np.round(reference, 1), np.round(live, 1)
        acc = NumericLive(NumericReference(reference))
        for part in np.array_split(live, 4):
            acc.add(part)
        assert acc.ks()[0] == pytest.approx(ks_test(np.sort(reference), live)[0], abs=1e-12)
        expected = wasserstein_distance(reference, live) / np.std(reference)
        assert acc.wasserstein() == pytest.approx(expected, rel=0.02)


def test_the_drift_report_streams_every_record_and_matches_one_test_over_all(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    builder = FeaturePriors()
    builder.update(_frame(rng, 20_000))
    live = tmp_path / "live"
    live.mkdir()
    frames = [_frame(rng, 3_000, shift=0.05) for _ in range(4)]
    for i, frame in enumerate(frames):
        frame.to_parquet(live / f"part-{i}.parquet", row_group_size=500)
    streamed = Monitor()
    streamed.load_feature_priors(builder.to_json())
    seen = [len(f) for f, _, _ in streamed.stream_batches(live, batch_rows=1_000)]
    assert seen == [1_000] * 12  # a big file in batches, never whole
    report = {r.feature: r for r in streamed.drift_report(live, batch_rows=700)}
    whole = Monitor()
    whole.load_feature_priors(builder.to_json())
    at_once = {r.feature: r for r in whole.detect_feature_drift(pd.concat(frames, ignore_index=True))}
    assert report.keys() == at_once.keys() == {"age", "income", "colour"}
    for name, r in report.items():
        assert r.n == 12_000 and r.statistic == pytest.approx(at_once[name].statistic)
        assert r.p_value == pytest.approx(at_once[name].p_value) and r.drifted == at_once[name].drifted
    assert report["age"].drifted and not report["income"].drifted


def test_the_grid_lookup_places_every_value_as_a_binary_search_does() -> None:
    """Issue 26: live values are placed on the reference grid by a bucket table, not a binary search; the places
    (and so the counts, KS, PSI and Wasserstein) are searchsorted's exactly, for heavy tails, ties, a mass at
    zero, extreme magnitudes, the grid values themselves and their nearest neighbours."""
    import pickle

    from blase_tui.modules.drift import NumericReference

    rng = np.random.default_rng(26)
    draws = [rng.normal(size=10_000), rng.lognormal(sigma=2, size=10_000), rng.standard_t(1, size=10_000),
             np.round(rng.normal(size=10_000), 1), rng.poisson(3, size=10_000).astype(float),
             np.where(rng.uniform(size=10_000) < 0.3, 0.0, rng.exponential(size=10_000)),
             rng.normal(size=10_000) * 1e150, rng.normal(size=10_000) * 1e-300, np.arange(100.0)]
    for sample in draws:
        ref = NumericReference(sample)
        grid = ref.grid
        x = np.concatenate([rng.choice(sample, 50_000) * rng.uniform(0.5, 1.5, 50_000), grid,
                            np.nextafter(grid, np.inf), np.nextafter(grid, -np.inf), [1e308, -1e308, 5e-324, 0.0]])
        ref.locate(x[:10])
        copy = pickle.loads(pickle.dumps(ref))
        assert copy._lookup is None  # not shipped to a worker: it builds its own
        for reference in (ref, copy):
            at, there = reference.locate(x)
            expected = np.searchsorted(grid, x, side="left")
            assert np.array_equal(at, expected)
            assert np.array_equal(there, np.append(grid, np.inf)[expected])


def test_the_drift_report_reads_prediction_logs_and_csv_as_the_stream_does(tmp_path: Path) -> None:
    """The report's own read (Arrow columns to numpy, no DataFrame) gives what ``stream_batches`` gives: for a
    prediction log's ``input.<name>`` columns, a vector ``input`` column, and CSV files."""
    rng = np.random.default_rng(6)
    builder = FeaturePriors()
    builder.update(_frame(rng, 5_000))
    frames = [_frame(rng, 1_500, shift=0.03) for _ in range(3)]
    frames[0].loc[::7, "age"] = np.nan
    live = tmp_path / "live"
    live.mkdir()
    frames[0].rename(columns=lambda c: f"input.{c}").assign(prediction=1).to_parquet(live / "a.parquet")
    frames[1].to_csv(live / "b.csv", index=False)
    vectors = tmp_path / "vectors"
    vectors.mkdir()
    numbers = pd.DataFrame({"x0": rng.normal(size=3_000), "x1": rng.uniform(size=3_000)})
    pd.DataFrame({"input": list(numbers.to_numpy()), "prediction": 0}).to_parquet(vectors / "log.parquet")
    vector_priors = FeaturePriors()
    vector_priors.update(pd.DataFrame({"x0": rng.normal(size=2_000), "x1": rng.uniform(size=2_000)}))
    for folder, priors in ((live, builder), (vectors, vector_priors)):
        report, stream = Monitor(), Monitor()
        report.load_feature_priors(priors.to_json())
        stream.load_feature_priors(priors.to_json())
        streamed = stream._accumulators()
        for features, _, _ in stream.stream_batches(folder, batch_rows=1_000):
            for name, acc in streamed.items():
                if name in features:
                    acc.add(np.asarray(features[name]))
        read, missing = report._accumulators(), report._missing_accumulators()
        assert report._report_files(read, missing, folder, 1_000) is not None
        for name, acc in read.items():
            assert acc.n == streamed[name].n > 0
            assert missing[name].n == acc.n + missing[name].missing  # every value read: present or missing
            if hasattr(acc, "equal"):
                assert np.array_equal(acc.equal, streamed[name].equal)
                assert np.array_equal(acc.between, streamed[name].between)
                assert np.allclose(acc.sums, streamed[name].sums, rtol=1e-12)
            else:
                assert acc.counts == streamed[name].counts
        if folder == live:  # the NaN written into the log's age column are counted as missing, nowhere else
            assert missing["age"].missing == int(frames[0]["age"].isna().sum()) > 0
            assert missing["income"].missing == missing["colour"].missing == 0


def test_a_report_on_some_of_the_features_flags_the_one_gone(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(5)
    builder = FeaturePriors()
    builder.update(_frame(rng, 5_000))
    live = tmp_path / "live"
    live.mkdir()
    _frame(rng, 2_000).drop(columns=["income"]).to_parquet(live / "part.parquet")
    monitor = Monitor()
    monitor.load_feature_priors(builder.to_json())
    results = monitor.drift_report(live)
    assert {r.feature for r in results} == {"age", "colour", "income"}
    # a column gone is drift: flagged, and said in one line (it was an info line and no flag)
    assert [(r.feature, r.test) for r in results if r.drifted] == [("income", "missing")]
    assert "income: not in the live data (a column gone); flagged as drift" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    pd.DataFrame({"foo": [1.0, 2.0], "bar": [3.0, 4.0]}).to_parquet(other / "part.parquet")
    fresh = Monitor()
    fresh.load_feature_priors(builder.to_json())
    with pytest.raises(Exception, match=r"has values in the live data; check the column names \(live: foo, bar\)"):
        fresh.drift_report(other)


def test_a_column_gone_from_some_files_is_a_rise_in_its_missing_share(tmp_path: Path) -> None:
    """The report over three hourly files, the last without ``income``: that hour's records miss it (a third of
    all), flagged as missing drift in the report; the values of the other two hours are tested as usual."""
    rng = np.random.default_rng(12)
    builder = FeaturePriors()
    builder.update(_frame(rng, 5_000))
    live = tmp_path / "live"
    live.mkdir()
    for hour in range(3):
        frame = _frame(rng, 1_000)
        (frame.drop(columns=["income"]) if hour == 2 else frame).to_parquet(live / f"hour_{hour}.parquet")
    monitor = Monitor()
    monitor.load_feature_priors(builder.to_json())
    results = monitor.drift_report(live)
    income = {r.test: r for r in results if r.feature == "income"}
    assert income["missing"].drifted and income["missing"].extra["missing_share"] == pytest.approx(1 / 3)
    assert income["ks"].n == 2_000 and not income["ks"].drifted
    assert [r.feature for r in results if r.drifted] == ["income"]


def test_a_corrupt_file_is_named(tmp_path: Path) -> None:
    live = tmp_path / "live"
    live.mkdir()
    (live / "a.parquet").write_bytes(b"PAR1 not really")
    monitor = Monitor()
    monitor.load_feature_priors({"format": 1, "kind": "features", "features": {
        "age": {"type": "numeric", "sample": [1.0, 2.0, 3.0]}}})
    with pytest.raises(Exception) as caught:
        list(monitor.stream_batches(live))
    assert "a.parquet is not a readable Parquet file" in str(caught.value)


def test_follow_mode_yields_files_as_they_arrive_and_late_labels_count(tmp_path: Path) -> None:
    """seed 002: hourly files land in a folder while the monitor runs; their labels come later, in another
    file, and are joined by key."""
    import threading

    rng = np.random.default_rng(6)
    builder = FeaturePriors()
    builder.update(_frame(rng, 5_000))
    live = tmp_path / "live"
    live.mkdir()

    def hour(i: int) -> pd.DataFrame:
        frame = _frame(rng, 400)
        frame["id"] = [f"h{i}-{j}" for j in range(400)]
        frame["prediction"] = (frame["age"] > 40).astype(int)
        return frame

    first = hour(0)
    first.to_parquet(live / "alerts_00.parquet")
    second = hour(1)

    def arrive() -> None:
        tmp = live / ".alerts_01.parquet"  # written under a hidden name, then renamed: the way files should land
        second.to_parquet(tmp)
        tmp.rename(live / "alerts_01.parquet")

    monitor = Monitor()
    monitor.load_feature_priors(builder.to_json())
    monitor.load_prediction_priors({"format": 1, "kind": "predictions", "task": "classification",
                                    "classes": [0, 1], "metrics": {"accuracy": 1.0}})
    labels = tmp_path / "labels.csv"
    batches = []
    for features, preds, true in monitor.stream_batches(live, follow=True, idle_seconds=3, labels=labels, key="id"):
        batches.append(list(features.index[:1]))
        assert true is not None and pd.isna(pd.Series(true)).all()  # no label has come yet
        monitor.submit_live_batch(features, preds, true)
        if len(batches) == 1:
            threading.Thread(target=arrive).start()
    assert batches == [["h0-0"], ["h1-0"]]
    assert monitor.track_performance_metrics()["labelled"] == 0
    truth = pd.concat([first, second], ignore_index=True)
    truth["label"] = (truth["age"] > 40).astype(int)
    truth.loc[truth.index[:100], "label"] = 1 - truth["label"].iloc[:100]  # 100 of 800 predictions were wrong
    truth[["id", "label"]].to_csv(labels, index=False)
    metrics = monitor.track_performance_metrics()
    assert metrics["labelled"] == 800 and metrics["accuracy"] == pytest.approx(700 / 800)
