"""A JSON project: customer records exported as JSON arrays and JSON lines (nested objects, missing fields) to
features and a tracked scikit-learn classifier that says who will churn.

Run the whole pipeline with `blase run`, a step with `blase step NAME`, or as the seed does:
`python main.py --step etl --start_run`.
"""

from __future__ import annotations

import json
from itertools import chain
from pathlib import Path

from scripts.records import LABEL, to_features, write_exports

from blase_tui import Evaluate, Examine, Extract, Load, Prepare, Train, Transform, main, step

RAW = Path("data/raw")
TABLE_DIR = Path("data/interim/customers")
PREPARED_DIR = Path("data/prepared")
MODEL_PATH = Path("models/churn.skops")


@step
def etl(ctx):
    """Read the JSON array exports and the JSON-lines events in batches (writing them first, as a stand-in for
    your app's exports) and load them as Parquet shards keyed by customer id."""
    if not any(RAW.glob("*.json*")):
        ctx.log.info("wrote %d customer records to %s", write_exports(RAW), RAW)
    extract, loader = Extract(), Load()
    exports = extract.load_json(RAW, key_column="id")  # every *.json: a top-level array of records, streamed
    events = extract.load_jsonl(RAW / "events.jsonl", key_column="id")
    for batch in chain(exports, events):
        loader.save_to_filesystem(batch, directory=TABLE_DIR)


@step
def inspect(ctx):
    """Column statistics and the suggested schema of the loaded records (summary.json and schema.json)."""
    examiner = Examine(aggregate_batches=True, label_column=LABEL)
    for batch in Extract().load_parquet(TABLE_DIR, key_column="key"):
        examiner.process_batch(batch)
    examiner.generate_summary(plots=False)
    (ctx.artifact_dir / "schema.json").write_text(json.dumps(examiner.suggest_schema(), indent=1))


@step
def prepare(ctx, seed: int = 42):
    """Flatten each record to a feature vector (nested usage and support fields, the plan one-hot) and split
    70/15/15 by customer id, stratified by the label, as npy shards."""
    transformer = Transform()
    rows = (transformer.apply_function(b, to_features) for b in Extract().load_parquet(TABLE_DIR, key_column="key"))
    prepare = Prepare()
    prepare.register_source("customers", rows)
    prepare.set_split(train=0.7, val=0.15, test=0.15, seed=seed, stratify="label")
    prepare.convert(output_format="npy", output_dir=PREPARED_DIR)


@step
def train(ctx, max_iter: int = 150, learning_rate: float = 0.1):
    """Fit a gradient-boosted tree classifier (scikit-learn; missing values taken as they are) on the training
    split, scored on the validation split."""
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
