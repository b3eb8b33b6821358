"""Priors: what the training data and the model's predictions looked like, for ``Monitor`` to compare live data
with. Built while streaming (never the whole data in memory), written as JSON a user can also write by hand.

Feature priors (``features.json``)::

    {"format": 1, "kind": "features", "rows": 569,
     "features": {
       "age":   {"type": "numeric", "count": 569, "missing": 0, "mean": 41.2, "std": 9.8,
                 "quantiles": {"p1": ..., "p50": ..., "p99": ...},
                 "histogram": {"edges": [...], "counts": [...]},
                 "sample": [...]},                       # up to 10,000 values, a uniform sample (seeded)
       "color": {"type": "categorical", "count": 569, "missing": 3, "counts": {"red": 300, "blue": 266}}}}

A numeric feature needs ``sample`` for the KS test; with only ``histogram`` it is tested with chi-squared on
its bins. Prediction priors (``predictions.json``)::

    {"format": 1, "kind": "predictions", "task": "classification", "classes": [0, 1], "rows": 114,
     "class_counts": {"0": 42, "1": 72}, "metrics": {"accuracy": 0.96},
     "calibration": {"edges": [0.5, 0.6, ...], "confidence": [...], "accuracy": [...], "counts": [...]}}
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from blase_tui.errors import BlaseError
from blase_tui.modules.estimates import sample_pairs

FORMAT = 1
SAMPLE = 10_000  # reference values kept per numeric feature
MAX_CATEGORIES = 1000
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


class _NumericPrior:
    def __init__(self, seed: int) -> None:
        self.count = self.missing = 0
        self.total = 0.0
        self.m2 = 0.0
        self.mean = 0.0
        self.sample = np.empty(0)
        self.seen = 0  # values offered to the reservoir
        self.rng = np.random.default_rng(seed)

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64).ravel()
        ok = values[np.isfinite(values)]
        self.missing += len(values) - len(ok)
        if not len(ok):
            return
        n, b_mean = len(ok), float(ok.mean())
        b_m2 = float(((ok - b_mean) ** 2).sum())
        delta, total = b_mean - self.mean, self.count + n
        self.mean += delta * n / total
        self.m2 += b_m2 + delta * delta * self.count * n / total
        self.count = total
        # reservoir sampling by random keys: keep the SAMPLE values with the smallest keys (uniform, one pass)
        keys = self.rng.random(n)
        if not hasattr(self, "_keys"):
            self._keys = np.empty(0)
        merged_keys = np.concatenate([self._keys, keys])
        merged = np.concatenate([self.sample, ok])
        if len(merged) > SAMPLE:
            keep = np.argpartition(merged_keys, SAMPLE)[:SAMPLE]
            merged_keys, merged = merged_keys[keep], merged[keep]
        self._keys, self.sample = merged_keys, merged

    def to_json(self) -> dict[str, Any]:
        sample = np.sort(self.sample)
        out: dict[str, Any] = {"type": "numeric", "count": self.count, "missing": self.missing}
        if self.count:
            edges = np.unique(np.quantile(sample, np.linspace(0, 1, 21)))
            counts = np.histogram(sample, bins=edges)[0] if len(edges) > 1 else np.array([len(sample)])
            scale = self.count / max(len(sample), 1)
            out.update({
                "mean": self.mean, "std": math.sqrt(self.m2 / self.count),
                "quantiles": {f"p{int(q * 100)}": float(np.quantile(sample, q)) for q in QUANTILES},
                "histogram": {"edges": edges.tolist(), "counts": [float(c * scale) for c in counts]},
                "sample": sample.tolist(),
            })
        return out


class _CategoricalPrior:
    def __init__(self) -> None:
        self.count = self.missing = 0
        self.counts: Counter[str] = Counter()

    def update(self, values: Any) -> None:
        items = list(values)
        present = [str(v) for v in items if v is not None and not (isinstance(v, float) and math.isnan(v))]
        self.missing += len(items) - len(present)
        self.count += len(present)
        self.counts.update(present)
        if len(self.counts) > MAX_CATEGORIES:
            self.counts = Counter(dict(self.counts.most_common(MAX_CATEGORIES)))

    def to_json(self) -> dict[str, Any]:
        return {"type": "categorical", "count": self.count, "missing": self.missing, "counts": dict(self.counts)}


class FeaturePriors:
    """Feature priors built batch by batch: ``update(columns)`` with a DataFrame or a dict of arrays."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.rows = 0
        self.features: dict[str, _NumericPrior | _CategoricalPrior] = {}

    def update(self, columns: Any) -> None:
        items = columns.items() if hasattr(columns, "items") else columns
        n = None
        for name, values in items:
            array = np.asarray(values)
            n = len(array)
            prior = self.features.get(str(name))
            if prior is None:
                numeric = array.dtype.kind in "biuf"
                prior = _NumericPrior(self.seed + len(self.features)) if numeric else _CategoricalPrior()
                self.features[str(name)] = prior
            prior.update(array)
        self.rows += n or 0

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "kind": "features", "rows": self.rows,
                "features": {name: p.to_json() for name, p in self.features.items()}}


