"""``Examine``: streaming statistics over batches, a summary table, ``summary.json``, plots and suggestions.

Memory stays flat whatever the dataset size: per column it keeps running moments (merged batch by batch),
a KLL quantile sketch (Apache DataSketches) and, for categorical columns, value counts up to a cap.

>>> examiner = Examine(aggregate_batches=True)
>>> for batch in Extract().load_parquet("data/raw/alerts"):
...     examiner.process_batch(batch)
>>> summary = examiner.generate_summary()
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from blase_tui.modules import recording
from blase_tui.modules.batch import Batch
from blase_tui.modules.partitions import DeferredBatch, drain

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
MAX_CATEGORIES = 1000
# a numeric column of up to this many values keeps them (512 KiB), so its quantiles and histogram are exact and the
# same on every run (a reproduced inspect step is identical); beyond, they come from the randomised sketch
EXACT_VALUES = 1 << 16
PIXEL_SAMPLE = 4096  # pixels per image fed to the channel sketches (statistics, not an archive)
LABEL_NAMES = ("label", "labels", "target", "class", "y", "outcome", "category", "diagnosis", "species")
EXTREMES = 20  # the largest and smallest values kept with their keys, per numeric column
FAR_IQRS = 6.0  # a value this many IQRs past the quartiles stands far out (normal: 8.8 standard deviations)


class _Numeric:
    def __init__(self) -> None:
        from datasketches import kll_doubles_sketch

        self.count = 0
        self.missing = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.sketch = kll_doubles_sketch(200)
        self.values: Counter[float] = Counter()
        self.distinct_capped = False
        self.integer = True
        self.kept: list[np.ndarray] | None = []  # every value, while there are at most EXACT_VALUES
        self.high: list[tuple[float, str]] = []  # the EXTREMES largest values with their records' keys
        self.low: list[tuple[float, str]] = []  # and the smallest

    def update(self, values: np.ndarray, keys: Any = None) -> None:
        values = np.asarray(values, dtype=np.float64).ravel()
        if keys is not None and len(keys) == len(values):
            self._extremes(values, keys)
        finite = values[~np.isnan(values)]
        self.missing += len(values) - len(finite)
        n = len(finite)
        if n == 0:
            return
        # Chan et al.: merge this batch's mean and M2 into the running ones.
        b_mean = float(finite.mean())
        b_m2 = float(((finite - b_mean) ** 2).sum())
        delta = b_mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        self.m2 += b_m2 + delta * delta * self.count * n / total
        self.count = total
        self.min = min(self.min, float(finite.min()))
        self.max = max(self.max, float(finite.max()))
        self.sketch.update(finite)
        if self.integer and not np.all(np.mod(finite, 1) == 0):
            self.integer = False
        self._keep([finite.copy()])
        if not self.distinct_capped:
            uniques, counts = np.unique(finite, return_counts=True)
            self.values.update(dict(zip(uniques.tolist(), counts.tolist(), strict=True)))
            if len(self.values) > MAX_CATEGORIES:
                self.distinct_capped = True
                self.values.clear()

    def _extremes(self, values: np.ndarray, keys: Any) -> None:
        """Keep the largest and smallest values of the batch with their keys (examples of far-out records)."""
        idx = np.flatnonzero(~np.isnan(values))
        if not len(idx):
            return
        k = min(EXTREMES, len(idx))
        order = np.argsort(values[idx], kind="stable")
        lows, highs = idx[order[:k]], idx[order[-k:]]
        self.low = sorted(self.low + [(float(values[i]), str(keys[i])) for i in lows])[:EXTREMES]
        self.high = sorted(self.high + [(float(values[i]), str(keys[i])) for i in highs])[-EXTREMES:]

    def _keep(self, arrays: list[np.ndarray] | None) -> None:
        """Keep these values too, while the column has at most ``EXACT_VALUES`` (``count`` already counts them)."""
        if self.kept is None or arrays is None or self.count > EXACT_VALUES:
            self.kept = None
        else:
            self.kept.extend(arrays)

    def merge(self, other: _Numeric) -> None:
        """Add another accumulator's values (an executor worker's batch) as if they had been updated here."""
        self.missing += other.missing
        if other.count == 0:
            return
        delta = other.mean - self.mean
        total = self.count + other.count
        self.mean += delta * other.count / total
        self.m2 += other.m2 + delta * delta * self.count * other.count / total
        self.count = total
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        self.sketch.merge(other.sketch)
        self._keep(other.kept)
        self.low = sorted(self.low + other.low)[:EXTREMES]
        self.high = sorted(self.high + other.high)[-EXTREMES:]
        self.integer = self.integer and other.integer
        if other.distinct_capped:
            self.distinct_capped = True
        if not self.distinct_capped:
            self.values.update(other.values)
            if len(self.values) > MAX_CATEGORIES:
                self.distinct_capped = True
        if self.distinct_capped:
            self.values.clear()

    def __getstate__(self) -> dict[str, Any]:  # the sketch travels as its bytes (it does not pickle)
        state = dict(self.__dict__)
        state["sketch"] = self.sketch.serialize()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        from datasketches import kll_doubles_sketch

        state["sketch"] = kll_doubles_sketch.deserialize(state["sketch"])
        self.__dict__.update(state)

    def summary(self, bins: int = 20) -> dict[str, Any]:
        if self.count == 0:
            return {"kind": "numeric", "count": 0, "missing": self.missing}
        edges = np.linspace(self.min, self.max, bins + 1) if self.max > self.min else np.array([self.min, self.min + 1])
        if self.distinct_capped and self.kept is None:  # the sketch (randomised, within ~1.3% of rank)
            quantiles, cdf_at = self.sketch.get_quantiles(list(QUANTILES)), self.sketch.get_cdf
        else:  # up to MAX_CATEGORIES distinct values or EXACT_VALUES values: exact, and the same on every run
            quantiles, cdf_at = self._exact_quantiles(QUANTILES), self._exact_cdf
        q = dict(zip((f"p{int(p * 100)}" for p in QUANTILES), quantiles, strict=True))
        pmf = np.diff([0.0, *cdf_at(edges[1:-1].tolist())[:-1], 1.0]).tolist() if len(edges) > 2 else [1.0]
        iqr = q["p75"] - q["p25"]
        low, high = q["p25"] - 1.5 * iqr, q["p75"] + 1.5 * iqr
        outliers = 0.0
        if iqr > 0:
            cdf = cdf_at([low, high])
            outliers = cdf[0] + (1 - cdf[1])
        return {
            "kind": "numeric", "count": self.count, "missing": self.missing, "mean": self.mean,
            "std": math.sqrt(self.m2 / self.count) if self.count else 0.0, "min": self.min, "max": self.max,
            "quantiles": q, "histogram": {"edges": edges.tolist(), "counts": [round(p * self.count) for p in pmf]},
            "distinct": None if self.distinct_capped else len(self.values),
            "integer": self.integer, "outlier_fraction": outliers, "far_out": self._far_out(q),
            "top_values": None if self.distinct_capped or len(self.values) > 50 else
            {str(k): v for k, v in self.values.most_common(50)},
        }


    def _far_out(self, q: dict[str, float]) -> dict[str, Any] | None:
        """Values that stand far out of the column's own tail: beyond FAR_IQRS interquartile ranges past the
        quartiles, on a log scale for a right-skewed column of non-negative values (about 9 standard deviations
        for a normal column, so a natural sample of any size has none). Counted exactly while every value is
        kept, else among the kept extremes ("at least"); with up to three example records."""
        scale = right_skewed(self.min, q)
        skewed = scale is not None

        def t(v: Any) -> Any:
            return np.log1p(np.clip(v, 0, None) / scale) if scale is not None else v

        p25, p75 = float(t(q["p25"])), float(t(q["p75"]))
        iqr = p75 - p25
        if iqr <= 0:
            return None
        lo, hi = p25 - FAR_IQRS * iqr, p75 + FAR_IQRS * iqr
        far = [(v, k) for v, k in self.low if t(v) < lo]
        far += [(v, k) for v, k in reversed(self.high) if t(v) > hi]
        if not far:
            return None
        limits = [float(np.expm1(lo)) * scale if scale is not None else lo,
                  float(np.expm1(hi)) * scale if scale is not None else hi]
        if self.kept is not None and self.kept:
            tv = t(np.concatenate(self.kept))
            count, at_least = int(((tv < lo) | (tv > hi)).sum()), False
        else:
            count, at_least = len(far), len(far) >= EXTREMES
        return {"count": count, "at_least": at_least, "limits": limits, "log_scale": skewed,
                "examples": [{"key": k, "value": v} for v, k in far[:3]]}

    def _sorted_values(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct values in order and how many values lie at or below each."""
        if self.distinct_capped and self.kept is not None:
            values = np.sort(np.concatenate(self.kept)) if self.kept else np.zeros(0)
            return values, np.arange(1, len(values) + 1, dtype=np.float64)
        values = np.array(sorted(self.values), dtype=np.float64)
        return values, np.cumsum([self.values[v] for v in values.tolist()], dtype=np.float64)

    def _exact_quantiles(self, ranks: tuple[float, ...]) -> list[float]:
        """The smallest value whose share of the data at or below it reaches each rank (the sketch's rule)."""
        values, cumulative = self._sorted_values()
        total = cumulative[-1]
        return [float(values[min(int(np.searchsorted(cumulative, r * total, side="left")), len(values) - 1)])
                for r in ranks]

    def _exact_cdf(self, points: list[float]) -> list[float]:
        """Share of the data below each point, then 1.0 (as ``get_cdf``)."""
        values, cumulative = self._sorted_values()
        total = cumulative[-1]
        below = [float(cumulative[i - 1]) / total if (i := int(np.searchsorted(values, p, side="left"))) else 0.0
                 for p in points]
        return [*below, 1.0]


