"""``Evaluate``: score a saved model on held-out data, with predictions, plots and a comparison with the
previous evaluation of the project.

>>> evaluator = Evaluate()
>>> evaluator.evaluate_live(model_path="models/digits.pt", test_data_dir="data/prepared/test",
...                         task_type="classification", save_preds=True)
>>> evaluator.save_evaluation_logs("logs/eval.json")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from blase_tui.errors import BlaseError
from blase_tui.models.frameworks import of_file, open_model
from blase_tui.models.predictor import Predictor, trained_by_blase
from blase_tui.modules import metrics as metrics_mod
from blase_tui.modules import recording
from blase_tui.modules.shards import open_split


def load_model(model_path: Path, device: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The adapter holding the model at ``model_path`` and its card (``{}`` when there is none)."""
    if not model_path.exists():
        raise BlaseError(f"model {model_path} does not exist; train and save one first (Train.save_model).")
    card_path = model_path.with_name(model_path.name + ".card.json")
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    framework = card.get("framework")
    if framework is None:
        found = of_file(model_path)
        if found is None:
            raise BlaseError(f"cannot tell which framework saved {model_path}; save it with Train.save_model (it"
                             " writes a card).")
        framework = found.name
    return open_model(model_path, framework, model_path.name, device), card


class Evaluate:
    def __init__(self, device: str | None = None, batch_size: int = 256) -> None:
        self.device = device
        self.batch_size = batch_size
        self.results: dict[str, Any] = {}
        self._version: tuple[str, int] | None = None  # (name, version) of the registered model evaluated

    def evaluate_live(self, model_path: str | Path, test_data_dir: str | Path, task_type: str = "classification",
                      save_preds: bool = True, *, input_column: str | None = None,
                      target_column: str | None = None) -> dict[str, Any]:
        """Predict every record of ``test_data_dir`` (npy shards) and compute the metrics of ``task_type``."""
        if task_type not in ("classification", "regression"):
            raise BlaseError(f"task_type must be 'classification' or 'regression', not {task_type!r}.")
        recording.params("evaluate_live", model_path=model_path, test_data_dir=test_data_dir, task_type=task_type,
                         save_preds=save_preds)
        asked, model_path = Path(model_path), self._model_file(Path(model_path))
        # which model this is, said once: a path such as models/cnn.pt holds whatever the last training wrote
        # (a model found in place of a missing path was named already)
        self._version = recording.registered_version(model_path)
        if self._version is not None and model_path == asked:
            recording.say("evaluating %s: %s v%d", model_path, *self._version)
        adapter, card = load_model(model_path, self.device)
        adapter.classification = task_type == "classification"
        split = open_split(test_data_dir)
        x_col = split.input_column(input_column or (card.get("input") or {}).get("column"))
        y_col = split.target_column(target_column or (card.get("input") or {}).get("target"))
        if y_col is None:
            raise BlaseError(f"{test_data_dir} has no target column; name it with target_column=.")
        leaked = self._check_leak(split.keys, card)
        test_hash = recording.dataset(Path(test_data_dir), role="input", records=len(split)) or split.manifest_hash
        recording.dataset(model_path, role="input")
        # the labels as serve and models.load answer them (one predictor); the scores for the metrics
        predictor = Predictor(adapter, card.get("framework") or adapter.framework, task=task_type,
                              classes=card.get("classes"), trained_by_blase=trained_by_blase(card))
        outputs, targets, labels = [], [], []
        bar = recording.progress(f"evaluate {test_data_dir}", total=len(split), unit="records")
        for _, cols in split.batches(self.batch_size, columns=[x_col, y_col]):
            outputs.append(adapter.predict(cols[x_col]))
            if task_type == "classification":
                labels.append(predictor.labels(np.asarray(cols[x_col])))
            targets.append(np.asarray(cols[y_col]))
            bar.update(len(cols[y_col]))
        bar.close()
        out = np.concatenate(outputs) if outputs else np.zeros((0,))
        y = np.concatenate(targets) if targets else np.zeros((0,))
        result: dict[str, Any] = {"model": str(model_path), "test_data": str(test_data_dir), "task": task_type,
                                  "records": int(len(y)), "test_hash": test_hash}
        if self._version is not None:
            result["model_version"] = f"{self._version[0]} v{self._version[1]}"
        if leaked:
            result["trained_on"] = leaked  # test records the model was trained on
        if task_type == "classification":
            classes = card.get("classes") or sorted(np.unique(y).tolist())
            lookup = {str(c): i for i, c in enumerate(classes)}
            unknown = sorted({str(v) for v in y} - set(lookup))
            if unknown:
                raise BlaseError(f"test labels {unknown[:5]} were not among the model's classes {classes[:10]}.")
            y_idx = np.array([lookup[str(v)] for v in y], dtype=np.int64)
            result.update(metrics_mod.classification(y_idx, out, classes))
            named = np.concatenate(labels) if labels else np.zeros((0,))
            preds = {"key": split.keys, "label": [str(v) for v in y], "pred": [str(v) for v in named],
                     "score": out.max(axis=1)}
        else:
            y = y.astype(np.float64)
            result.update(metrics_mod.regression(y, out.astype(np.float64)))
            preds = {"key": split.keys, "target": y, "pred": out, "residual": out - y}
        self.results = result
        self._record(result, preds if save_preds else None, out, y)
        return result

    @staticmethod
    def _model_file(model_path: Path) -> Path:
        """``model_path``; when it does not exist, the model an earlier step of this run saved (seed 000's
        evaluate names ``models/my_model.h5`` while its train step saves ``models/trained_model.h5``), said in
        one line. Outside a run, or when no step of it saved a model, the missing file is an error."""
        if model_path.exists():
            return model_path
        for saved in recording.run_models():
            path = Path(saved.path) if saved.path else None
            if path is not None and path.exists() and path.suffix == model_path.suffix:
                recording.say(
                    "%s does not exist; evaluating %s instead: %s v%d, the model the %s step of this run saved",
                    model_path, path, saved.name, saved.version, saved.step)
                return path
        raise BlaseError(f"model {model_path} does not exist; train and save one first (Train.save_model), or"
                         " give the path it was saved to.")

    @staticmethod
    def _check_leak(keys: np.ndarray, card: dict[str, Any]) -> int:
        """How many of ``keys`` the model was trained on (when its training data is known: a prepared split or
        a folder of images), said in one line: scores on them overstate what the model does on new data."""
        run = card.get("training_run")
        if not run:
            return 0
        from blase_tui.modules.extract import IMAGE_PATTERNS
        from blase_tui.modules.train import raw_images

        for path in recording.training_inputs(run, card.get("training_step_run")):
            if (path / "_manifest.json").is_file():
                train_keys = set(open_split(path).keys.tolist())
            elif raw_images(path):
                train_keys = {p.relative_to(path).as_posix() for pattern in IMAGE_PATTERNS for p in path.rglob(pattern)}
            else:
                continue
            leaked = train_keys.intersection(keys.tolist())
            if leaked:
                recording.say(
                    "%d of the %d test records were used for training (e.g. %r, from %s); its scores"
                    " overstate what the model does on records it has not seen: evaluate on a split it was not"
                    " trained on", len(leaked), len(keys), sorted(leaked)[0], path.relative_to(Path.cwd())
                    if path.is_relative_to(Path.cwd()) else path)
                return len(leaked)
        return 0

    def _record(self, result: dict[str, Any], preds: dict[str, Any] | None, out: np.ndarray, y: np.ndarray) -> None:
        if not recording.active():
            return
        import tempfile

        headline = {k: v for k, v in result.items() if isinstance(v, float)}
        recording.metrics(headline)
        if result.get("trained_on"):
            recording.metrics({"test_records_trained_on": float(result["trained_on"])})
        previous = recording.previous_metrics(list(headline))
        if previous:
            result["previous"] = previous
            result["change"] = {k: headline[k] - v for k, v in previous["metrics"].items() if k in headline}
        folder = Path(tempfile.mkdtemp(prefix="blase-eval-"))
        (folder / "evaluation.json").write_text(json.dumps(result, indent=1, default=str))
        if preds is not None:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table(preds), folder / "predictions.parquet")
        _plots(result, out, y, folder)
        self._prediction_priors(result, out, y, folder, self._version)
        recording.artifact(folder, name="evaluation")
        import shutil

        shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def _prediction_priors(result: dict[str, Any], out: np.ndarray, y: np.ndarray, folder: Path,
                           version: tuple[str, int] | None) -> None:
        """The test split's prediction priors (``evaluation/priors/predictions.json``: class distribution,
        metrics, calibration) for ``Monitor``; when the model is a registered version, the run is tagged
        ``blase.evaluated.<name>`` so that ``load_prediction_priors("name@champion")`` finds them."""
        from blase_tui.modules.priors import prediction_priors

        if result["task"] == "classification":
            classes = result["classes"]
            labels = np.asarray(classes, dtype=object)[out.argmax(axis=1)] if len(out) else np.asarray([])
            priors = prediction_priors("classification", classes, np.asarray([str(v) for v in labels]),
                                       np.asarray([str(v) for v in y]), out)
            priors["classes"] = classes
        else:
            priors = prediction_priors("regression", None, out.astype(np.float64), y)
        # a test split the model was mostly trained on (seed 000 trains on every raw image) is no held-out set:
        # marked as training records, so that Monitor gives no estimate calibrated on them
        priors["split"] = "train" if result.get("trained_on", 0) * 2 > len(y) else "test"
        (folder / "priors").mkdir(exist_ok=True)
        (folder / "priors" / "predictions.json").write_text(json.dumps(priors, default=str))
        if version is not None:
            recording.tags({f"blase.evaluated.{version[0]}": str(version[1])})

    def save_evaluation_logs(self, path: str | Path) -> Path:
        if not self.results:
            raise BlaseError("nothing to save: call evaluate_live first.")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        recording.params("save_evaluation_logs", **{"save_evaluation_logs.path": path})
        path.write_text(json.dumps(self.results, indent=1, default=str))
        recording.dataset(path, role="output")
        return path