def prediction_priors(task: str, classes: list[Any] | None, predictions: np.ndarray, truth: np.ndarray | None,
                      probabilities: np.ndarray | None, bins: int = 10) -> dict[str, Any]:
    """Prediction priors from a held-out set: the predicted class (or score) distribution, the metrics, and
    the calibration of the top probability (confidence bins with their realised accuracy)."""
    out: dict[str, Any] = {"format": FORMAT, "kind": "predictions", "task": task, "rows": int(len(predictions)),
                           "classes": [c.item() if hasattr(c, "item") else c for c in classes] if classes is not None
                           else None}
    if task == "classification":
        out["class_counts"] = {str(k): int(v) for k, v in Counter(np.asarray(predictions).tolist()).items()}
        if truth is not None:
            out["metrics"] = {"accuracy": float(np.mean(np.asarray(predictions) == np.asarray(truth)))}
        if probabilities is not None and truth is not None:
            confidence = np.asarray(probabilities).max(axis=1)
            correct = np.asarray(predictions) == np.asarray(truth)
            edges = np.linspace(0, 1, bins + 1)
            which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)
            out["calibration"] = {
                "edges": edges.tolist(),
                "confidence": [float(confidence[which == b].mean()) if (which == b).any() else None for b in range(bins)],
                "accuracy": [float(correct[which == b].mean()) if (which == b).any() else None for b in range(bins)],
                "counts": [int((which == b).sum()) for b in range(bins)],
                # the held-out records the performance estimate is calibrated on
                "sample": sample_pairs(probabilities, correct, _label_index(classes, truth)),
            }
    else:
        values = np.asarray(predictions, dtype=np.float64)
        out["score"] = {"mean": float(values.mean()), "std": float(values.std()),
                        "quantiles": {f"p{int(q * 100)}": float(np.quantile(values, q)) for q in QUANTILES}}
        if truth is not None:
            err = values - np.asarray(truth, dtype=np.float64)
            out["metrics"] = {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean()))}
    return out


def _label_index(classes: list[Any] | None, truth: Any) -> np.ndarray | None:
    """Each true label as the column of its class in the probabilities, or None when one is not a class."""
    if classes is None:
        return None
    index = {str(c): i for i, c in enumerate(classes)}
    found = [index.get(str(t)) for t in np.asarray(truth).tolist()]
    return None if any(i is None for i in found) else np.asarray(found)