class _Categorical:
    def __init__(self) -> None:
        self.count = 0
        self.missing = 0
        self.values: Counter[str] = Counter()
        self.capped = False

    def update(self, values: Any) -> None:
        items = [v for v in values]
        present = [str(v) for v in items if v is not None and not (isinstance(v, float) and math.isnan(v))]
        self.missing += len(items) - len(present)
        self.count += len(present)
        if not self.capped:
            self.values.update(present)
            if len(self.values) > MAX_CATEGORIES:
                self.capped = True
                top = self.values.most_common(MAX_CATEGORIES)
                self.values = Counter(dict(top))

    def merge(self, other: _Categorical) -> None:
        self.missing += other.missing
        self.count += other.count
        if not self.capped:
            self.values.update(other.values)
            if other.capped or len(self.values) > MAX_CATEGORIES:
                self.capped = True
                self.values = Counter(dict(self.values.most_common(MAX_CATEGORIES)))

    def summary(self) -> dict[str, Any]:
        return {"kind": "categorical", "count": self.count, "missing": self.missing,
                "distinct": None if self.capped else len(self.values),
                "top_values": dict(self.values.most_common(50))}


class _Images:
    def __init__(self) -> None:
        self.count = 0
        self.sizes: Counter[str] = Counter()
        self.channels: dict[int, _Numeric] = {}

    def update(self, images: Any, first: int | None = None) -> None:
        """``first``: the position of the first image in the whole stream, which seeds the pixel sample (so a
        worker that sees one batch samples the pixels one process would)."""
        rng = np.random.default_rng(self.count if first is None else first)
        for image in images:
            array = np.asarray(image)
            self.count += 1
            self.sizes["x".join(str(s) for s in array.shape[:2])] += 1
            pixels = array.reshape(array.shape[0] * array.shape[1], -1)
            if len(pixels) > PIXEL_SAMPLE:
                pixels = pixels[rng.choice(len(pixels), PIXEL_SAMPLE, replace=False)]
            for c in range(pixels.shape[1]):
                self.channels.setdefault(c, _Numeric()).update(pixels[:, c])

    def merge(self, other: _Images) -> None:
        self.count += other.count
        self.sizes.update(other.sizes)
        for c, stats in other.channels.items():
            if c in self.channels:
                self.channels[c].merge(stats)
            else:
                self.channels[c] = stats

    def summary(self) -> dict[str, Any]:
        return {"kind": "image", "count": self.count, "sizes": dict(self.sizes.most_common()),
                "channels": {str(c): s.summary() for c, s in self.channels.items()}}


