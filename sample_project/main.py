"""The sample project's steps: digits from PNG files to a tracked classifier.

Run a step with `blase step NAME`, or as the seed does: `python main.py --step etl --start_run`.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
from scripts.engineer import ink_fraction, read_png, save_npy_atomic, split_of, write_png_atomic
from scripts.model import build_model

from blase_tui import main, step

RAW_IMAGE_DIR = Path("data/raw/images")
PREPARED_DIR = Path("data/prepared")
EXCLUSIONS = Path("data/interim/exclusions.json")
MODEL_PATH = Path("models/model.pkl")


def _image_files() -> list[Path]:
    return sorted(RAW_IMAGE_DIR.rglob("*.png"))


@step
def etl(ctx, scale: int = 4):
    """Write scikit-learn's handwritten digits as PNG files, one folder per label."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images * (255 / 16)).clip(0, 255).astype(np.uint8)
    with ctx.progress("write images", total=len(images), unit="images") as bar:
        for i, (image, label) in enumerate(zip(images, digits.target, strict=True)):
            big = np.kron(image, np.ones((scale, scale), dtype=np.uint8))
            write_png_atomic(big, RAW_IMAGE_DIR / str(label) / f"digit_{i:05d}.png")
            bar.update(1)
    ctx.log.info("wrote %d images of %dx%d pixels", len(images), 8 * scale, 8 * scale)
    ctx.log_metric("images", len(images))
    ctx.log_dataset(RAW_IMAGE_DIR, role="output", name="raw_images")


@step
def inspect(ctx):
    """Pixel statistics and class balance of the raw images; writes summary.json."""
    files = _image_files()
    if not files:
        raise FileNotFoundError(f"no PNG files under {RAW_IMAGE_DIR}; run `blase step etl` first")
    counts: dict[str, int] = {}
    total, total_sq, n_pixels = 0.0, 0.0, 0
    with ctx.progress("read images", total=len(files), unit="images") as bar:
        for f in files:
            image = read_png(f).astype(np.float64) / 255
            total += image.sum()
            total_sq += (image**2).sum()
            n_pixels += image.size
            counts[f.parent.name] = counts.get(f.parent.name, 0) + 1
            bar.update(1)
    mean = total / n_pixels
    std = float(np.sqrt(total_sq / n_pixels - mean**2))
    summary = {"images": len(files), "pixel_mean": mean, "pixel_std": std, "class_counts": counts}
    (ctx.artifact_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    ctx.log_metrics({"pixel_mean": mean, "pixel_std": std, "classes": len(counts)})
    ctx.log_dataset(RAW_IMAGE_DIR, role="input", name="raw_images")


@step
def clean(ctx, min_ink: float = 0.05):
    """Exclude images with almost no ink; the excluded keys and reasons go to exclusions.json."""
    excluded = {}
    files = _image_files()
    with ctx.progress("check images", total=len(files), unit="images") as bar:
        for f in files:
            ink = ink_fraction(read_png(f))
            if ink < min_ink:
                excluded[f.relative_to(RAW_IMAGE_DIR).as_posix()] = f"ink {ink:.3f} < {min_ink}"
            bar.update(1)
    EXCLUSIONS.parent.mkdir(parents=True, exist_ok=True)
    EXCLUSIONS.write_text(json.dumps(excluded, indent=2, sort_keys=True))
    ctx.log_artifact(EXCLUSIONS)
    ctx.log_metric("excluded", len(excluded))
    ctx.log.info("excluded %d of %d images", len(excluded), len(files))


@step
def prepare(ctx, train: float = 0.7, val: float = 0.2, test: float = 0.1, seed: int = 42):
    """Split the kept images by key (deterministic) and write X.npy / y.npy per split."""
    if abs(train + val + test - 1) > 1e-9:
        raise ValueError(f"train + val + test must be 1, not {train + val + test}")
    excluded = json.loads(EXCLUSIONS.read_text()) if EXCLUSIONS.exists() else {}
    splits: dict[str, tuple[list[np.ndarray], list[int], list[str]]] = {s: ([], [], []) for s in ("train", "val", "test")}
    files = _image_files()
    with ctx.progress("split", total=len(files), unit="images") as bar:
        for f in files:
            key = f.relative_to(RAW_IMAGE_DIR).as_posix()
            bar.update(1)
            if key in excluded:
                continue
            xs, ys, keys = splits[split_of(key, seed, train, val)]
            xs.append(read_png(f).astype(np.float32).ravel() / 255)
            ys.append(int(f.parent.name))
            keys.append(key)
    for name, (xs, ys, keys) in splits.items():
        save_npy_atomic(np.stack(xs), PREPARED_DIR / name / "X.npy")
        save_npy_atomic(np.asarray(ys, dtype=np.int64), PREPARED_DIR / name / "y.npy")
        (PREPARED_DIR / name / "keys.json").write_text(json.dumps(keys))
        ctx.log_metric(f"{name}_records", len(keys))
    ctx.log_dataset(RAW_IMAGE_DIR, role="input", name="raw_images")
    ctx.log_dataset(PREPARED_DIR, role="output", name="prepared")


@step
def train(ctx, C: float = 1.0, max_iter: int = 500, seed: int = 0):  # noqa: N803
    """Fit the classifier on the train split; report train and validation accuracy."""
    X = np.load(PREPARED_DIR / "train" / "X.npy")
    y = np.load(PREPARED_DIR / "train" / "y.npy")
    model = build_model(C=C, max_iter=max_iter, seed=seed)
    ctx.log.info("training on %d records", len(y))
    model.fit(X, y)
    ctx.log_metric("train_accuracy", float(model.score(X, y)))
    Xv, yv = np.load(PREPARED_DIR / "val" / "X.npy"), np.load(PREPARED_DIR / "val" / "y.npy")
    ctx.log_metric("val_accuracy", float(model.score(Xv, yv)))
    MODEL_PATH.parent.mkdir(parents=True, exist_ok=True)
    tmp = MODEL_PATH.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(model))
    os.replace(tmp, MODEL_PATH)
    ctx.log_artifact(MODEL_PATH)
    ctx.log_dataset(PREPARED_DIR / "train", role="input", name="prepared/train")


@step
def evaluate(ctx):
    """Accuracy and per-class recall of the latest model on the test split."""
    model = pickle.loads(MODEL_PATH.read_bytes())
    X, y = np.load(PREPARED_DIR / "test" / "X.npy"), np.load(PREPARED_DIR / "test" / "y.npy")
    pred = model.predict(X)
    accuracy = float((pred == y).mean())
    recall = {str(c): float((pred[y == c] == c).mean()) for c in np.unique(y)}
    ctx.log_metric("test_accuracy", accuracy)
    (ctx.artifact_dir / "evaluation.json").write_text(json.dumps({"accuracy": accuracy, "recall": recall}, indent=2))
    ctx.log_dataset(PREPARED_DIR / "test", role="input", name="prepared/test")
    ctx.log_dataset(MODEL_PATH, role="input", name="model")


if __name__ == "__main__":
    main()
