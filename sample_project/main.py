"""The sample project's steps: digits from PNG files to a tracked classifier.

Run a step with `blase step NAME`, or as the seed does: `python main.py --step etl --start_run`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scripts.engineer import example_func, filter_bad_images, write_png_atomic
from scripts.model import build_cnn

from blase_tui import Clean, Evaluate, Examine, Extract, Load, Prepare, Train, Transform, main, step

RAW_IMAGE_DIR = Path("data/raw/images")
PROCESSED_DIR = Path("data/interim/processed_images")
PREPARED_DIR = Path("data/prepared")
MODEL_PATH = Path("models/digits_cnn.pt")


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
def train(ctx, epochs: int = 8, batch_size: int = 64, learning_rate: float = 0.002, seed: int = 0):
    """Train a small CNN (PyTorch) on the prepared digits, validating every epoch; --resume continues."""
    trainer = Train(seed=seed)
    trainer.set_model(build_cnn(), framework="torch")
    trainer.configure_training(optimizer="adam", loss_fn="cross_entropy", batch_size=batch_size,
                               learning_rate=learning_rate, early_stopping=3)
    trainer.train(epochs=epochs, data_dir=PREPARED_DIR)
    trainer.save_model(MODEL_PATH)
    trainer.save_logs("logs/train.json")


@step
def evaluate(ctx):
    """Accuracy, per-class scores, confusion matrix and ROC of the latest model on the test split."""
    evaluator = Evaluate()
    evaluator.evaluate_live(model_path=MODEL_PATH, test_data_dir=PREPARED_DIR / "test",
                            task_type="classification", save_preds=True)
    evaluator.save_evaluation_logs("logs/eval.json")


if __name__ == "__main__":
    main()
