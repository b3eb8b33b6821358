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
ALERT_POOL = Path("data/alerts/pool")  # [labelling] pool in blase.toml
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
def etl(ctx, scale: int = 4, alerts: int = 3000):
    """Extract the raw PNG digits, scale pixels to [0, 1], load them as npy shards (makes the PNGs first), and
    write the alert pool that `blase label` rounds draw from."""
    if not any(RAW_IMAGE_DIR.rglob("*.png")):
        _write_source_images(ctx, scale)
    ctx.log_dataset(RAW_IMAGE_DIR, role="output")  # the steps that read the images trace them back to etl
    if alerts and not any(ALERT_POOL.glob("*.parquet")):
        from scripts.alerts import write_pool

        write_pool(ALERT_POOL, alerts)
        ctx.log.info("wrote %d alerts to %s (label them with `blase label`)", alerts, ALERT_POOL)
    if alerts:
        ctx.log_dataset(ALERT_POOL, role="output", name="alert pool")
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
    cleaner.clear_keys()  # saves the exclusion set cleaned_vN and logs its name and size


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


@step
def al_train(ctx, max_iter: int = 100, learning_rate: float = 0.1):
    """Active learning: retrain the real/bogus classifier on every label so far (run it after each round)."""
    import shutil

    from sklearn.ensemble import HistGradientBoostingClassifier

    from blase_tui.labelling import record_training_ids, training_set

    data = training_set(ctx.project)  # every labelled alert with its features, target and round
    if len(set(data.targets.tolist())) < 2:
        raise ValueError("the labels so far are all one class; label a few more with `blase label` first")
    shutil.rmtree("data/al", ignore_errors=True)  # this round's training set replaces the last one
    Load().save_to_filesystem(data.batch(), "data/al/train")
    trainer = Train(seed=42)
    trainer.set_model(HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=learning_rate,
                                                     l2_regularization=10, min_samples_leaf=2, random_state=42),
                      framework="sklearn")
    trainer.train(epochs=1, data_dir="data/al")
    trainer.save_model("models/vra.pkl", name="vra")
    record_training_ids(ctx, data.keys, data.rounds)
    _score_against_truth(ctx, trainer.adapter.model)


def _score_against_truth(ctx, model) -> None:
    """The sample knows each alert's true kind (a real project would not): report how this round's model does
    on the whole pool, so the rounds can be compared in `blase runs list`."""
    import pyarrow.dataset as ds
    from scripts.alerts import FEATURES, read_truth

    table = ds.dataset(ALERT_POOL).to_table(columns=["candid", *FEATURES])
    truth = read_truth(ALERT_POOL.parent / "truth.csv")
    y = np.array([truth[str(c)] == "real" for c in table.column("candid").to_pylist()], dtype=int)
    x = np.column_stack([table.column(f).to_numpy(zero_copy_only=False).astype(np.float32) for f in FEATURES])
    accuracy = float((model.predict(x) == y).mean())
    ctx.log_metric("pool_accuracy", accuracy)
    ctx.log.info("accuracy on the whole pool against the hidden truth: %.3f", accuracy)


if __name__ == "__main__":
    main()
