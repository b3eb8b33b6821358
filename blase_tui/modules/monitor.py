"""``Monitor`` (seed 000): compare what a model sees and predicts with what it was trained on.

>>> monitor = Monitor()
>>> monitor.load_feature_priors("priors/features.json")        # or a model: "digits_cnn@champion"
>>> monitor.load_prediction_priors("priors/predictions.json")
>>> for features, preds, true in monitor.stream_batches():      # the prediction log of `blase serve`, a folder
...     monitor.submit_live_batch(features, preds, true)         # of Parquet/CSV files, or a generator
...     monitor.track_performance_metrics()
...     monitor.detect_feature_drift(features)
...     if monitor.check_triggers():
...         print("Retraining condition met!")

Drift tests are calibrated: the chance that any feature is flagged when nothing changed is ``alpha``, at every
sample size (:mod:`blase_tui.modules.drift`). Performance is measured when labels come with the data, and
*estimated* from the model's probabilities when they do not (the expected accuracy and F1 of a calibrated
classifier, as NannyML's CBPE does), always named ``estimated_...``. Results are metrics and a JSON artifact
per window (``monitor/window_0001.json``).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from blase_tui.errors import BlaseError
from blase_tui.modules import drift as drift_mod
from blase_tui.modules import priors as priors_mod
from blase_tui.modules import recording

DEFAULT_WINDOW = 10_000  # live records the performance metrics are computed over


class Monitor:
    def __init__(self, alpha: float = 0.05, window: int = DEFAULT_WINDOW, triggers: dict[str, Any] | None = None,
                 min_samples: int = 100) -> None:
        if not 0 < alpha < 1:
            raise BlaseError(f"alpha must be between 0 and 1, not {alpha!r}.")
        recording.params("Monitor", alpha=alpha, window=window)
        self.alpha = alpha
        self.window = window
        self.min_samples = min_samples
        self.feature_priors: dict[str, Any] | None = None
        self.prediction_priors: dict[str, Any] | None = None
        self._triggers = triggers
        self._live: deque[tuple[Any, np.ndarray | None, np.ndarray | None]] = deque()
        self._live_rows = 0
        self.batches = 0
        self.last_drift: list[drift_mod.FeatureDrift] = []
        self.last_performance: dict[str, float] = {}
        self.fired: list[str] = []
        self._refs: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------------------------------------ priors
    def load_feature_priors(self, source: str | Path | dict[str, Any]) -> dict[str, Any]:
        """The reference for drift: a priors file (docs/monitoring.md) or a registered model whose training
        recorded them (``name``, ``name:3``, ``name@champion``)."""
        self.feature_priors = self._priors(source, "features")
        self._refs = {name: np.sort(np.asarray(p["sample"], dtype=np.float64))
                      for name, p in self.feature_priors["features"].items()
                      if p["type"] == "numeric" and p.get("sample")}
        return self.feature_priors

    def load_prediction_priors(self, source: str | Path | dict[str, Any]) -> dict[str, Any]:
        self.prediction_priors = self._priors(source, "predictions")
        return self.prediction_priors

    def _priors(self, source: str | Path | dict[str, Any], kind: str) -> dict[str, Any]:
        if isinstance(source, dict):  # priors built in this process (FeaturePriors().to_json())
            import tempfile

            with tempfile.TemporaryDirectory(prefix="blase-priors-") as tmp:
                path = Path(tmp) / f"{kind}.json"
                path.write_text(json.dumps(source))
                return priors_mod.read(path, kind)
        recording.params(f"load_{kind[:-1]}_priors", **{f"{kind}_priors": str(source)})
        path = Path(source)
        if path.suffix == ".json" or path.exists() or "/" in str(source):
            data = priors_mod.read(path, kind)
            recording.dataset(path, role="input")
            return data
        row = recording.model_version(str(source))
        file = recording.model_artifact(row, f"priors/{kind}.json")
        if file is None:
            raise BlaseError(f"{row['name']} v{row['version']} has no {kind} priors (its training did not record"
                             f" them); give a priors file such as priors/{kind}.json.")
        return priors_mod.read(file, kind)

    # ------------------------------------------------------------------------------------------- the stream
    def stream_batches(self, source: str | Path | Iterable[Any] | None = None, *, label_column: str | None = None,
                       prediction_column: str = "prediction", batch_rows: int | None = None
                       ) -> Iterator[tuple[Any, np.ndarray | None, np.ndarray | None]]:
        """``(features, preds, true)`` per batch: features a DataFrame of the priors' features, preds the
        predicted labels (or, from the prediction log, the class probabilities, one column per class), true the
        labels when the data has them (``label_column``), else None.

        ``source``: a folder of Parquet or CSV files (read in name order: seed 002's hourly files), the
        prediction log of ``blase serve`` (``predictions/<model>``; the default: the project's
        ``predictions/`` folder), or any iterable of such tuples or of DataFrames."""
        import pandas as pd

        if source is not None and not isinstance(source, str | Path):
            for item in source:
                if isinstance(item, tuple):
                    yield item
                else:
                    yield self._split(item, label_column, prediction_column)
            return
        folder = Path(source) if source is not None else recording.project_root() / "predictions"
        if not folder.exists():
            raise BlaseError(f"{folder} does not exist: nothing to monitor yet (serve a model with `blase serve`,"
                             " or give the folder of live data files).")
        files = sorted(p for p in ([folder] if folder.is_file() else folder.rglob("*"))
                       if p.suffix in (".parquet", ".csv") and not p.name.startswith("."))
        if not files:
            raise BlaseError(f"{folder} holds no Parquet or CSV files yet.")
        recording.params("stream_batches", source=str(folder))
        rows = batch_rows or self._batch_rows()
        pending: list[Any] = []
        count = 0
        for path in files:
            frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
            pending.append(frame)
            count += len(frame)
            while count >= rows:
                merged = pd.concat(pending, ignore_index=True)
                batch, rest = merged.iloc[:rows], merged.iloc[rows:]
                pending, count = ([rest] if len(rest) else []), len(rest)
                yield self._split(batch, label_column, prediction_column)
        if count:
            yield self._split(pd.concat(pending, ignore_index=True), label_column, prediction_column)

    def _batch_rows(self) -> int:
        """Rows per batch from the memory budget (a quarter of it for the batch; 8 bytes a value)."""
        width = len((self.feature_priors or {}).get("features", {})) or 20
        return int(max(1000, min(1_000_000, recording.memory_budget() / 4 / (8 * (width + 4)))))

    def _split(self, frame: Any, label_column: str | None, prediction_column: str) -> tuple[Any, Any, Any]:
        """A live DataFrame as ``(features, preds, true)``: the prediction log's ``input.<name>`` columns are the
        features; its ``probabilities`` (else ``prediction``) the predictions."""
        wanted_names = list((self.feature_priors or {}).get("features", {}))
        if "input" in frame.columns and wanted_names and wanted_names[0] not in frame.columns:
            # a vector input logged whole (a model trained on npy shards): its values are the features x0, x1, ...
            import pandas as pd

            values = np.stack(frame["input"].to_numpy())
            expanded = pd.DataFrame(values, columns=[f"x{i}" for i in range(values.shape[1])], index=frame.index)
            frame = pd.concat([frame.drop(columns=["input"]), expanded], axis=1)
        columns = {c[len("input."):] if c.startswith("input.") else c: c for c in frame.columns}
        wanted = list((self.feature_priors or {}).get("features", {})) or [
            k for k, c in columns.items() if c not in (label_column, prediction_column, "probabilities")]
        features = frame[[columns[k] for k in wanted if k in columns]].copy()
        features.columns = [k for k in wanted if k in columns]
        preds = None
        if "probabilities" in frame.columns and frame["probabilities"].notna().all():
            preds = np.stack(frame["probabilities"].to_numpy())
        elif prediction_column in frame.columns:
            preds = frame[prediction_column].to_numpy()
        true = frame[label_column].to_numpy() if label_column and label_column in frame.columns else None
        return features, preds, true

    # --------------------------------------------------------------------------------------- live batches
    def submit_live_batch(self, features: Any, preds: Any = None, true: Any = None) -> None:
        """Add a batch to the window the metrics are computed over (the newest ``window`` records)."""
        n = len(features)
        preds = None if preds is None else np.asarray(preds)
        true = None if true is None else np.asarray(true)
        self._live.append((features, preds, true))
        self._live_rows += n
        self.batches += 1
        while self._live and self._live_rows - len(self._live[0][0]) >= self.window:
            self._live_rows -= len(self._live.popleft()[0])

    # ---------------------------------------------------------------------------------------------- drift
    def detect_feature_drift(self, features: Any) -> list[drift_mod.FeatureDrift]:
        """Test every feature of the priors against ``features`` (a DataFrame or dict of columns); flags by
        Holm's procedure at ``alpha`` (docs/monitoring.md). Recorded as metrics and ``monitor/drift_NNNN.json``."""
        if self.feature_priors is None:
            raise BlaseError("load the feature priors first (load_feature_priors).")
        results = []
        for name, prior in self.feature_priors["features"].items():
            if name not in features:
                continue
            values = np.asarray(features[name])
            result = self._test(name, prior, values)
            if result is not None:
                results.append(result)
        if not results:
            raise BlaseError(f"none of the priors' features ({', '.join(self.feature_priors['features'])}) is in the"
                             " live batch; check the column names.")
        drift_mod.holm(results, self.alpha)
        self.last_drift = results
        drifted = [r.feature for r in results if r.drifted]
        metrics = {"drift/share": len(drifted) / len(results), "drift/features": float(len(drifted))}
        for r in results:
            metrics[f"drift/{r.feature}/p"] = r.p_value
            metrics[f"drift/{r.feature}/{r.test}"] = r.statistic
        recording.metrics(metrics, iteration=self.batches)
        self._artifact(f"monitor/drift_{self.batches:04d}.json", {
            "batch": self.batches, "alpha": self.alpha, "correction": "holm", "drifted": drifted,
            "features": [r.as_dict() for r in sorted(results, key=lambda r: r.p_value)]})
        if drifted:
            recording.say("drift in %d of %d features: %s", len(drifted), len(results), ", ".join(drifted[:10]))
        return results

    def _test(self, name: str, prior: dict[str, Any], values: np.ndarray) -> drift_mod.FeatureDrift | None:
        if prior["type"] == "numeric":
            live = np.asarray(values, dtype=np.float64)
            live = live[np.isfinite(live)]
            if len(live) == 0:
                return None
            ref = self._refs.get(name)
            if ref is not None and len(ref):
                d, p = drift_mod.ks_test(ref, live)
                value, threshold = drift_mod.psi(ref, live, alpha=self.alpha)
                extra = {"psi": value, "psi_threshold": threshold, "wasserstein": drift_mod.wasserstein(ref, live)}
                return drift_mod.FeatureDrift(name, "ks", d, p, len(live), len(ref), extra=extra)
            edges = np.asarray(prior["histogram"]["edges"], dtype=np.float64)
            ref_counts = dict(enumerate(prior["histogram"]["counts"]))
            which = np.clip(np.searchsorted(edges, live, side="right") - 1, 0, len(edges) - 2)
            live_counts = dict(enumerate(np.bincount(which, minlength=len(edges) - 1).tolist()))
            stat, p, js = drift_mod.chi2_test(ref_counts, live_counts)
            return drift_mod.FeatureDrift(name, "chi2", stat, p, len(live), int(sum(ref_counts.values())),
                                          extra={"js": js})
        present = [str(v) for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))]
        if not present:
            return None
        from collections import Counter

        stat, p, js = drift_mod.chi2_test(prior["counts"], Counter(present))
        return drift_mod.FeatureDrift(name, "chi2", stat, p, len(present), int(sum(prior["counts"].values())),
                                      extra={"js": js})

    # ---------------------------------------------------------------------------------------- performance
    def track_performance_metrics(self) -> dict[str, float]:
        """Metrics over the window: measured with labels (accuracy, F1, log-loss, ROC AUC; MAE and RMSE for a
        regression), else estimated from the class probabilities (``estimated_accuracy``, ``estimated_f1``)."""
        task = (self.prediction_priors or {}).get("task", "classification")
        classes = (self.prediction_priors or {}).get("classes")
        preds = [p for _, p, _ in self._live if p is not None]
        if not preds:
            return {}
        pred = np.concatenate(preds)
        trues = [t for _, p, t in self._live if p is not None]
        have_truth = all(t is not None for t in trues)
        truth = np.concatenate(trues) if have_truth else None
        out: dict[str, float] = {"records": float(len(pred))}
        if task == "regression":
            if truth is not None:
                err = pred.astype(float) - truth.astype(float)
                out.update(mae=float(np.abs(err).mean()), rmse=float(np.sqrt((err ** 2).mean())))
        else:
            proba = pred if pred.ndim == 2 else None
            labels = (np.asarray(classes)[proba.argmax(axis=1)] if classes is not None else proba.argmax(axis=1)) \
                if proba is not None else pred
            if truth is not None:
                out.update(_measured(labels, truth, proba, classes))
            elif proba is not None:
                out.update(_estimated(proba, self._calibration()))
        self.last_performance = out
        recording.metrics({f"performance/{k}": v for k, v in out.items()}, iteration=self.batches)
        return out

    def _calibration(self) -> Any:
        cal = (self.prediction_priors or {}).get("calibration")
        if not cal:
            return None
        mids = [(c, a) for c, a in zip(cal["confidence"], cal["accuracy"], strict=True) if c is not None]
        if len(mids) < 2:
            return None
        conf, acc = np.array([m[0] for m in mids]), np.array([m[1] for m in mids])
        return lambda x: np.interp(x, conf, acc)

    # ------------------------------------------------------------------------------------------- triggers
    def check_triggers(self) -> bool:
        """Whether a retraining condition holds: the rules of ``[monitor.triggers]`` in blase.toml (or given to
        the constructor); why it fired is recorded and said."""
        rules = self._triggers if self._triggers is not None else recording.project_config_section("monitor", {}).get(
            "triggers", {})
        rules = {"drift_share": 0.3, **rules}
        self.fired = []
        if self._live_rows < int(rules.get("min_samples", self.min_samples)):
            return False
        if self.last_drift:
            share = sum(r.drifted for r in self.last_drift) / len(self.last_drift)
            if share >= float(rules["drift_share"]):
                self.fired.append(f"{share:.0%} of the features drifted (drift_share = {rules['drift_share']})")
            for name in rules.get("features", []):
                if any(r.feature == name and r.drifted for r in self.last_drift):
                    self.fired.append(f"feature {name} drifted")
        drop = rules.get("metric_drop")
        if drop is not None and self.last_performance and self.prediction_priors:
            reference = (self.prediction_priors.get("metrics") or {}).get("accuracy")
            now = self.last_performance.get("accuracy", self.last_performance.get("estimated_accuracy"))
            if reference is not None and now is not None and now < reference - float(drop):
                kind = "accuracy" if "accuracy" in self.last_performance else "estimated accuracy"
                self.fired.append(f"{kind} {now:.3f} is more than {drop} below the priors' {reference:.3f}")
        if self.fired:
            recording.say("trigger fired: %s", "; ".join(self.fired))
            recording.tags({"monitor.trigger": "; ".join(self.fired)})
            self._artifact(f"monitor/trigger_{self.batches:04d}.json", {"batch": self.batches, "why": self.fired})
        return bool(self.fired)

    def _artifact(self, name: str, data: dict[str, Any]) -> None:
        folder = recording.artifact_dir()
        if folder is None:
            return
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, default=float))