def _examine_on_worker(label_column: str | None, batch: Batch, stem: str) -> dict[str, Any]:
    """One batch's statistics, on an executor's worker (``partitions``)."""
    examiner = Examine(aggregate_batches=True, label_column=label_column)
    examiner.process_batch(batch)
    return {"examine": examiner}


def _flattened(batch: Batch) -> Batch:
    """A table's nested records (JSON objects: ``usage: {sessions, minutes}``) as columns of their own
    (``usage.sessions``, ``usage.minutes``), each with its statistics."""
    if not batch.is_table:
        return batch
    import pyarrow as pa

    table = batch.data
    if not any(pa.types.is_struct(f.type) for f in table.schema):
        return batch
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    return Batch(batch.keys, table, batch.meta, batch.bad_records)


def _is_image_column(name: str, values: Any) -> bool:
    if isinstance(values, np.ndarray) and values.dtype == object and len(values):
        return isinstance(values[0], np.ndarray) and values[0].ndim >= 2
    return isinstance(values, np.ndarray) and values.ndim >= 3 and name != "array" or (
        isinstance(values, np.ndarray) and values.ndim >= 3 and values.dtype == np.uint8)


class Examine:
    """Streaming statistics of every column: numeric (count, missing, mean, std, min, max, quantiles,
    histogram, outliers), categorical (value counts, class balance) and images (sizes, per-channel pixel
    statistics). With ``aggregate_batches=False``, ``process_batch`` also returns that batch's own summary."""

    def __init__(self, aggregate_batches: bool = True, label_column: str | None = None) -> None:
        self.aggregate_batches = aggregate_batches
        self.label_column = label_column
        self.records = 0
        self.batches = 0
        self._columns: dict[str, Any] = {}
        self._pending = 0  # batches sent to an executor's workers and not merged yet

    def _stats_for(self, name: str, values: Any) -> Any:
        if name not in self._columns:
            if _is_image_column(name, values):
                self._columns[name] = _Images()
            elif isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
                self._columns[name] = _Numeric()
            else:
                self._columns[name] = _Categorical()
        return self._columns[name]

    def process_batch(self, batch: Batch) -> dict[str, Any] | None:
        """Add a batch to the statistics. Under an executor (``blase step --executor dask``), a batch the
        workers read is examined there and its statistics merged here, in order, by the end of the loop."""
        if self.aggregate_batches and isinstance(batch, DeferredBatch) and batch.pending:
            self._pending += 1
            batch.send(functools.partial(_examine_on_worker, self.label_column), self._merge_pieces)
            return None
        if self._pending:  # batches sent to workers before this one are added first
            drain()
        batch = _flattened(batch)
        if not self.aggregate_batches:
            single = Examine(aggregate_batches=True, label_column=self.label_column)
            single.process_batch(batch)
        self.records += len(batch)
        self.batches += 1
        for name in batch.columns:
            if name == "key":
                continue
            values = batch.column(name)
            stats = self._stats_for(name, values)
            if isinstance(stats, _Images):
                stats.update(values, first=batch.meta.start)
            elif isinstance(stats, _Numeric) and isinstance(values, np.ndarray) and values.ndim > 1:
                stats.update(values.reshape(-1))
            elif isinstance(stats, _Numeric):
                stats.update(np.asarray(values, dtype=np.float64), batch.keys)
            else:
                stats.update(values)
        return None if self.aggregate_batches else single.summary()

    def merge(self, other: Examine) -> None:
        """Add another Examine's statistics (of later batches) to these."""
        self.records += other.records
        self.batches += other.batches
        for name, stats in other._columns.items():
            if name in self._columns:
                self._columns[name].merge(stats)
            else:
                self._columns[name] = stats

    def _merge_pieces(self, pieces: list[dict[str, Any]]) -> None:
        self._pending -= 1
        for piece in pieces:
            if "examine" in piece:
                self.merge(piece["examine"])

    def summary(self) -> dict[str, Any]:
        if self._pending:  # statistics of batches still on the workers
            drain()
        columns = {name: stats.summary() for name, stats in self._columns.items()}
        return {"records": self.records, "batches": self.batches, "columns": columns,
                "suggestions": suggestions(columns, self.records, self.label_column)}

    def suggest_schema(self) -> dict[str, Any]:
        """What to do with each column of a table, from the streamed statistics (the whole table is never in
        memory): feature type, imputation, scaling, outliers, and which column is likely the label.

        >>> schema = examiner.suggest_schema()
        >>> schema["label"], schema["columns"]["radius"]["scaling"]
        ('diagnosis', 'standardise (mean 14.13, std 3.521)')
        """
        summary = self.summary()
        notes: dict[str, dict[str, str]] = {}
        for item in summary["suggestions"]:
            notes.setdefault(item["column"], {})[item["kind"]] = item["text"]
        columns: dict[str, Any] = {}
        candidates = []
        for name, col in summary["columns"].items():
            note = notes.get(name, {})
            feature = note.get("feature_type") or ("constant" if "constant" in note else "empty" if "empty" in note
                                                   else col["kind"])
            entry: dict[str, Any] = {
                "kind": col["kind"], "feature_type": feature,
                "missing_share": col.get("missing", 0) / max(col.get("missing", 0) + col.get("count", 0), 1),
                "imputation": note.get("imputation"), "outliers": note.get("outliers"),
                "scaling": _scaling(col, feature), "label_candidate": "label_candidate" in note,
            }
            if "label_candidate" in note:
                candidates.append(name)
                entry["classes"] = note["label_candidate"]
            columns[name] = entry
        named = [c for c in candidates if named_like_label(c)]
        if self.label_column in columns:
            label, why = self.label_column, "given (--label / label_column)"
        elif named:
            label, why = named[-1], f"named like a label ({named[-1]})"
        elif candidates:
            label, why = candidates[-1], (f"the last column with few classes ({columns[candidates[-1]]['classes']}); no"
                                          " column is named like a label: say which with label_column / --label")
        else:
            label, why = None, "no column is named like a label or has few classes: say which with label_column"
        task = None
        if label is not None:
            columns[label]["scaling"] = None
            columns[label]["role"] = "label"
            task = "regression" if columns[label]["feature_type"] == "continuous" else "classification"
        return {"records": summary["records"], "label": label, "label_reason": why, "task": task,
                "label_candidates": named + [c for c in candidates if c not in named], "columns": columns}

    def generate_summary(self, output_dir: str | Path | None = None, *, plots: bool = True,
                         show: bool = True) -> dict[str, Any]:
        """Print the summary table, write ``summary.json`` and one PNG histogram per numeric column (to the
        step's artifacts, or ``output_dir``), log headline metrics; returns the summary."""
        summary = self.summary()
        if output_dir:
            recording.params("generate_summary", output_dir=output_dir)
        step_folder = recording.artifact_dir()
        temporary = False
        if output_dir:
            out = Path(output_dir)
        elif step_folder is not None:
            out = step_folder  # ingested as the step's artifacts when it ends
        elif recording.active():
            import tempfile

            out, temporary = Path(tempfile.mkdtemp(prefix="blase-examine-")), True  # copied into the run below
        else:
            out = Path("examine")
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
        if plots:
            write_plots(summary, out)
        if show:
            print_summary(summary)
        recording.metrics({"records": float(summary["records"]), "columns": float(len(summary["columns"]))})
        if recording.active() and (step_folder is None or output_dir):
            recording.artifact(out, name="examine")
        if temporary:
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        elif not recording.active() or output_dir:
            recording.say("summary written to %s (summary.json and plots)", out / "summary.json")
        return summary