def _plots(result: dict[str, Any], out: np.ndarray, y: np.ndarray, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if result["task"] == "classification":
        cm = np.asarray(result["confusion_matrix"])
        classes = result["classes"]
        fig, ax = plt.subplots(figsize=(5.5, 5))
        ax.imshow(cm, cmap="Blues")
        ax.set_xticks(range(len(classes)), classes, rotation=45)
        ax.set_yticks(range(len(classes)), classes)
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                        color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"confusion matrix (accuracy {result['accuracy']:.3f})")
        fig.tight_layout()
        fig.savefig(folder / "confusion_matrix.png", dpi=100)
        plt.close(fig)
        lookup = {c: i for i, c in enumerate(classes)}
        y_idx = np.array([lookup[str(v)] for v in y])
        fig, ax = plt.subplots(figsize=(5.5, 5))
        for i, c in enumerate(classes):
            if len(classes) == 2 and i == 0:
                continue
            fpr, tpr = metrics_mod.roc_curve(out[:, i], y_idx == i)
            ax.plot(fpr, tpr, label=str(c), linewidth=1)
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        auc = result.get("roc_auc")
        ax.set_title("ROC (one vs rest)" + (f", macro AUC {auc:.3f}" if auc is not None else ""))
        if len(classes) <= 12:
            ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        fig.savefig(folder / "roc.png", dpi=100)
        plt.close(fig)
    else:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        axes[0].scatter(y, out, s=4, alpha=0.5)
        axes[0].set_xlabel("true")
        axes[0].set_ylabel("predicted")
        axes[1].hist(out - y, bins=40, color="#4c78a8")
        axes[1].set_xlabel("residual")
        fig.suptitle(f"RMSE {result['rmse']:.4g}, R² {result['r2']:.3f}")
        fig.tight_layout()
        fig.savefig(folder / "residuals.png", dpi=100)
        plt.close(fig)
