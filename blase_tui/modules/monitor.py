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

import functools
import json
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blase_tui.errors import BlaseError
from blase_tui.modules import budget, monitor_plots, recording
from blase_tui.modules import drift as drift_mod
from blase_tui.modules import priors as priors_mod

if TYPE_CHECKING:
    from blase_tui.store.records import ModelVersionDetail

DEFAULT_WINDOW = 10_000  # live records the performance metrics are computed over
COPIES = 4  # how many times a batch is held at once while it is read and tested (measured: bench/monitor.py)


class Monitor:
    def __init__(self, alpha: float | None = None, window: int = DEFAULT_WINDOW, triggers: dict[str, Any] | None = None,
                 min_samples: int = 100, memory_budget: int | str | None = None, on_trigger: str | None = None) -> None:
        config = recording.project_config_section("monitor", {}) if recording.active() else {}
        alpha = float(config.get("alpha", 0.05)) if alpha is None else alpha
        if not 0 < alpha < 1:
            raise BlaseError(f"alpha must be between 0 and 1, not {alpha!r}.")
        recording.params("Monitor", alpha=alpha, window=window)
        self.memory_budget = budget.resolve_budget(memory_budget)
        self.alpha = alpha
        self.window = window
        self.min_samples = min_samples
        self.feature_priors: dict[str, Any] | None = None
        self.prediction_priors: dict[str, Any] | None = None
        self._triggers = triggers
        self.on_trigger = on_trigger if on_trigger is not None else config.get("on_trigger")
        self.launched: Any = None  # the step on_trigger started (core.launch.LaunchedStep)
        self._live: deque[tuple[Any, np.ndarray | None, np.ndarray | None]] = deque()
        self._live_rows = 0
        self.batches = 0
        self.last_drift: list[drift_mod.FeatureDrift] = []
        self.last_performance: dict[str, float] = {}
        self.fired: list[str] = []
        self._labels: _Labels | None = None
        self._last_live: dict[str, Any] = {}
        self._plots_registered = False
        self.history: list[dict[str, Any]] = []  # per drift test: batch, drifted features, p-values
        self.performance_history: list[dict[str, float]] = []
        self._refs: dict[str, drift_mod.NumericReference] = {}
        # to name in errors: the columns the live file has (only some are read), else those of the live frame
        self._schema_columns: list[str] | None = None
        self._live_columns: list[str] | None = None
        self._said_absent: list[str] | None = None  # features without live values, said once, not per batch

    # ------------------------------------------------------------------------------------------------ priors
    def load_feature_priors(self, source: str | Path | dict[str, Any]) -> dict[str, Any]:
        """The reference for drift: a priors file (docs/monitoring.md) or a registered model whose training
        recorded them (``name``, ``name:3``, ``name@champion``)."""
        self.feature_priors = self._priors(source, "features")
        self._refs = {name: drift_mod.NumericReference(p["sample"])
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
        fallback = self._recorded_instead(path, kind)
        if fallback is None and (path.suffix == ".json" or path.exists() or "/" in str(source)):
            data = priors_mod.read(path, kind)
            recording.dataset(path, role="input")
            return data
        row = fallback or recording.model_version(str(source))
        # prediction priors: the newest evaluation's (the test split), else training's (the validation split)
        file = recording.evaluated_artifact(row, f"priors/{kind}.json") if kind == "predictions" else None
        file = file or recording.model_artifact(row, f"priors/{kind}.json")
        if file is None:
            shape = ((row.card or {}).get("input") or {}).get("shape") or []
            why = (f" (its input is {shape}: a model whose inputs hold more than 200 values a record, such as images,"
                   " gets prediction priors only)" if kind == "features" and int(np.prod(shape or [0])) > 200
                   else " (its training did not record them)")
            raise BlaseError(f"{row.name} v{row.version} has no {kind} priors{why}; give a priors file such as"
                             f" priors/{kind}.json.")
        return priors_mod.read(file, kind)

    @staticmethod
    def _recorded_instead(path: Path, kind: str) -> ModelVersionDetail | None:
        """For the seed's ``priors/features.json`` (and ``predictions.json``) when there is no such file: the
        registered model whose priors stand in (the champion, else the newest version), said in one line."""
        if path.exists() or path.is_absolute() or path.name != f"{kind}.json":
            return None
        try:
            versions = recording.model_versions()
        except BlaseError:  # outside a project
            return None
        if not versions:
            return None
        champions = [v for v in versions if "champion" in v.aliases]
        chosen = max(champions or versions, key=lambda v: (v.created or 0, v.version))
        recording.say("%s does not exist; using the %s priors %s v%d recorded (%s)", path, kind, chosen.name,
                      chosen.version, "its champion" if champions else "the newest registered model")
        return recording.model_version(chosen.ref)

    # ------------------------------------------------------------------------------------------- the stream
    def stream_batches(self, source: str | Path | Iterable[Any] | None = None, *, label_column: str | None = None,
                       prediction_column: str = "prediction", batch_rows: int | None = None, follow: bool = False,
                       idle_seconds: float | None = None, labels: str | Path | None = None, key: str | None = None
                       ) -> Iterator[tuple[Any, np.ndarray | None, np.ndarray | None]]:
        """``(features, preds, true)`` per batch: features a DataFrame of the priors' features, preds the
        predicted labels (or, from the prediction log, the class probabilities, one column per class), true the
        labels when the data has them (``label_column``), else None.

        ``source``: a folder of Parquet or CSV files (read in name order: seed 002's hourly files), the
        prediction log of ``blase serve`` (``predictions/<model>``; the default: the project's
        ``predictions/`` folder), or any iterable of such tuples or of DataFrames. Files are read in batches of
        ``batch_rows`` (by default what a quarter of the memory budget holds), never whole.

        ``follow=True``: once the files there are read, wait for new ones (watchdog) and yield each as it
        arrives, until ``idle_seconds`` pass without one (None: until the step is stopped).
        ``labels`` + ``key``: ground truth that arrives later, a CSV/Parquet file (or folder of them) with the
        ``key`` column and a label column (``label_column``, else ``label``), or ``"store"``: the project's
        labels (``blase label``). Records are joined by ``key`` (the features' index), and again whenever
        the file changes, so labels that come after their records still count."""
        if labels is not None:
            if key is None:
                raise BlaseError("labels= needs key=: the column that names a record in both the live data and"
                                 " the labels.")
            self._labels = _Labels(labels, key, label_column or "label", (self.prediction_priors or {}).get("classes"))
        if source is not None and not isinstance(source, str | Path):
            for item in source:
                if isinstance(item, tuple):
                    yield item
                else:
                    yield self._split(item, label_column, prediction_column, key)
            return
        folder = Path(source) if source is not None else recording.project_root() / "predictions"
        if not folder.exists():
            raise BlaseError(f"{folder} does not exist: nothing to monitor yet (serve a model with `blase serve`,"
                             " or give the folder of live data files).")
        if not follow and not _data_files(folder):
            raise BlaseError(f"{folder} holds no Parquet or CSV files yet.")
        recording.params("stream_batches", source=str(folder), follow=follow)
        rows = batch_rows or self._batch_rows()
        done: set[Path] = set()
        pending: list[Any] = []
        count = 0
        waiter = _FolderWaiter(folder) if follow else None
        try:
            while True:
                new = [p for p in _data_files(folder) if p not in done]
                if follow:
                    new = [p for p in new if _settled(p)]
                for path in new:
                    done.add(path)
                    for frame in _read_batches(path, rows, self._columns(path, label_column, prediction_column, key)):
                        # small files gather into one batch; a batch never exceeds `rows` (no copy of big ones)
                        if count and count + len(frame) > rows:
                            yield self._split(_concat(pending), label_column, prediction_column, key)
                            pending, count = [], 0
                        pending.append(frame)
                        count += len(frame)
                        if count >= rows:
                            yield self._split(_concat(pending), label_column, prediction_column, key)
                            pending, count = [], 0
                if count and (not follow or new):  # caught up with the folder: what has come is a batch
                    yield self._split(_concat(pending), label_column, prediction_column, key)
                    pending, count = [], 0
                if waiter is None or not waiter.wait(
                        idle_seconds, got_new=bool(new), unsettled=any(p not in done for p in _data_files(folder))):
                    break
        finally:
            if waiter is not None:
                waiter.close()

    def _columns(self, path: Path, label_column: str | None, prediction_column: str, key: str | None
                 ) -> list[str] | None:
        """The columns of ``path`` to read: the priors' features (as such or ``input.<name>``), the predictions,
        labels and key; all of them when there are no priors."""
        if self.feature_priors is None or path.suffix != ".parquet":
            return None
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(path).names
        except Exception:  # unreadable: _read_batches says so
            return None
        self._schema_columns = names
        wanted = set(self.feature_priors["features"]) | {label_column, prediction_column, key, "probabilities",
                                                             "input"}
        return [c for c in names if c in wanted or (c.startswith("input.") and c[6:] in wanted)]

    def _batch_rows(self) -> int:
        """Rows per batch from the memory budget: a quarter of it for the batch, at 8 bytes a value held
        ``COPIES`` times (the reader's Arrow batch, the DataFrame, the features, the tests' temporaries)."""
        width = len((self.feature_priors or {}).get("features", {})) or 20
        per_record = 8 * (width + 4) * COPIES
        return int(max(1000, min(1_000_000, budget.records_per_batch(per_record, self.memory_budget))))

    def _split(self, frame: Any, label_column: str | None, prediction_column: str, key: str | None = None
               ) -> tuple[Any, Any, Any]:
        """A live DataFrame as ``(features, preds, true)``: the prediction log's ``input.<name>`` columns are the
        features; its ``probabilities`` (else ``prediction``) the predictions."""
        wanted_names = list((self.feature_priors or {}).get("features", {}))
        if "input" in frame.columns and wanted_names and wanted_names[0] not in frame.columns:
            # a vector input logged whole (a model trained on npy shards): its values are the features x0, x1, ...
            import pandas as pd

            values = np.stack(frame["input"].to_numpy())
            expanded = pd.DataFrame(values, columns=[f"x{i}" for i in range(values.shape[1])], index=frame.index)
            frame = pd.concat([frame.drop(columns=["input"]), expanded], axis=1)
        self._live_columns = [str(c) for c in frame.columns]
        columns = {c[len("input."):] if c.startswith("input.") else c: c for c in frame.columns}
        wanted = list((self.feature_priors or {}).get("features", {})) or [
            k for k, c in columns.items() if c not in (label_column, prediction_column, "probabilities")]
        features = frame[[columns[k] for k in wanted if k in columns]]
        features.columns = [k for k in wanted if k in columns]
        preds = None
        if "probabilities" in frame.columns and frame["probabilities"].notna().all():
            preds = np.stack(frame["probabilities"].to_numpy())
        elif prediction_column in frame.columns:
            preds = frame[prediction_column].to_numpy()
        true = frame[label_column].to_numpy() if label_column and label_column in frame.columns else None
        if key is not None:
            if key not in frame.columns:
                raise BlaseError(f"the live data has no column {key!r} (key=); its columns:"
                                 f" {', '.join(map(str, frame.columns[:20]))}.")
            features.index = frame[key].to_numpy()
            if true is None and self._labels is not None:
                true = self._labels.lookup(features.index)
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
        live = self._accumulators()
        for name, acc in live.items():
            if name in features:
                acc.add(np.asarray(features[name]))
        results = self._decide(live, features)
        self.last_drift = results
        self._last_live = live
        self._plot_at_end()
        self.history.append({"batch": self.batches, "drifted": [r.feature for r in results if r.drifted],
                             "p": {r.feature: r.p_value for r in results}, "n": max(r.n for r in results)})
        self._record(results, prefix="drift", artifact=f"monitor/drift_{self.batches:04d}.json",
                     iteration=self.batches)
        return results

    def drift_report(self, source: str | Path | Iterable[Any] | None = None, *, batch_rows: int | None = None,
                     executor: Any = None, workers: int | None = None) -> list[drift_mod.FeatureDrift]:
        """One drift test per feature over *everything* in ``source`` (what ``stream_batches`` reads), streamed:
        each batch is reduced to counts on the reference's grid and dropped, so 10 million rows take the
        memory of one batch. Recorded as metrics ``report/...`` and the artifact ``monitor/report.json``.

        ``executor``: an executor a plugin adds (``"dask"``, with ``workers``), to reduce the files on its workers
        (whole files each; the counts add up to exactly what one process finds); in a step, by default the one
        ``blase step --executor`` or ``[executor]`` names."""
        live = self._accumulators()
        own = isinstance(executor, str)
        if own:  # an executor by name outside a step: started here, closed at the end
            from blase_tui.core import plugins

            executor = plugins.load("executors", executor, what=f"executor {executor!r}")(
                {"workers": workers} if workers else {}, memory_budget=self.memory_budget)
        elif executor is None and (isinstance(source, str | Path) or source is None):
            executor = recording.executor()  # `blase step ... --executor dask`, or [executor] of blase.toml
        try:
            seen = self._report_on(live, source, batch_rows, executor)
        finally:
            if own:
                executor.close()
        if seen is None:
            raise BlaseError(f"{source} holds no records: nothing to report on.")
        results = self._decide(live, seen)
        self._record(results, prefix="report", artifact="monitor/report.json", iteration=None)
        folder = recording.artifact_dir()
        if folder is not None:
            (folder / "monitor").mkdir(parents=True, exist_ok=True)
            monitor_plots.distributions(results, live, folder / "monitor" / "report_distributions.png",
                                        title=f"reference vs all {max(r.n for r in results):,} live records")
        return results

    def _report_on(self, live: dict[str, Any], source: Any, batch_rows: int | None, executor: Any) -> Any:
        """Feed everything in ``source`` to the ``live`` accumulators, on ``executor``'s workers (whole files
        each) when there is one and more than one file; returns something that is not None when any record came."""
        seen: Any = None
        files = _data_files(Path(source) if source is not None else recording.project_root() / "predictions") \
            if executor is not None else []
        if executor is not None and len(files) > 1:
            # each worker reduces whole files to counts on the reference grid; the counts add up exactly
            per_worker = int(max(1000, min(1_000_000, budget.records_per_batch(
                8 * (len(live) + 4) * COPIES, self.memory_budget // max(1, executor.workers)))))
            task = functools.partial(_report_counts, self._for_workers(), batch_rows or per_worker)
            bar = recording.progress("drift report", total=len(files), unit="files")
            for part in executor.map(task, files, what="the drift counts of"):
                for name, acc in part.items():
                    live[name].merge(acc)
                bar.update(1)
            bar.close()
            seen = list(live)
        else:
            for features, _, _ in self.stream_batches(source, batch_rows=batch_rows):
                seen = features
                for name, acc in live.items():
                    if name in features:
                        acc.add(np.asarray(features[name]))
        return seen

    def plot(self, folder: str | Path | None = None) -> list[Path]:
        """Write the PNGs (``drift.png``: drift per batch and feature; ``distributions.png``: reference vs the
        last batch for the features that moved most; ``performance.png``: metrics per batch) into ``folder``,
        else the step's ``monitor/`` artifacts. Done by itself when the monitor step ends."""
        artifacts = recording.artifact_dir()
        target = Path(folder) if folder is not None else artifacts / "monitor" if artifacts else Path("monitor")
        target.mkdir(parents=True, exist_ok=True)
        written = [
            monitor_plots.drift_over_time(self.history, self.alpha, target / "drift.png"),
            monitor_plots.distributions(self.last_drift, self._last_live, target / "distributions.png",
                                        title=f"reference vs batch {self.batches}"),
            monitor_plots.performance_over_time(self.performance_history,
                                                (self.prediction_priors or {}).get("metrics") or {},
                                                target / "performance.png"),
        ]
        return [p for p in written if p is not None]

    def _plot_at_end(self) -> None:
        if not self._plots_registered:
            self._plots_registered = recording.at_end(self.plot)

    def _for_workers(self) -> Monitor:
        """A copy with the priors only (what a worker needs), not the live window or history."""
        import copy

        slim = copy.copy(self)
        slim._live, slim._live_rows, slim._last_live, slim._labels = deque(), 0, {}, None
        slim.history, slim.performance_history, slim.last_drift = [], [], []
        return slim

    def _accumulators(self) -> dict[str, drift_mod.NumericLive | drift_mod.CountsLive]:
        if self.feature_priors is None:
            raise BlaseError("load the feature priors first (load_feature_priors).")
        out: dict[str, drift_mod.NumericLive | drift_mod.CountsLive] = {}
        for name, prior in self.feature_priors["features"].items():
            if name in self._refs:
                out[name] = drift_mod.NumericLive(self._refs[name])
            elif prior["type"] == "numeric":
                hist = prior["histogram"]
                out[name] = drift_mod.CountsLive(dict(enumerate(hist["counts"])), edges=hist["edges"])
            else:
                out[name] = drift_mod.CountsLive(prior["counts"])
        return out

    def _decide(self, live: dict[str, Any], features: Any) -> list[drift_mod.FeatureDrift]:
        results = [acc.result(name, self.alpha) for name, acc in live.items() if acc.n]
        given = self._schema_columns or self._live_columns or [str(c) for c in list(features)]
        if not results:
            names = ", ".join(self.feature_priors["features"]) if self.feature_priors else ""
            raise BlaseError(f"none of the priors' features ({names[:200]}) has values in the live data; check the"
                             f" column names (live: {', '.join(given[:10]) or 'none'}).")
        absent = [name for name, acc in live.items() if not acc.n]
        if absent and absent != self._said_absent:
            self._said_absent = absent
            recording.say("drift tested on %d of the %d features of the priors: the live data has no values for %s",
                          len(results), len(live), ", ".join(absent[:10]) + (", ..." if len(absent) > 10 else ""))
        return drift_mod.holm(results, self.alpha)

    def _record(self, results: list[drift_mod.FeatureDrift], *, prefix: str, artifact: str,
                iteration: int | None) -> None:
        drifted = [r.feature for r in results if r.drifted]
        metrics = {f"{prefix}/share": len(drifted) / len(results), f"{prefix}/features": float(len(drifted))}
        for r in results:
            metrics[f"{prefix}/{r.feature}/p"] = r.p_value
            metrics[f"{prefix}/{r.feature}/{r.test}"] = r.statistic
        recording.metrics(metrics, iteration=iteration)
        self._artifact(artifact, {
            "batch": self.batches, "alpha": self.alpha, "correction": "holm", "drifted": drifted,
            "records": max(r.n for r in results),
            "features": [r.as_dict() for r in sorted(results, key=lambda r: r.p_value)]})
        if drifted:
            recording.say("drift in %d of %d features: %s", len(drifted), len(results), ", ".join(drifted[:10]))

    # ---------------------------------------------------------------------------------------- performance
    def track_performance_metrics(self) -> dict[str, float]:
        """Metrics over the window: measured on the records with labels (accuracy, F1, log-loss, ROC AUC; MAE
        and RMSE for a regression), and estimated from the class probabilities when some or all have none
        (``estimated_accuracy``, ``estimated_f1``). Labels joined by key (``stream_batches(labels=...)``) are
        looked up again here, so those that arrived since count."""
        task = (self.prediction_priors or {}).get("task", "classification")
        classes = (self.prediction_priors or {}).get("classes")
        entries = [(f, p, t) for f, p, t in self._live if p is not None]
        if not entries:
            return {}
        if self._labels is not None:
            entries = [(f, p, self._labels.lookup(f.index) if t is None or _missing(t).any() else t)
                       for f, p, t in entries]
        pred = np.concatenate([p for _, p, _ in entries])
        truth = np.concatenate([np.full(len(p), None, dtype=object) if t is None else np.asarray(t, dtype=object)
                                for _, p, t in entries])
        known = ~_missing(truth)
        out: dict[str, float] = {"records": float(len(pred)), "labelled": float(known.sum())}
        if known.any():
            truth_known = np.asarray(truth[known].tolist())
        if task == "regression":
            if known.any():
                err = pred[known].astype(float) - truth_known.astype(float)
                out.update(mae=float(np.abs(err).mean()), rmse=float(np.sqrt((err ** 2).mean())))
        else:
            proba = pred if pred.ndim == 2 else None
            labels = (np.asarray(classes)[proba.argmax(axis=1)] if classes is not None else proba.argmax(axis=1)) \
                if proba is not None else pred
            if known.any():
                out.update(_measured(labels[known], truth_known, None if proba is None else proba[known], classes))
            if proba is not None and not known.all():
                out.update(_estimated(proba, self._calibration()))
        self.last_performance = out
        self.performance_history.append({"batch": self.batches, **out})
        self._plot_at_end()
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
        if self._triggers is None:  # blase.toml's, read once
            self._triggers = recording.project_config_section("monitor", {}).get("triggers", {})
        rules = self._triggers
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
            if self.on_trigger and self.launched is None:
                self.launched = recording.launch_step(self.on_trigger)
                recording.say("on_trigger: started `blase step %s` (pid %s); it takes the step's lock like any"
                              " run, so a copy already running is left alone", self.on_trigger, self.launched.pid)
                recording.tags({"monitor.launched": self.on_trigger})
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


def _report_counts(monitor: Monitor, rows: int, path: Path) -> dict[str, Any]:
    """One file reduced to the drift report's counts (run by an executor's worker)."""
    live = monitor._accumulators()
    for features, _, _ in monitor.stream_batches(path, batch_rows=rows):
        for name, acc in live.items():
            if name in features:
                acc.add(np.asarray(features[name]))
    return live


def _missing(values: np.ndarray) -> np.ndarray:
    import pandas as pd

    return np.asarray(pd.isna(pd.Series(np.asarray(values, dtype=object).ravel())))


# --------------------------------------------------------------------------------------------- reading files
DATA_SUFFIXES = (".parquet", ".csv")


def _data_files(folder: Path) -> list[Path]:
    """The Parquet and CSV files of ``folder`` (or ``folder`` itself), in name order; names starting with a dot
    (files being written, such as the prediction log's ``.part-...``) are left out."""
    if folder.is_file():
        return [folder]
    return sorted(p for p in folder.rglob("*") if p.suffix in DATA_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _settled(path: Path, age: float = 0.3) -> bool:
    """Whether ``path`` has not changed for ``age`` seconds (a file still being copied in is left for later)."""
    import time

    try:
        return time.time() - path.stat().st_mtime >= age
    except FileNotFoundError:
        return False


def _read_batches(path: Path, rows: int, columns: list[str] | None = None) -> Iterator[Any]:
    """``path`` as DataFrames of at most ``rows`` records (never the whole file in memory)."""
    import pandas as pd

    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            with pq.ParquetFile(path, pre_buffer=False) as file:  # pre-buffering reads whole row groups ahead
                for batch in file.iter_batches(batch_size=rows, columns=columns):
                    yield batch.to_pandas()
        else:
            with pd.read_csv(path, chunksize=rows) as reader:
                yield from reader
    except (OSError, ValueError) as exc:
        kind = "Parquet" if path.suffix == ".parquet" else "CSV"
        raise BlaseError(f"{path} is not a readable {kind} file ({str(exc).splitlines()[0][:200]}); fix it or move"
                         " it out of the folder.") from exc


def _concat(frames: list[Any]) -> Any:
    import pandas as pd

    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


class _FolderWaiter:
    """Wakes ``stream_batches(follow=True)`` when something changes in the folder (watchdog)."""

    def __init__(self, folder: Path) -> None:
        import threading
        import time

        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        self._event = threading.Event()
        self._clock = time.monotonic
        self._last_new = self._clock()
        handler = FileSystemEventHandler()
        handler.on_any_event = lambda event: self._event.set()  # type: ignore[method-assign]
        self._observer = Observer()
        self._observer.schedule(handler, str(folder), recursive=True)
        self._observer.start()

    def wait(self, idle_seconds: float | None, *, got_new: bool, unsettled: bool) -> bool:
        """Wait for a change; False once ``idle_seconds`` have passed since the last new file."""
        now = self._clock()
        if got_new:
            self._last_new = now
        if idle_seconds is not None and now - self._last_new >= idle_seconds:
            return False
        timeout = 0.25 if unsettled else None
        if idle_seconds is not None:
            left = self._last_new + idle_seconds - now
            timeout = left if timeout is None else min(timeout, left)
        self._event.wait(timeout)
        self._event.clear()
        return True

    def close(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)


class _Labels:
    """Ground truth that arrives after its records: a file (or folder) of ``key`` + label rows, or the
    project's label store (``"store"``), read again when it changes."""

    def __init__(self, source: str | Path, key: str, column: str, classes: list[Any] | None) -> None:
        self.source, self.key, self.column = source, key, column
        self._classes = {str(c): c for c in classes} if classes else None
        self._stamp: Any = None
        self._map: dict[str, Any] = {}

    def _refresh(self) -> None:
        if str(self.source) == "store":
            found = recording.project_labels()
        else:
            path = Path(self.source)
            files = _data_files(path) if path.exists() else []
            stamp = [(str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files]
            if stamp == self._stamp:
                return
            self._stamp = stamp
            found = {}
            for file in files:
                for frame in _read_batches(file, 1_000_000):
                    if self.key not in frame.columns or self.column not in frame.columns:
                        raise BlaseError(f"{file} needs the columns {self.key!r} and {self.column!r} (key= and"
                                         f" label_column=); it has {', '.join(map(str, frame.columns[:20]))}.")
                    frame = frame[frame[self.column].notna()]
                    found.update(zip(frame[self.key].astype(str), frame[self.column], strict=True))
        if self._classes is not None:
            found = {k: self._classes.get(str(v), self._classes.get(_number_text(v), v)) for k, v in found.items()}
        self._map = found

    def lookup(self, keys: Any) -> np.ndarray:
        self._refresh()
        return np.array([self._map.get(str(k)) for k in keys], dtype=object)


def _number_text(value: Any) -> str:
    """``1.0`` -> ``"1"``: a label read from a CSV column with gaps comes back as a float."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() else str(value)
