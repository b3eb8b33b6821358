"""Image priors: what a model's training images looked like, for ``Monitor`` to compare served images with.

Pixels are not features to test one by one (a 32x32 image has 1,024 of them, none meaning much alone). An
image model's priors are instead:

- **descriptors** of each image, ordinary numeric features in ``features.json`` (tested like any other, with
  the same calibration and correction): ``image.brightness`` (mean luma), ``image.contrast`` (luma standard
  deviation), ``image.sharpness`` (mean absolute Laplacian of the luma), and for colour images
  ``image.red``/``image.green``/``image.blue`` (channel means) and ``image.saturation``;
- **an embedding**: what the model's last hidden layer makes of each image, reduced by PCA (fitted on a
  sample of the training images) to at most ``COMPONENTS`` dimensions. ``features.json`` keeps the projection
  and a reference sample; the live embeddings are compared with it by MMD with a permutation null
  (:func:`blase_tui.modules.drift.mmd_test`), one test in the same family as the descriptors;
- ``"image": {"shape": [...]}``: the shape of one record, so that the prediction log's flattened ``input``
  reads back as images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

COMPONENTS = 8  # embedding dimensions kept
REFERENCE = 500  # reference embeddings kept (the MMD test's reference sample)
FIT = 2_000  # training images whose embeddings the PCA is fitted on


def is_image(record_shape: tuple[int, ...]) -> bool:
    """Whether one record of this shape is an image: (h, w), (h, w, c) or (c, h, w), c in 1, 3, 4, sides >= 4."""
    shape = tuple(int(s) for s in record_shape)
    if len(shape) == 2:
        return min(shape) >= 4
    if len(shape) == 3:
        return (shape[-1] in (1, 3, 4) and min(shape[:2]) >= 4) or (shape[0] in (1, 3) and min(shape[1:]) >= 4)
    return False


def _channels_last(x: np.ndarray) -> np.ndarray:
    """(n, h, w, c) float images from (n, h, w), (n, h, w, c) or (n, c, h, w)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        return x[..., None]
    if x.shape[-1] not in (1, 3, 4) and x.shape[1] in (1, 3):
        return np.moveaxis(x, 1, -1)
    return x


def descriptors(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per image of the batch ``x``: brightness, contrast, sharpness (and channel means and saturation for
    colour images), in the images' own scale (0-255 for bytes, 0-1 for floats)."""
    images = _channels_last(x)
    colour = images.shape[-1] >= 3
    rgb = images[..., :3]
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32) if colour else images[..., 0]
    out = {"image.brightness": luma.mean(axis=(1, 2)), "image.contrast": luma.std(axis=(1, 2))}
    laplacian = (luma[:, 1:-1, 1:-1] * 4 - luma[:, :-2, 1:-1] - luma[:, 2:, 1:-1] - luma[:, 1:-1, :-2]
                 - luma[:, 1:-1, 2:])
    out["image.sharpness"] = np.abs(laplacian).mean(axis=(1, 2))
    if colour:
        for i, name in enumerate(("red", "green", "blue")):
            out[f"image.{name}"] = rgb[..., i].mean(axis=(1, 2))
        high, low = rgb.max(axis=-1), rgb.min(axis=-1)
        out["image.saturation"] = np.where(high > 0, (high - low) / np.maximum(high, 1e-12), 0.0).mean(axis=(1, 2))
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


class EmbeddingPriors:
    """A uniform sample (seeded, by random keys, one pass) of the training images' embeddings, reduced by PCA
    when written."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.keys = np.empty(0)
        self.rows: np.ndarray | None = None

    def update(self, embeddings: np.ndarray | None) -> None:
        if embeddings is None or not len(embeddings):
            return
        rows = np.asarray(embeddings, dtype=np.float64).reshape(len(embeddings), -1)
        keys = np.concatenate([self.keys, self.rng.random(len(rows))])
        rows = rows if self.rows is None else np.concatenate([self.rows, rows])
        if len(rows) > FIT:
            keep = np.argpartition(keys, FIT)[:FIT]
            keys, rows = keys[keep], rows[keep]
        self.keys, self.rows = keys, rows

    def wanted(self, n: int, total: int) -> np.ndarray:
        """Which of the next ``n`` records (of ``total``) to embed: all of a split that fits the sample, else a
        random share of each batch, twice what fills the sample (the reservoir keeps a uniform choice)."""
        if total <= FIT:
            return np.ones(n, dtype=bool)
        return self.rng.random(n) < min(1.0, 2.0 * FIT / max(total, 1))

    def to_json(self) -> dict[str, Any] | None:
        if self.rows is None or len(self.rows) < 10:
            return None
        mean = self.rows.mean(axis=0)
        centred = self.rows - mean
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        k = min(COMPONENTS, vt.shape[0], len(self.rows) - 1)
        components = vt[:k]
        projected = centred @ components.T
        sample = projected[:REFERENCE]
        return {"method": "mmd", "dimensions": int(self.rows.shape[1]), "mean": mean.tolist(),
                "components": components.tolist(), "sample": sample.tolist(),
                "bandwidth": median_distance(sample)}


def median_distance(rows: np.ndarray) -> float:
    """The median distance between rows (the RBF kernel's bandwidth by the median heuristic)."""
    rows = np.asarray(rows, dtype=np.float64)
    squared = np.sum(rows ** 2, axis=1)
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * rows @ rows.T, 0))
    upper = distances[np.triu_indices(len(rows), k=1)]
    return float(np.median(upper)) if len(upper) and np.median(upper) > 0 else 1.0


def project(embeddings: np.ndarray, section: dict[str, Any]) -> np.ndarray:
    """Live embeddings in the priors' PCA coordinates."""
    rows = np.asarray(embeddings, dtype=np.float64).reshape(len(embeddings), -1)
    return (rows - np.asarray(section["mean"])) @ np.asarray(section["components"]).T
