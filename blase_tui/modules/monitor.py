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

from blase_tui.core import plugins
from blase_tui.core.config import check_triggers
from blase_tui.core.plugins import PluginError, first_line
from blase_tui.errors import BlaseError
from blase_tui.modules import budget, estimates, monitor_plots, recording
from blase_tui.modules import drift as drift_mod
from blase_tui.modules import priors as priors_mod

if TYPE_CHECKING:
    from blase_tui.store.records import ModelVersionDetail

DEFAULT_WINDOW = 10_000  # live records the performance metrics are computed over
COPIES = 4  # how many times a batch is held at once while it is read and tested (measured: bench/monitor.py)


class Monitor:
    def __init__(self, alpha: float | None = None, window: int = DEFAULT_WINDOW, triggers: dict[str, Any] | None = None,
                 min_samples: int = 100, memory_budget: int | str | None = None, on_trigger: str | None = None,
                 tests: list[str] | None = None) -> None:
        config = recording.project_config_section("monitor", {}) if recording.active() else {}
        alpha = float(config.get("alpha", 0.05)) if alpha is None else alpha
        if not 0 < alpha < 1:
            raise BlaseError(f"alpha must be between 0 and 1, not {alpha!r}.")
        tests = config.get("tests", []) if tests is None else tests
        if isinstance(tests, str) or not isinstance(tests, list | tuple) or not all(isinstance(t, str) for t in tests):
            raise BlaseError(f"tests={tests!r}: give a list of drift test names from plugins (blase.monitors), such"
                             " as tests=[\"energy\"] or [monitor] tests = [\"energy\"] in blase.toml.")
        self._tests = {name: _drift_test(name) for name in tests}  # name -> the plugin's test (blase.monitors)
        recording.params("Monitor", alpha=alpha, window=window, **({"tests": list(tests)} if tests else {}))
        self.memory_budget = budget.resolve_budget(memory_budget)
        self.alpha = alpha
        self.window = window
        self.min_samples = min_samples
        self.feature_priors: dict[str, Any] | None = None
        self.prediction_priors: dict[str, Any] | None = None
        if triggers is not None:
            check_triggers(triggers, "Monitor(triggers=...)")
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
        self._said_gone: list[str] | None = None  # features whose column is not in the live data
        self._image_shape: tuple[int, ...] | None = None  # image priors: one record's shape
        self._embedding: dict[str, Any] | None = None  # image priors: the embedding's projection and sample
        self._embedder: Any = None
        self._embedding_off = False  # set while a drift report reads image logs (descriptors only)
        self._said_empty: list[str] | None = None
        self._calibrated: tuple[Any, estimates.Calibration | None] | None = None
        self._said_no_estimate = False
        self._said_unknown_trigger: set[str] = set()

    # ------------------------------------------------------------------------------------------------ priors
    def load_feature_priors(self, source: str | Path | dict[str, Any]) -> dict[str, Any]:
        """The reference for drift: a priors file (docs/monitoring.md) or a registered model whose training
        recorded them (``name``, ``name:3``, ``name@champion``)."""
        self.feature_priors = self._priors(source, "features")
        image = self.feature_priors.get("image") or {}
        self._image_shape = tuple(image["shape"]) if image.get("shape") else None
        self._embedding = self.feature_priors.get("embedding") if image.get("model") else None
        self._embedder = None  # the model of these priors, opened when first needed
        if self._image_shape is not None:
            recording.say("image priors: %d descriptors%s", len(self.feature_priors["features"]),
                          f" and the embedding of {image['model']}" if self._embedding else "")
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
            why = (f" (its input is {shape}: a model whose inputs hold more than 200 values a record, other than"
                   " images, gets prediction priors only)" if kind == "features" and int(np.prod(shape or [0])) > 200
                   else " (its training did not record them)")
            raise BlaseError(f"{row.name} v{row.version} has no {kind} priors{why}; give a priors file such as"
                             f" priors/{kind}.json.")
        return priors_mod.read(file, kind)

    @staticmethod
    def _recorded_instead(path: Path, kind: str) -> ModelVersionDetail | None:
        """For the seed's ``priors/features.json`` (and ``predictions.json``) when there is no such file: the
        registered model whose priors stand in, said in one line: the champion, else the version the newest
        prediction log names (the one being served), else the newest version."""
        if path.exists() or path.is_absolute() or path.name != f"{kind}.json":
            return None
        try:
            versions = recording.model_versions()
        except BlaseError:  # outside a project
            return None
        if not versions:
            return None
        champions = [v for v in versions if "champion" in v.aliases]
        served = _served_version()
        logged = [v for v in versions if (v.name, v.version) == served]
        chosen = max(champions or logged or versions, key=lambda v: (v.created or 0, v.version))
        recording.say("%s does not exist; using the %s priors %s v%d recorded (%s)", path, kind, chosen.name,
                      chosen.version, "its champion" if champions else "the version the prediction log names"
                      if logged else "the newest registered model")
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
        if self._image_shape is not None:  # an image model's log: each record holds its image until described
            width += int(np.prod(self._image_shape))
        per_record = 8 * (width + 4) * COPIES
        return budget.records_per_batch(per_record, self.memory_budget, min_rows=1000, max_rows=1_000_000)

    def _split(self, frame: Any, label_column: str | None, prediction_column: str, key: str | None = None
               ) -> tuple[Any, Any, Any]:
        """A live DataFrame as ``(features, preds, true)``: the prediction log's ``input.<name>`` columns are the
        features; its ``probabilities`` (else ``prediction``) the predictions."""
        wanted_names = list((self.feature_priors or {}).get("features", {}))
        if self._image_shape is not None and "input" in frame.columns:
            frame = self._image_features(frame)
        elif "input" in frame.columns and wanted_names and wanted_names[0] not in frame.columns:
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
        embedded = [c for c in frame.columns if str(c).startswith("embedding.")]
        if embedded:  # an image model's embedding: tested together (MMD), not as features of the priors
            features = features.join(frame[embedded])
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

    def _image_features(self, frame: Any) -> Any:
        """The prediction log of an image model: its flattened ``input`` read back as images, turned into the
        descriptors of the priors and (``embedding.<i>`` columns) the model's embedding in the priors' PCA."""
        import pandas as pd

        from blase_tui.modules import image_priors

        assert self._image_shape is not None
        values = np.stack(frame["input"].to_numpy())
        size = int(np.prod(self._image_shape))
        if values.ndim != 2 or values.shape[1] != size:
            model = (self.feature_priors or {}).get("image", {}).get("model", "the model")
            raise BlaseError(f"the live records' input holds {values.shape[1] if values.ndim == 2 else '?'} values"
                             f" a record, where the image priors of {model} are images of shape"
                             f" {list(self._image_shape)} ({size} values): this log is of another model; monitor"
                             f" the prediction log of {model} (predictions/<its name>).")
        images = values.reshape(len(values), *self._image_shape)
        described = pd.DataFrame(image_priors.descriptors(images), index=frame.index)
        if self._embedding is not None and not self._embedding_off:
            # the MMD test takes up to MMD_LIVE records: only those go through the model (a seeded choice)
            pick = np.arange(len(images))
            if len(pick) > drift_mod.MMD_LIVE:
                pick = np.sort(np.random.default_rng(self.batches).choice(len(pick), drift_mod.MMD_LIVE, replace=False))
            embedded = self._embed(images[pick])
            if embedded is not None:
                rows = np.full((len(images), embedded.shape[1]), np.nan)
                rows[pick] = embedded
                described = pd.concat([described, pd.DataFrame(
                    rows, columns=[f"embedding.{i}" for i in range(rows.shape[1])], index=frame.index)], axis=1)
        return pd.concat([frame.drop(columns=["input"]), described], axis=1)

    def _embed(self, images: np.ndarray) -> np.ndarray | None:
        """``images`` through the model the image priors name, in the priors' PCA coordinates."""
        from blase_tui.models.frameworks import open_model
        from blase_tui.modules import image_priors

        assert self._embedding is not None and self.feature_priors is not None
        if self._embedder is None:
            ref = self.feature_priors["image"]["model"]
            row = recording.model_version(ref)
            adapter = open_model(Path(row.path), row.framework, row.file_name, None)
            self._embedder = getattr(adapter, "embed", None) or (lambda x: None)
        parts = [self._embedder(images[i:i + 256]) for i in range(0, len(images), 256)]
        if not parts or any(p is None for p in parts):
            return None
        return image_priors.project(np.concatenate(parts), self._embedding)

    def _embedding_drift(self, features: Any) -> list[drift_mod.FeatureDrift]:
        """The MMD test of the live embeddings against the priors' sample (image priors only)."""
        columns = [c for c in getattr(features, "columns", []) if str(c).startswith("embedding.")]
        if self._embedding is None or not columns:
            return []
        live = np.asarray(features[columns], dtype=np.float64)
        live = live[np.isfinite(live).all(axis=1)]
        if len(live) < 2:
            return []
        return [drift_mod.mmd_result("embedding", np.asarray(self._embedding["sample"]), live,
                                     float(self._embedding["bandwidth"]))]

    def _prediction_drift(self, features: Any) -> list[drift_mod.FeatureDrift]:
        """What the model answered for these records (``submit_live_batch``'s preds) against the prediction
        priors: the predicted class shares (chi-squared, ``prediction.class``) and, with probabilities, the
        confidence (KS on the logit of the top probability, ``prediction.confidence``)."""
        priors = self.prediction_priors or {}
        preds = next((p for f, p, _ in reversed(self._live) if f is features), None)
        if preds is None or priors.get("task", "classification") != "classification" or not priors.get("class_counts"):
            return []
        preds = np.asarray(preds)
        out = []
        if preds.ndim == 2:
            classes = priors.get("classes")
            index, logits = estimates.top_logit(preds)
            labels = np.asarray(classes, dtype=object)[index] if classes else index
            sample = ((priors.get("calibration") or {}).get("sample") or {}).get("logit")
            if sample and priors.get("split") != "train":  # the training records: more confident than new ones
                d, p = drift_mod.ks_test(np.sort(np.asarray(sample, dtype=np.float64)), logits)
                out.append(drift_mod.FeatureDrift("prediction.confidence", "ks", d, p, len(logits), len(sample)))
        else:
            labels = preds
        counts: dict[Any, float] = {}
        for label in map(str, labels):
            counts[label] = counts.get(label, 0) + 1
        stat, p, js = drift_mod.chi2_test(priors["class_counts"], counts)
        out.append(drift_mod.FeatureDrift("prediction.class", "chi2", stat, p, len(labels),
                                          int(sum(priors["class_counts"].values())), extra={"js": js}))
        return out

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
        live, missing = self._accumulators(), self._missing_accumulators()
        for name, acc in live.items():
            if name in features:
                column = np.asarray(features[name])
                missing[name].add(column)
                acc.add(column)
        present = {name for name in live if name in features}
        results = self._decide(live, features, missing=missing, present=present,
                               extra=self._embedding_drift(features) + self._prediction_drift(features))
        self.last_drift = results
        self._last_live = live
        self._plot_at_end()
        self.history.append({"batch": self.batches, "drifted": _drifted(results),
                             "p": {_label(r): r.p_value for r in results}, "n": max(r.n for r in results)})
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
        live, missing = self._accumulators(), self._missing_accumulators()
        own = isinstance(executor, str)
        if own:  # an executor by name outside a step: started here, closed at the end
            from blase_tui.core import plugins

            executor = plugins.load("executors", executor, what=f"executor {executor!r}")(
                {"workers": workers} if workers else {}, memory_budget=self.memory_budget)
        elif executor is None and (isinstance(source, str | Path) or source is None):
            executor = recording.executor()  # `blase step ... --executor dask`, or [executor] of blase.toml
        try:
            seen = self._report_on(live, missing, source, batch_rows, executor)
        finally:
            if own:
                executor.close()
        if seen is None:
            raise BlaseError(f"{source} holds no records: nothing to report on.")
        results = self._decide(live, seen, missing=missing, present=set(seen) & set(live))
        self._record(results, prefix="report", artifact="monitor/report.json", iteration=None)
        folder = recording.artifact_dir()
        if folder is not None:
            (folder / "monitor").mkdir(parents=True, exist_ok=True)
            monitor_plots.distributions(results, live, folder / "monitor" / "report_distributions.png",
                                        title=f"reference vs all {max(r.n for r in results):,} live records")
        return results

    def _report_on(self, live: dict[str, Any], missing: dict[str, drift_mod.MissingLive], source: Any,
                   batch_rows: int | None, executor: Any) -> list[str] | None:
        """Feed everything in ``source`` to the ``live`` and ``missing`` accumulators, on ``executor``'s workers
        (whole files each) when there is one and more than one file; returns the names of the features that
        came (None when no record did)."""
        seen: Any = None
        files = _data_files(Path(source) if source is not None else recording.project_root() / "predictions") \
            if executor is not None else []
        if executor is not None and len(files) > 1:
            # each worker reduces whole files to counts on the reference grid; the counts add up exactly
            per_worker = budget.records_per_batch(8 * (len(live) + 4) * COPIES,
                                                  budget.per_worker(self.memory_budget, executor.workers),
                                                  min_rows=1000, max_rows=1_000_000)
            task = functools.partial(_report_counts, self._for_workers(), batch_rows or per_worker)
            bar = recording.progress("drift report", total=len(files), unit="files")
            for part, part_missing, part_seen in executor.map(task, files, what="the drift counts of"):
                for name, acc in part.items():
                    live[name].merge(acc)
                    missing[name].merge(part_missing[name])
                if part_seen is not None:
                    seen = sorted(set(seen or []) | set(part_seen))
                bar.update(1)
            bar.close()
        elif source is None or isinstance(source, str | Path):  # files: read column by column, no DataFrame
            seen = self._report_files(live, missing, source, batch_rows)
        else:
            for features, _, _ in self.stream_batches(source, batch_rows=batch_rows):
                seen = sorted(set(seen or []) | {name for name in live if name in features})
                for name, acc in live.items():
                    if name in features:
                        _count(acc, missing[name], np.asarray(features[name]))
                _count_absent(missing, features, len(features))
        return seen

    def _report_files(self, live: dict[str, Any], missing: dict[str, drift_mod.MissingLive], source: str | Path | None,
                      batch_rows: int | None) -> Any:
        """The drift report over a folder (or file) of Parquet/CSV files, at about the speed of reading them:
        each batch's feature columns go from Arrow straight to numpy arrays (no DataFrame; a float column
        without nulls is not even copied), and are counted by a thread per core (NumPy counts without the GIL)
        while the next batch is read. Counts are added in file and batch order, whatever the threads: the same
        as ``stream_batches`` gives. Returns the features seen (None when no record came)."""
        import importlib
        from concurrent.futures import ThreadPoolExecutor

        folder = Path(source) if source is not None else recording.project_root() / "predictions"
        if not folder.exists():
            raise BlaseError(f"{folder} does not exist: nothing to monitor yet (serve a model with `blase serve`,"
                             " or give the folder of live data files).")
        files = _data_files(folder)
        if not files:
            raise BlaseError(f"{folder} holds no Parquet or CSV files yet.")
        recording.params("stream_batches", source=str(folder), follow=False)
        rows = batch_rows or self._batch_rows()
        seen: list[str] | None = None
        # a thread per CPU, as many as a quarter of the budget holds the temporaries of (8 MiB each)
        threads = max(1, min(len(live), _cpus(), self.memory_budget // 4 // drift_mod.CHUNK_BYTES))
        with ThreadPoolExecutor(threads, thread_name_prefix="blase-drift") as pool:
            # the p-values' module (scipy.special: ~0.2 s to import, a fifth of the report) loads while the
            # first batch is read; an error there is raised where the p-values import it
            pool.submit(importlib.import_module, "scipy.special")
            counting: list[Any] = []
            for path in files:
                for records, columns in self._feature_columns(path, rows):
                    for task in counting:  # the previous batch counted (one in flight: its memory, no more)
                        task.result()
                    if not records:
                        counting = []
                        continue
                    seen = sorted(set(seen or []) | set(columns))
                    # the one place a batch's values reach the accumulators: per feature of the priors that the
                    # file has, ``values`` is its column as a numpy array (float64 for a float column, object
                    # for strings, NaN / None where missing)
                    counting = [pool.submit(_count, live[name], missing[name], values)
                                for name, values in columns.items()]
                    _count_absent(missing, columns, records)
            for task in counting:
                task.result()
        return seen

    def _feature_columns(self, path: Path, rows: int) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """``path``'s batches of at most ``rows`` records as ``(records, {feature: values})``, for the priors'
        features the file has (as such or ``input.<name>``, as ``_split`` names them). Parquet: only those
        columns are read, and converted by Arrow; CSV, and a prediction log whose input is one vector column,
        go through the DataFrame (``_split``)."""
        wanted = list((self.feature_priors or {}).get("features", {}))
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            try:
                file = pq.ParquetFile(path, pre_buffer=False)  # pre-buffering reads whole row groups ahead
            except (OSError, ValueError) as exc:
                raise BlaseError(f"{path} is not a readable Parquet file ({str(exc).splitlines()[0][:200]}); fix"
                                 " it or move it out of the folder.") from exc
            with file:
                names = file.schema_arrow.names
                self._schema_columns = names
                columns = {c[len("input."):] if c.startswith("input.") else c: c for c in names}
                if not ("input" in names and wanted and wanted[0] not in columns):
                    where = {name: columns[name] for name in wanted if name in columns}
                    try:
                        for batch in file.iter_batches(batch_size=rows, columns=list(dict.fromkeys(where.values()))):
                            yield batch.num_rows, {name: batch.column(column).to_numpy(zero_copy_only=False)
                                                   for name, column in where.items()}
                    except (OSError, ValueError) as exc:
                        raise BlaseError(f"{path} is not a readable Parquet file ({str(exc).splitlines()[0][:200]});"
                                         " fix it or move it out of the folder.") from exc
                    return
        for frame in _read_batches(path, rows, self._columns(path, None, "prediction", None)):
            self._embedding_off = True  # the report tests the descriptors; the embedding is the batches' (MMD)
            try:
                features, _, _ = self._split(frame, None, "prediction")
            finally:
                self._embedding_off = False
            yield len(features), {name: np.asarray(features[name]) for name in features.columns
                                  if name in wanted}

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
        slim._embedder, slim._calibrated = None, None  # a loaded model need not pickle; workers report no estimate
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

    def _missing_accumulators(self) -> dict[str, drift_mod.MissingLive]:
        """Per feature: how many live values are missing, against the share the priors recorded."""
        features = (self.feature_priors or {}).get("features", {})
        return {name: drift_mod.MissingLive(int(p.get("missing") or 0),
                                            int(p.get("count") or 0) + int(p.get("missing") or 0))
                for name, p in features.items()}

    def _decide(self, live: dict[str, Any], features: Any, *, missing: dict[str, drift_mod.MissingLive],
                present: set[str], extra: list[drift_mod.FeatureDrift] | None = None) -> list[drift_mod.FeatureDrift]:
        """One test per feature with live values, one of its missing share wherever a value was missing in the
        priors or live, a flag for each feature ``present`` does not hold (a column gone), and ``extra`` (the
        embedding, the predictions); all decided together by Holm's procedure."""
        if not present:  # no feature of the priors among the live columns: a naming mistake, not drift everywhere
            given = self._schema_columns or self._live_columns or [str(c) for c in list(features)]
            names = ", ".join(self.feature_priors["features"]) if self.feature_priors else ""
            raise BlaseError(f"none of the priors' features ({names[:200]}) has values in the live data; check the"
                             f" column names (live: {', '.join(given[:10]) or 'none'}).")
        gone = [name for name in live if name not in present]
        results = [acc.result(name, self.alpha) for name, acc in live.items() if acc.n]
        results += self._plugin_tests(live)
        results += extra or []
        results += [drift_mod.absent(name, missing[name].reference_total) for name in gone]
        results += [m.result(name) for name, m in missing.items() if name not in gone and m.informative()]
        if gone and gone != self._said_gone:
            self._said_gone = gone
            recording.say("%s: not in the live data (a column gone); flagged as drift",
                          ", ".join(gone[:10]) + (", ..." if len(gone) > 10 else ""))
        empty = [name for name, m in missing.items() if m.n and m.missing == m.n and name not in gone]
        if empty and empty != self._said_empty:
            self._said_empty = empty
            recording.say("every live value of %s is missing", ", ".join(empty[:10]))
        return drift_mod.holm(results, self.alpha)

    def _plugin_tests(self, live: dict[str, Any]) -> list[drift_mod.FeatureDrift]:
        """Each drift test of ``tests`` (plugins) on each feature with live values: one more hypothesis each."""
        out = []
        for test, fn in self._tests.items():
            for name, acc in live.items():
                if not acc.n:
                    continue
                reference, seen = acc.distributions()
                try:
                    answer = fn(reference, seen)
                    if answer is None:  # the test does not apply to this kind of feature
                        continue
                    statistic, p_value = (float(v) for v in answer)
                except Exception as exc:
                    raise PluginError(f"the drift test {test!r} (a plugin) failed on feature {name}: "
                                      f"{type(exc).__name__}: {first_line(exc)}; fix the plugin or leave {test!r} out"
                                      " of Monitor(tests=...) / [monitor] tests.") from exc
                if not (0.0 <= p_value <= 1.0) or not np.isfinite(statistic):
                    raise PluginError(f"the drift test {test!r} (a plugin) gave feature {name} the p-value {p_value!r}"
                                      f" and statistic {statistic!r}; a p-value is a number from 0 to 1 and a"
                                      " statistic a finite number: fix the plugin.")
                out.append(drift_mod.FeatureDrift(name, test, statistic, p_value, acc.n, reference.n,
                                                  extra={"plugin": 1.0}))
        return out

    def _record(self, results: list[drift_mod.FeatureDrift], *, prefix: str, artifact: str,
                iteration: int | None) -> None:
        inputs = [r for r in results if not _of_predictions(r)]
        drifted, tested = _drifted(inputs), {r.feature for r in inputs}
        answers = _drifted([r for r in results if _of_predictions(r)])
        metrics = {f"{prefix}/share": len(drifted) / max(len(tested), 1), f"{prefix}/features": float(len(drifted))}
        for r in results:
            if r.extra.get("plugin"):  # a plugin's test beside the built-in one: its own names
                metrics[f"{prefix}/{r.feature}/{r.test}_p"] = r.p_value
                metrics[f"{prefix}/{r.feature}/{r.test}"] = r.statistic
            elif r.test == "missing":
                metrics[f"{prefix}/{r.feature}/missing_p"] = r.p_value
                metrics[f"{prefix}/{r.feature}/missing_share"] = r.extra.get("missing_share", 0.0)
            else:
                metrics[f"{prefix}/{r.feature}/p"] = r.p_value
                metrics[f"{prefix}/{r.feature}/{r.test}"] = r.statistic
        recording.metrics(metrics, iteration=iteration)
        self._artifact(artifact, {
            "batch": self.batches, "alpha": self.alpha, "correction": "holm", "drifted": drifted,
            "predictions_drifted": answers,
            "records": max(r.n for r in results), "missing": sorted({r.feature for r in results
                                                                     if r.test == "missing" and r.drifted}),
            "features": [r.as_dict() for r in sorted(results, key=lambda r: r.p_value)]})
        if drifted:
            named = [_label(r) for r in sorted(inputs, key=lambda r: r.p_value) if r.drifted]
            recording.say("drift in %d of %d features: %s%s", len(drifted), len(tested),
                          ", ".join(named[:10]) + (", ..." if len(named) > 10 else ""),
                          f"; the predictions moved too ({', '.join(answers)})" if answers else "")
        elif answers:
            recording.say("the predictions moved (%s), the features did not", ", ".join(answers))

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
            if proba is not None and not known.all() and self._may_estimate():
                out.update(estimates.estimate(proba, self._calibration()))
        self.last_performance = out
        self.performance_history.append({"batch": self.batches, **out})
        self._plot_at_end()
        recording.metrics({f"performance/{k}": v for k, v in out.items()}, iteration=self.batches)
        return out

    def _may_estimate(self) -> bool:
        """Whether the prediction priors can calibrate an estimate: not when they come from the records the model
        was trained on (a training without a validation split), which it gets right more often than new ones:
        said once, and no estimate rather than an optimistic one."""
        split = (self.prediction_priors or {}).get("split")
        if split != "train":
            return True
        if not self._said_no_estimate:
            self._said_no_estimate = True
            recording.say("no performance estimate: the prediction priors come from the records the model was"
                          " trained on (no validation split), which it gets right more often than new ones;"
                          " evaluate it on held-out records (Evaluate.evaluate_live) or train with a validation"
                          " split to calibrate one")
        return False

    def _calibration(self) -> estimates.Calibration | None:
        """The prediction priors' calibration, fitted (with its bootstrap) once per priors loaded."""
        if self._calibrated is None or self._calibrated[0] is not self.prediction_priors:
            self._calibrated = (self.prediction_priors, estimates.Calibration.from_priors(self.prediction_priors))
        return self._calibrated[1]

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
            inputs = [r for r in self.last_drift if not _of_predictions(r)]
            share = len(_drifted(inputs)) / max(len({r.feature for r in inputs}), 1)
            if share >= float(rules["drift_share"]):
                self.fired.append(f"{share:.0%} of the features drifted (drift_share = {rules['drift_share']})")
            known = set((self.feature_priors or {}).get("features", {})) | {r.feature for r in self.last_drift}
            for name in rules.get("features", []):
                if name not in known and name not in self._said_unknown_trigger:
                    self._said_unknown_trigger.add(name)
                    recording.say("trigger features: %r is not a feature of the priors (they are %s); it can"
                                  " never fire", name, ", ".join(sorted(known)[:12]))
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


def _served_version() -> tuple[str, int] | None:
    """The model and version the newest file of the project's prediction log names (what is being served)."""
    try:
        files = _data_files(recording.project_root() / "predictions")
    except (BlaseError, OSError):
        return None
    parquet = [p for p in files if p.suffix == ".parquet"]
    if not parquet:
        return None
    import pyarrow.parquet as pq

    newest = max(parquet, key=lambda p: (p.stat().st_mtime_ns, str(p)))
    try:
        table = pq.read_table(newest, columns=["model", "version"])
    except (OSError, ValueError, KeyError):  # not a prediction log of ``blase serve``
        return None
    if not table.num_rows or table.column("version")[0].as_py() is None:
        return None
    return str(table.column("model")[0].as_py()), int(table.column("version")[0].as_py())


def _drift_test(name: str) -> Any:
    """The drift test a plugin provides as ``name`` (``blase.monitors``), gated by ``[plugins] enabled``."""
    fn = plugins.load("monitors", name, what=f"the drift test {name!r}")
    if not callable(fn):
        raise PluginError(f"the drift test {name!r} is not callable ({type(fn).__name__}); a blase.monitors entry"
                          " point names a function test(reference, live) -> (statistic, p_value).")
    return fn


def _drifted(results: list[drift_mod.FeatureDrift]) -> list[str]:
    """The features flagged, each once (a feature can be flagged for its values and for its missing share)."""
    return list(dict.fromkeys(r.feature for r in results if r.drifted))


def _of_predictions(result: drift_mod.FeatureDrift) -> bool:
    """A test of what the model answered (``prediction.class``, ``prediction.confidence``), not of its inputs:
    reported and decided in the same family, left out of the features' drift share."""
    return result.feature.startswith("prediction.")


def _label(result: drift_mod.FeatureDrift) -> str:
    if result.extra.get("plugin"):
        return f"{result.feature} ({result.test})"
    if result.test != "missing":
        return result.feature
    return f"{result.feature} (gone)" if result.extra.get("absent") else f"{result.feature} (missing)"


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


def _report_counts(monitor: Monitor, rows: int, path: Path) -> tuple[dict[str, Any], dict[str, Any], list[str] | None]:
    """One file reduced to the drift report's counts, missing values and the features it has (run by an
    executor's worker), read as ``_report_files`` reads it (Arrow columns to numpy)."""
    live, missing = monitor._accumulators(), monitor._missing_accumulators()
    seen: set[str] | None = None
    for records, columns in monitor._feature_columns(path, rows):
        if records:
            seen = (seen or set()) | set(columns)
        for name, values in columns.items():  # as in _report_files: each feature's column as a numpy array
            _count(live[name], missing[name], values)
        _count_absent(missing, columns, records)
    return live, missing, None if seen is None else sorted(seen)


def _count_absent(missing: dict[str, drift_mod.MissingLive], columns: Any, records: int) -> None:
    """Records of a file without a feature's column: each is missing that feature (a column gone from some
    files only shows as a rise in its missing share; gone from all, it is flagged as gone)."""
    for name, counter in missing.items():
        if name not in columns:
            counter.missing += records
            counter.n += records


def _count(acc: Any, missing: drift_mod.MissingLive, values: np.ndarray) -> None:
    """A feature's live values into its accumulator and its missing count."""
    missing.add(values)
    acc.add(values)


def _cpus() -> int:
    """The CPUs this process may run on (the drift report counts on a thread per CPU)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


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
