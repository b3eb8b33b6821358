"""The project's own functions: the stand-in data source, the cleaning rule and the feature table."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

LABEL = "diagnosis"


def write_patients(path: Path) -> int:
    """Stand-in for the outside world: scikit-learn's breast-cancer table as a CSV with an id column, a few
    values missing (as real exports have)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    names = [n.replace(" ", "_") for n in data.feature_names]
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", *names, LABEL])
        for i, (row, target) in enumerate(zip(data.data, data.target, strict=True)):
            values = [f"{v:.6g}" for v in row]
            if rng.random() < 0.02:
                values[int(rng.integers(len(values)))] = ""  # a missing measurement
            writer.writerow([f"p{i:04d}", *values, data.target_names[target]])
    os.replace(tmp, path)
    return len(data.data)


def has_missing(batch) -> np.ndarray:
    """True for rows with a missing measurement: the clean step leaves them out."""
    columns = [c for c in batch.columns if c not in ("key", "id", LABEL)]
    values = np.column_stack([np.asarray(batch[c], dtype=np.float64) for c in columns])
    return np.isnan(values).any(axis=1)


def to_features(batch) -> dict[str, np.ndarray]:
    """One float32 feature vector per row (``features``) and the class (``label``), as Train reads them."""
    columns = [c for c in batch.columns if c not in ("key", "id", LABEL)]
    features = np.column_stack([np.asarray(batch[c], dtype=np.float32) for c in columns])
    return {"features": features, "label": np.asarray(batch[LABEL]).astype(str)}