def right_skewed(minimum: float, q: dict[str, float]) -> float | None:
    """The median, when a column of non-negative values has a long right tail (its 95th percentile lies more than
    twice as far above the median as its 5th below; percentiles a few far-out values do not move): such a column
    is judged, and scaled, on ``log1p(x / median)``. None otherwise."""
    median = q["p50"]
    if minimum >= 0 and median > 0 and q["p95"] - median > 2 * (median - q["p5"]):
        return median
    return None


def named_like_id(name: str) -> bool:
    """``id``, ``patient_id``, ``objectId``, ``uuid``: a name that says the column identifies records."""
    import re

    return bool(re.search(r"(^|[_\W])(id|uuid|guid)$", name.lower()) or re.search(r"[a-z0-9]Id$", name))


def named_like_label(name: str) -> bool:
    return name.lower() in LABEL_NAMES


def suggestions(columns: dict[str, dict[str, Any]], records: int, label_column: str | None = None) -> list[dict[str, str]]:
    """Feature types, label-column candidates, imputation and far-out values for tabular columns, each with
    its reason."""
    out: list[dict[str, str]] = []
    for name, s in columns.items():
        kind = s["kind"]
        if kind == "image":
            if len(s["sizes"]) > 1:
                out.append({"column": name, "kind": "image_sizes",
                            "text": f"images come in {len(s['sizes'])} sizes; resize them (load_images(size=...))."})
            continue
        distinct = s.get("distinct")
        if s["count"] == 0:
            out.append({"column": name, "kind": "empty", "text": "no values at all; drop this column."})
            continue
        if distinct == 1:
            out.append({"column": name, "kind": "constant", "text": "one value only; it carries no information."})
            continue
        many = distinct is None or distinct >= 0.9 * s["count"]  # (nearly) every value its own
        label_named = named_like_label(name) or name == label_column
        if kind == "numeric":
            categorical = distinct is not None and s["integer"] and distinct <= 20
            feature = "binary" if distinct == 2 else "categorical" if categorical else "continuous"
            consecutive = (s["integer"] and distinct == s["count"] and s["max"] - s["min"] + 1 == s["count"])
            if not label_named and ((named_like_id(name) and many) or consecutive or (
                    distinct is None and s["integer"] and records and s["count"] >= 0.99 * records and s["min"] >= 0)):
                feature = "identifier"
        else:
            feature = "categorical" if distinct is not None and distinct <= max(50, records // 20) else "identifier"
            if named_like_id(name) and many:
                feature = "identifier"
        why = {"identifier": "named like an id" if named_like_id(name) else "a different value in nearly every row"}
        out.append({"column": name, "kind": "feature_type", "text": feature,
                    **({"why": why["identifier"]} if feature == "identifier" else {})})
        if feature in ("binary", "categorical") and (label_named or distinct is not None and distinct <= 10):
            top = s.get("top_values") or {}
            balance = ""
            if top:
                counts = sorted(top.values())
                balance = f"; class balance {counts[-1] / max(counts[0], 1):.1f}:1"
            out.append({"column": name, "kind": "label_candidate",
                        "text": f"{distinct} classes{balance}" + (" (named like a label)" if label_named else "")})
        elif feature == "continuous" and label_named:
            out.append({"column": name, "kind": "label_candidate",
                        "text": "a regression target (continuous, named like a label)"})
        if s["missing"]:
            share = s["missing"] / (s["missing"] + s["count"])
            how = "the median" if kind == "numeric" and feature == "continuous" else "the most frequent value"
            out.append({"column": name, "kind": "imputation",
                        "text": f"{share:.1%} missing; impute with {how} or add a missing-indicator column."})
        far = s.get("far_out") if kind == "numeric" and feature == "continuous" else None
        if far:
            lo, hi = far["limits"]
            examples = ", ".join(f"{e['key']} = {e['value']:.4g}" for e in far["examples"])
            where = (f"above {hi:.4g}" if lo < s["min"] else f"below {lo:.4g}" if hi > s["max"]
                     else f"outside {lo:.4g} to {hi:.4g}")
            out.append({"column": name, "kind": "outliers",
                        "text": f"{'at least ' if far['at_least'] else ''}{far['count']} value(s) stand far out of the"
                                f" column's own tail ({where}{', judged on a log scale' if far['log_scale'] else ''}),"
                                f" e.g. {examples}; check those records."})
    return out


def _scaling(col: dict[str, Any], feature: str) -> str | None:
    """How to put a column on a scale a model likes, from its quantiles (robust when values stand far out)."""
    if col["kind"] == "image":
        return "divide by 255 (or standardise per channel)"
    if feature in ("identifier", "constant", "empty"):
        return "drop: " + ("an identifier carries no signal" if feature == "identifier" else "no information")
    if feature in ("categorical", "binary"):
        distinct = col.get("distinct")
        return "none (two values)" if feature == "binary" else f"one-hot encode ({distinct or 'many'} values)"
    q = col.get("quantiles") or {}
    if not q:
        return None
    median, iqr = q["p50"], q["p75"] - q["p25"]
    if right_skewed(col["min"], q) is not None:
        return (f"log1p(x / {median:.4g}), then standardise (right-skewed: the 95th percentile is"
                f" {q['p95'] / median:.1f}x the median)")
    far = col.get("far_out")
    if far:
        return (f"robust scaling (median {median:.4g}, IQR {iqr:.4g}): {far['count']} far-out value(s) would set the"
                " mean and std")
    return f"standardise (mean {col['mean']:.4g}, std {col['std']:.4g})"


def write_plots(summary: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for name, s in summary["columns"].items():
        hists = []
        if s["kind"] == "numeric" and s.get("histogram"):
            hists = [(name, s["histogram"])]
        elif s["kind"] == "image":
            hists = [(f"{name} channel {c}", cs["histogram"]) for c, cs in s["channels"].items() if cs.get("histogram")]
        elif s["kind"] == "categorical" and s.get("top_values"):
            fig, ax = plt.subplots(figsize=(6, 3.5))
            top = list(s["top_values"].items())[:20]
            ax.bar([str(k) for k, _ in top], [v for _, v in top], color="#4c78a8")
            ax.set_title(f"{name}: most frequent values")
            ax.tick_params(axis="x", rotation=45)
            fig.tight_layout()
            path = out / f"values_{_safe(name)}.png"
            fig.savefig(path, dpi=100)
            plt.close(fig)
            paths.append(path)
        for title, h in hists:
            fig, ax = plt.subplots(figsize=(6, 3.5))
            edges = np.asarray(h["edges"])
            ax.bar(edges[:-1], h["counts"], width=np.diff(edges), align="edge", color="#4c78a8", edgecolor="white")
            ax.set_title(f"{title}: histogram")
            ax.set_ylabel("records")
            fig.tight_layout()
            path = out / f"hist_{_safe(title)}.png"
            fig.savefig(path, dpi=100)
            plt.close(fig)
            paths.append(path)
    return paths


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def print_summary(summary: dict[str, Any]) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{summary['records']} records in {summary['batches']} batches", header_style="bold")
    for col in ("column", "kind", "count", "missing", "mean", "std", "min", "p50", "max", "distinct"):
        table.add_column(col, justify="left" if col in ("column", "kind") else "right")

    def f(v: Any) -> str:
        return "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    for name, s in summary["columns"].items():
        rows = [(name, s)] if s["kind"] != "image" else [(f"{name}[{c}]", cs) for c, cs in s["channels"].items()]
        for label, r in rows:
            q = r.get("quantiles") or {}
            table.add_row(label, s["kind"], f(r.get("count")), f(r.get("missing")), f(r.get("mean")), f(r.get("std")),
                          f(r.get("min")), f(q.get("p50")), f(r.get("max")), f(r.get("distinct")))
    console = Console(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else 120)
    console.print(table)
    for s in summary["suggestions"]:
        console.print(f"  {s['column']}: {s['kind'].replace('_', ' ')}: {s['text']}", markup=False)


def inspect_report(examiner: Examine, path: Path, reader: str, *, bad_records: int = 0) -> dict[str, Any]:
    """What `blase inspect` prints and writes: the dataset, how it was read, the summary and the schema."""
    return {"path": str(path), "reader": reader, "bad_records": bad_records, "summary": examiner.summary(),
            "schema": examiner.suggest_schema()}


def print_schema(schema: dict[str, Any]) -> None:
    """The suggested schema as a table: each column's feature type and what to do with it."""
    import sys

    from rich.console import Console
    from rich.table import Table

    label = schema.get("label")
    table = Table(title=f"suggested schema (label: {label or 'none found'})", header_style="bold")
    for col in ("column", "feature type", "scaling", "missing", "imputation"):
        table.add_column(col, overflow="fold")
    for name, c in schema["columns"].items():
        table.add_row(name + (" (label)" if name == label else ""), c["feature_type"], c.get("scaling") or "-",
                      f"{c['missing_share']:.1%}" if c["missing_share"] else "-", c.get("imputation") or "-")
    Console(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else 120).print(table)