def read(path: Path, kind: str) -> dict[str, Any]:
    """A priors file, checked: one line naming the file and the problem otherwise."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BlaseError(f"{path} does not exist; write the priors there (docs/monitoring.md), or pass a model"
                         " whose training recorded them (\"name@champion\").") from None
    except ValueError as exc:
        raise BlaseError(f"{path} is not valid JSON ({exc}); fix it (docs/monitoring.md has the format).") from None
    if not isinstance(data, dict) or data.get("kind", kind) != kind:
        found = data.get("kind") if isinstance(data, dict) else type(data).__name__
        raise BlaseError(f"{path} holds no {kind} priors (its \"kind\" is {found!r}).")
    _check_keys(path, "", data, FEATURES_KEYS if kind == "features" else PREDICTIONS_KEYS)
    if kind == "features":
        _check_features(path, data)
    else:
        _check_predictions(path, data)
    return data


FEATURES_KEYS = {"format", "kind", "rows", "features", "image", "embedding"}
PREDICTIONS_KEYS = {"format", "kind", "task", "classes", "rows", "class_counts", "metrics", "calibration", "score",
                    "split"}
FEATURE_KEYS = {"type", "sample", "histogram", "counts", "count", "missing", "mean", "std", "quantiles"}


def _check_keys(path: Path, where: str, data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise BlaseError(f"{path}: unknown key {unknown[0]!r}{where}; the keys are {', '.join(sorted(allowed))}"
                         " (docs/monitoring.md, Priors).")


def _numbers(value: Any) -> bool:
    """Whether ``value`` is a list of numbers (a 10,000-value sample is checked in C, not value by value)."""
    if not isinstance(value, list):
        return False
    if len(value) > 64 and not isinstance(value[0], bool):
        try:
            return bool(np.isfinite(np.asarray(value, dtype=np.float64)).all())
        except (TypeError, ValueError):  # a string, a list, None... among them
            return False
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)


def _check_features(path: Path, data: dict[str, Any]) -> None:
    features = data.get("features")
    if not isinstance(features, dict) or not features:
        raise BlaseError(f"{path}: \"features\" must map each feature to its prior.")
    for name, prior in features.items():
        if not isinstance(prior, dict) or prior.get("type") not in ("numeric", "categorical"):
            raise BlaseError(f"{path}: feature {name!r} needs \"type\": \"numeric\" or \"categorical\".")
        _check_keys(path, f" in feature {name!r}", prior, FEATURE_KEYS)
        histogram = prior.get("histogram")
        if prior["type"] == "numeric":
            if "sample" in prior and not (_numbers(prior["sample"]) and prior["sample"]):
                raise BlaseError(f"{path}: numeric feature {name!r}: \"sample\" must be a list of numbers.")
            if histogram is not None and not (isinstance(histogram, dict) and _numbers(histogram.get("edges"))
                                              and _numbers(histogram.get("counts"))
                                              and len(histogram["edges"]) == len(histogram["counts"]) + 1):
                raise BlaseError(f"{path}: numeric feature {name!r}: \"histogram\" must hold \"edges\" and"
                                 " \"counts\", lists of numbers, one more edge than counts.")
            if not prior.get("sample") and not histogram:
                raise BlaseError(f"{path}: numeric feature {name!r} needs a \"sample\" of values or a \"histogram\".")
        counts = prior.get("counts")
        if prior["type"] == "categorical" and not (isinstance(counts, dict) and counts and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in counts.values())):
            raise BlaseError(f"{path}: categorical feature {name!r} needs \"counts\" (category -> count).")
        for key in ("count", "missing"):
            if key in prior and not (isinstance(prior[key], int) and prior[key] >= 0):
                raise BlaseError(f"{path}: feature {name!r}: \"{key}\" must be a whole number, 0 or more.")
    image = data.get("image")
    if image is not None and not (isinstance(image, dict) and isinstance(image.get("shape"), list)
                                  and image["shape"] and all(isinstance(v, int) and v > 0 for v in image["shape"])):
        raise BlaseError(f"{path}: \"image\" must hold \"shape\", the shape of one image (such as [32, 32, 3]).")
    embedding = data.get("embedding")
    if embedding is not None:
        ok = isinstance(embedding, dict) and all(k in embedding for k in ("mean", "components", "sample", "bandwidth"))
        try:
            mean, components = np.asarray(embedding["mean"], float), np.asarray(embedding["components"], float)
            sample = np.asarray(embedding["sample"], float)
            ok = ok and components.ndim == 2 and components.shape[1] == len(mean) and sample.ndim == 2 \
                and sample.shape[1] == components.shape[0] and float(embedding["bandwidth"]) > 0
        except (TypeError, ValueError, KeyError):
            ok = False
        if not ok:
            raise BlaseError(f"{path}: \"embedding\" is damaged (it needs mean, components, sample and bandwidth of"
                             " matching sizes); train the model again to record it, or remove the key.")


def _check_predictions(path: Path, data: dict[str, Any]) -> None:
    if data.get("task", "classification") not in ("classification", "regression"):
        raise BlaseError(f"{path}: \"task\" must be \"classification\" or \"regression\".")
    for key in ("class_counts", "metrics"):
        value = data.get(key)
        if value is not None and not (isinstance(value, dict) and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value.values())):
            raise BlaseError(f"{path}: \"{key}\" must map names to numbers.")
    if data.get("classes") is not None and not isinstance(data["classes"], list):
        raise BlaseError(f"{path}: \"classes\" must be a list of the class labels.")
    calibration = data.get("calibration")
    if calibration is None:
        return
    if not isinstance(calibration, dict):
        raise BlaseError(f"{path}: \"calibration\" must be a table (confidence, accuracy, sample).")
    for key in ("confidence", "accuracy"):
        if key in calibration and not (isinstance(calibration[key], list) and all(
                v is None or isinstance(v, int | float) for v in calibration[key])):
            raise BlaseError(f"{path}: calibration \"{key}\" must be a list of numbers (null for an empty bin).")
    sample = calibration.get("sample")
    if sample is not None:
        ok = isinstance(sample, dict) and _numbers(sample.get("logit")) and _numbers(sample.get("correct")) \
            and len(sample["logit"]) == len(sample["correct"])
        if ok and "logp" in sample:
            ok = isinstance(sample["logp"], list) and all(_numbers(row) for row in sample["logp"]) \
                and _numbers(sample.get("label")) and len(sample["logp"]) == len(sample["label"]) == len(sample["logit"])
            widths = {len(row) for row in sample["logp"]} if ok else set()
            ok = ok and len(widths) <= 1 and all(isinstance(v, int) and 0 <= v < max(widths | {0})
                                                 for v in sample["label"])
        if not ok:
            raise BlaseError(f"{path}: calibration \"sample\" must hold \"logit\" and \"correct\", lists of numbers"
                             " of the same length (and \"logp\", \"label\" when there).")

