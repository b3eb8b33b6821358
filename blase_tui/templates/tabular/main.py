"""A tabular project: patients' measurements from a CSV file to a tracked scikit-learn classifier.

Run a step with `blase step NAME`, or as the seed does: `python main.py --step etl --start_run`.
"""

from __future__ import annotations

import json
from pathlib import Path

from scripts.features import LABEL, has_missing, to_features, write_patients

from blase_tui import Clean, Evaluate, Examine, Extract, Load, Prepare, Train, Transform, main, step

RAW_CSV = Path("data/raw/patients.csv")
TABLE_DIR = Path("data/interim/patients")
PREPARED_DIR = Path("data/prepared")
MODEL_PATH = Path("models/diagnosis.pkl")


@step
def etl(ctx):
    """Read the raw CSV in batches (writing it first from scikit-learn's breast-cancer data) and load it as
    Parquet shards."""
    if not RAW_CSV.exists():
        ctx.log.info("wrote %d patients to %s", write_patients(RAW_CSV), RAW_CSV)
    loader = Load()
    for batch in Extract().load_csv(RAW_CSV, key_column="id"):
        loader.save_to_filesystem(batch, directory=TABLE_DIR)


@step
def inspect(ctx):
    """Column statistics and the suggested schema: feature types, imputation, scaling, label candidates,
    outliers (summary.json, schema.json and plots)."""
    examiner = Examine(aggregate_batches=True, label_column=LABEL)
    for batch in Extract().load_parquet(TABLE_DIR, key_column="key"):
        examiner.process_batch(batch)
    examiner.generate_summary(plots=False)
    schema = examiner.suggest_schema()
    (ctx.artifact_dir / "schema.json").write_text(json.dumps(schema, indent=1))
    for name, column in schema["columns"].items():
        if column.get("imputation") or column.get("outliers"):
            ctx.log.info("%s: %s", name, "; ".join(filter(None, (column.get("imputation"), column.get("outliers")))))


@step
def clean(ctx):
    """Leave out rows with a missing measurement; saved as the exclusion set cleaned_vN."""
    cleaner = Clean()
    for batch in Extract().load_parquet(TABLE_DIR, key_column="key"):
        cleaner.apply_filter(batch, has_missing, reason="missing measurement")
        cleaner.remove_keys(batch)
    cleaner.clear_keys()


@step
def prepare(ctx, seed: int = 42):
    """Feature vectors without the excluded rows, split 70/15/15 by patient id, as npy shards."""
    prepare = Prepare()
    transformer = Transform()
    rows = (transformer.apply_function(b, to_features) for b in Extract().load_parquet(TABLE_DIR, key_column="key"))
    prepare.register_source("patients", rows)
    prepare.load_exclusion_keys("cleaned")
    prepare.set_split(train=0.7, val=0.15, test=0.15, seed=seed, stratify="label")
    prepare.convert(output_format="npy", output_dir=PREPARED_DIR)


@step
def train(ctx, max_iter: int = 200, learning_rate: float = 0.1):
    """Fit a gradient-boosted tree classifier (scikit-learn) on the training split; validation scores
    per fit."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    trainer = Train(seed=0)
    trainer.set_model(HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=learning_rate,
                                                     random_state=0), framework="sklearn")
    trainer.train(epochs=1, data_dir=PREPARED_DIR)
    trainer.save_model(MODEL_PATH)


@step
def evaluate(ctx):
    """Accuracy, per-class scores, confusion matrix and ROC of the saved model on the test split."""
    Evaluate().evaluate_live(model_path=MODEL_PATH, test_data_dir=PREPARED_DIR / "test",
                             task_type="classification", save_preds=True)


if __name__ == "__main__":
    main()
