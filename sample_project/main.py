"""The sample project's steps: digits from PNG files to a tracked classifier.

Run a step with `blase step NAME`, or as the seed does: `python main.py --step etl --start_run`.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
from scripts.engineer import example_func, filter_bad_images, load_split, write_png_atomic
from scripts.model import build_model

from blase_tui import Clean, Examine, Extract, Load, Prepare, Transform, main, step

RAW_IMAGE_DIR = Path("data/raw/images")
PROCESSED_DIR = Path("data/interim/processed_images")
PREPARED_DIR = Path("data/prepared")
MODEL_PATH = Path("models/model.pkl")


def _write_source_images(ctx, scale: int) -> None:
    """Stand-in for the outside world: scikit-learn's digits written as PNG files, one folder per label."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images * (255 / 16)).clip(0, 255).astype(np.uint8)
    with ctx.progress("write source images", total=len(images), unit="images") as bar:
        for i, (image, label) in enumerate(zip(images, digits.target, strict=True)):
            big = np.kron(image, np.ones((scale, scale), dtype=np.uint8))
            write_png_atomic(big, RAW_IMAGE_DIR / str(label) / f"digit_{i:05d}.png")
            bar.update(1)
    ctx.log.info("wrote %d source images of %dx%d pixels", len(images), 8 * scale, 8 * scale)


@step
def etl(ctx, scale: int = 4):
    """Extract the raw PNG digits, scale pixels to [0, 1], load them as npy shards (makes the PNGs first)."""
    if not any(RAW_IMAGE_DIR.rglob("*.png")):
        _write_source_images(ctx, scale)
    extractor = Extract()
    transformer = Transform()
    loader = Load()
    for batch in extractor.load_images(directory=RAW_IMAGE_DIR):
        transformed_data = transformer.apply_function(batch, example_func)
        loader.save_to_filesystem(transformed_data, directory=PROCESSED_DIR)


@step
def inspect(ctx):
    """Pixel statistics, image sizes and class balance of the raw images (summary.json and plots)."""
    examiner = Examine(aggregate_batches=True)
    extractor = Extract()
    for batch in extractor.load_images(directory=RAW_IMAGE_DIR):
        examiner.process_batch(batch)
    examiner.generate_summary()


@step
def clean(ctx, min_ink: float = 0.26):
    """Exclude images with almost no ink; saved as the exclusion set cleaned_vN with a reason per key."""
    cleaner = Clean()
    extractor = Extract()
    for batch in extractor.load_images(directory=RAW_IMAGE_DIR):
        cleaner.apply_filter(batch, lambda b: filter_bad_images(b, min_ink), reason=f"ink below {min_ink}")
        cleaner.remove_keys(batch)
    saved = cleaner.clear_keys()
    ctx.log.info("saved exclusion set %s", saved)


@step
def prepare(ctx, train: float = 0.7, val: float = 0.2, test: float = 0.1, seed: int = 42):
    """Split the kept images by key (deterministic) and write npy shards per split."""
    prepare = Prepare()
    extractor = Extract()
    prepare.register_source("features", extractor.load_images(directory=RAW_IMAGE_DIR))
    prepare.load_exclusion_keys("cleaned")
    prepare.set_split(train=train, val=val, test=test, seed=seed, stratify="label")
    prepare.convert(output_format="npy", output_dir=PREPARED_DIR)


@step
def train(ctx, C: float = 1.0, max_iter: int = 500, seed: int = 0):  # noqa: N803
    """Fit the classifier on the train split; report train and validation accuracy."""
    X, y, _ = load_split(PREPARED_DIR / "train")
    model = build_model(C=C, max_iter=max_iter, seed=seed)
    ctx.log.info("training on %d records", len(y))
    model.fit(X, y)
    ctx.log_metric("train_accuracy", float(model.score(X, y)))
    Xv, yv, _ = load_split(PREPARED_DIR / "val")
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
    X, y, _ = load_split(PREPARED_DIR / "test")
    pred = model.predict(X)
    accuracy = float((pred == y).mean())
    recall = {str(c): float((pred[y == c] == c).mean()) for c in np.unique(y)}
    ctx.log_metric("test_accuracy", accuracy)
    (ctx.artifact_dir / "evaluation.json").write_text(json.dumps({"accuracy": accuracy, "recall": recall}, indent=2))
    ctx.log_dataset(PREPARED_DIR / "test", role="input", name="prepared/test")
    ctx.log_dataset(MODEL_PATH, role="input", name="model")


if __name__ == "__main__":
    main()
