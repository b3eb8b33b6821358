"""Active learning on alert-like records: label a round with single keys (`blase label`), retrain on every label
(`blase step train`), and the next round asks about the records the new model is least sure of.

Run a step with `blase step NAME`, or as the seed does: `python main.py --step etl`.
"""

from __future__ import annotations

from pathlib import Path

from blase_tui import Examine, Extract, Load, Train, main, step

POOL = Path("data/alerts/pool")  # [labelling] pool in blase.toml
MODEL_PATH = Path("models/realbogus.pkl")


@step
def etl(ctx, alerts: int = 3000):
    """Write the pool of alerts (light curves, PNG stamps, scores and features) that labelling rounds draw
    from; a real project would fetch them from its broker here."""
    if not any(POOL.glob("*.parquet")):
        from scripts.alerts import write_pool

        write_pool(POOL, alerts)
        ctx.log.info("wrote %d alerts to %s (label them with `blase label`)", alerts, POOL)
    ctx.log_dataset(POOL, role="output", name="alert pool")


@step
def inspect(ctx):
    """Statistics of the pool's features (summary.json and plots)."""
    from scripts.alerts import FEATURES

    examiner = Examine(aggregate_batches=True)
    for batch in Extract().load_parquet(POOL, columns=FEATURES):
        examiner.process_batch(batch)
    examiner.generate_summary()


@step
def train(ctx, max_iter: int = 100, learning_rate: float = 0.1):
    """Retrain the real/bogus classifier on every label so far (run it after each round)."""
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
    trainer.save_model(MODEL_PATH, name="realbogus")
    record_training_ids(ctx, data.keys, data.rounds)


if __name__ == "__main__":
    main()
