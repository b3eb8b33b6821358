"""The nine steps of a blase pipeline, each a stub that runs and says what belongs in it.

Run one with `blase step etl` (or `python main.py --step etl --start_run`, the seed's way); `blase steps` lists
them with their params. Replace a stub's body with your code, keeping the modules' calls: each call is recorded
(params, the files read and written, metrics), so every execution can be found, compared and reproduced.
"""

from __future__ import annotations

from pathlib import Path

from blase_tui import main, step

RAW_DIR = Path("data/raw")
PROCESSED_DIR = Path("data/interim")
PREPARED_DIR = Path("data/prepared")


def _todo(ctx, what: str) -> None:
    ctx.log.info("step `%s` is a stub: %s (edit main.py)", ctx.step, what)


@step
def etl(ctx):
    """Extract raw records (Extract.load_images / load_csv / load_parquet / load_audio ...), transform them
    (Transform.apply_function) and load them in batches (Load.save_to_filesystem) into data/interim."""
    RAW_DIR.mkdir(parents=True, exist_ok=True)
    _todo(ctx, f"put your raw data in {RAW_DIR}/ and stream it with Extract")


@step
def inspect(ctx):
    """Statistics of the data, batch by batch (Examine.process_batch, then generate_summary or
    suggest_schema)."""
    _todo(ctx, "feed batches to Examine(aggregate_batches=True) and call generate_summary()")


@step
def clean(ctx):
    """Mark records to leave out with a reason (Clean.apply_filter, remove_keys) and save the set
    (clear_keys: cleaned_v1, cleaned_v2 ...)."""
    _todo(ctx, "mark bad records with Clean().apply_filter(batch, fn) and save them with clear_keys()")


@step
def prepare(ctx, seed: int = 42):
    """Join sources, drop the exclusion set, split train/val/test by key and write shards (Prepare)."""
    _todo(ctx, f"register sources with Prepare, set_split(seed={seed}) and convert() into {PREPARED_DIR}")


@step
def train(ctx, epochs: int = 10):
    """Fit a model on the prepared training split (Train: PyTorch, TensorFlow/Keras or scikit-learn)."""
    _todo(ctx, f"Train().set_model(...), train(epochs={epochs}, data_dir='{PREPARED_DIR}'), save_model(...)")


@step
def evaluate(ctx):
    """Score the saved model on the test split (Evaluate.evaluate_live): metrics, predictions and plots."""
    _todo(ctx, f"Evaluate().evaluate_live(model_path=..., test_data_dir='{PREPARED_DIR}/test')")


@step
def deploy(ctx):
    """Package the trained model to serve it (Deploy, in a later blase)."""
    _todo(ctx, "package the model for serving")


@step
def monitor(ctx):
    """Watch what the served model sees: drift and performance (Monitor, in a later blase)."""
    _todo(ctx, "compare live data with the training data")


@step
def update(ctx):
    """Retrain on new data and keep the new model only if it is better (Update, in a later blase)."""
    _todo(ctx, "retrain on new data and compare with the current model")


if __name__ == "__main__":
    main()
