"""An audio project: WAV clips in class folders to a tracked scikit-learn classifier of their sound.

Run a step with `blase step NAME`, or as the seed does: `python main.py --step etl --start_run`.
"""

from __future__ import annotations

from pathlib import Path

from scripts.sound import band_energies, rms, write_clips

from blase_tui import Clean, Evaluate, Examine, Extract, Load, Prepare, Train, Transform, main, step

RAW_DIR = Path("data/raw/clips")
FEATURES_DIR = Path("data/interim/features")
PREPARED_DIR = Path("data/prepared")
MODEL_PATH = Path("models/sounds.pkl")


@step
def etl(ctx):
    """Read the WAV clips in batches (writing them first), turn each into band energies and load them as npy
    shards."""
    if not any(RAW_DIR.rglob("*.wav")):
        ctx.log.info("wrote %d clips to %s", write_clips(RAW_DIR), RAW_DIR)
    ctx.log_dataset(RAW_DIR, role="output")  # the steps that read the clips trace them back to etl
    transformer, loader = Transform(), Load()
    for batch in Extract().load_audio(RAW_DIR):
        loader.save_to_filesystem(transformer.apply_function(batch, band_energies), directory=FEATURES_DIR)


@step
def inspect(ctx):
    """Statistics of the band energies and of the classes (summary.json and plots)."""
    examiner = Examine(aggregate_batches=True, label_column="label")
    transformer = Transform()
    for batch in Extract().load_audio(RAW_DIR):
        examiner.process_batch(transformer.apply_function(batch, band_energies))
    examiner.generate_summary()


@step
def clean(ctx, min_rms: float = 0.01):
    """Leave out near-silent clips; saved as the exclusion set cleaned_vN."""
    cleaner = Clean()
    for batch in Extract().load_audio(RAW_DIR):
        cleaner.apply_filter(batch, lambda b: rms(b) < min_rms, reason=f"quieter than rms {min_rms}")
        cleaner.remove_keys(batch)
    cleaner.clear_keys()


@step
def prepare(ctx, seed: int = 42):
    """Band energies of the kept clips, split 70/15/15 by clip, as npy shards."""
    prepare = Prepare()
    transformer = Transform()
    prepare.register_source("clips", (transformer.apply_function(b, band_energies)
                                      for b in Extract().load_audio(RAW_DIR)))
    prepare.load_exclusion_keys("cleaned")
    prepare.set_split(train=0.7, val=0.15, test=0.15, seed=seed, stratify="label")
    prepare.convert(output_format="npy", output_dir=PREPARED_DIR)


@step
def train(ctx, C: float = 1.0):
    """Fit a logistic regression (scikit-learn) on the standardised band energies."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    trainer = Train(seed=0)
    trainer.set_model(make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500)), framework="sklearn")
    trainer.train(epochs=1, data_dir=PREPARED_DIR)
    trainer.save_model(MODEL_PATH)


@step
def evaluate(ctx):
    """Accuracy, per-class scores and confusion matrix of the saved model on the test split."""
    Evaluate().evaluate_live(model_path=MODEL_PATH, test_data_dir=PREPARED_DIR / "test",
                             task_type="classification", save_preds=True)


if __name__ == "__main__":
    main()