def _measured(labels: np.ndarray, truth: np.ndarray, proba: np.ndarray | None, classes: list[Any] | None
              ) -> dict[str, float]:
    f1s = []
    for k in np.unique(np.concatenate([np.unique(truth), np.unique(labels)])):
        tp = float(np.sum((labels == k) & (truth == k)))
        fp, fn = float(np.sum((labels == k) & (truth != k))), float(np.sum((labels != k) & (truth == k)))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    out = {"accuracy": float(np.mean(labels == truth)), "f1": float(np.mean(f1s))}
    try:
        from sklearn.metrics import log_loss, roc_auc_score
    except ImportError:  # the sklearn extra: log-loss and ROC AUC come with it
        return out
    if proba is not None and classes is not None:
        try:
            out["log_loss"] = float(log_loss(truth, proba, labels=classes))
            if len(classes) == 2:
                out["roc_auc"] = float(roc_auc_score(truth == classes[1], proba[:, 1]))
            else:
                out["roc_auc"] = float(roc_auc_score(truth, proba, multi_class="ovr", labels=classes))
        except ValueError:  # a window with one class only: no AUC
            pass
    return out


def _estimated(proba: np.ndarray, calibrate: Any) -> dict[str, float]:
    """Expected accuracy and macro F1 of the window, were the probabilities calibrated (CBPE): each record is
    right with the probability of its predicted class."""
    confidence = proba.max(axis=1)
    if calibrate is not None:
        confidence = np.clip(calibrate(confidence), 0, 1)
    predicted = proba.argmax(axis=1)
    f1s = []
    for k in range(proba.shape[1]):
        is_k = predicted == k
        tp = float(np.sum(proba[is_k, k]))
        fp = float(np.sum(1 - proba[is_k, k]))
        fn = float(np.sum(proba[~is_k, k]))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return {"estimated_accuracy": float(confidence.mean()), "estimated_f1": float(np.mean(f1s))}
