"""``Train``: fit a PyTorch, TensorFlow/Keras or scikit-learn model on prepared splits, with progress, metrics
per epoch, a checkpoint after every epoch, resume after a crash, fine-tuning with frozen layers, early stopping,
and a model card.

>>> trainer = Train()
>>> trainer.set_model(model, framework="torch")
>>> trainer.configure_training(optimizer="adam", loss_fn="cross_entropy", batch_size=64, learning_rate=1e-3)
>>> trainer.train(epochs=10, data_dir="data/prepared")
>>> trainer.save_model("models/digits.pt")
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from blase_tui.errors import BlaseError, ConfigError
from blase_tui.frameworks.base import TrainConfig
from blase_tui.models import card as card_mod
from blase_tui.models import frameworks
from blase_tui.modules import recording
from blase_tui.modules.budget import WHOLE_SHARE, records_per_batch, resolve_budget, share_of
from blase_tui.modules.load import MANIFEST, Load
from blase_tui.modules.shards import SplitData, open_split

MODES = ("scratch", "fine_tune", "resume")
CHECKPOINTS = "checkpoints"


def raw_images(folder: Path) -> bool:
    """Whether ``folder`` holds image files rather than prepared shards (no manifest in it or its splits)."""
    if not folder.is_dir() or (folder / MANIFEST).is_file() or (folder / "train" / MANIFEST).is_file():
        return False
    from blase_tui.modules.extract import IMAGE_PATTERNS

    return any(next(folder.rglob(pattern), None) is not None for pattern in IMAGE_PATTERNS)


def seed_all(seed: int) -> None:
    """Seed Python, numpy, PyTorch (when installed) and TensorFlow (when already imported)."""
    import random
    import sys
    from importlib.util import find_spec

    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules or find_spec("torch") is not None:
        import torch

        torch.manual_seed(seed)
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].keras.utils.set_random_seed(seed)


_log = recording.log


class Train:
    """Train a model on ``data_dir/train`` (validating on ``data_dir/val`` when present) in streamed batches
    read from memory-mapped shards."""

    def __init__(self, seed: int = 0, device: str | None = None, memory_budget: int | str | None = None) -> None:
        seed_all(seed)  # before the model is built, so its initial weights repeat too
        self.config = TrainConfig(seed=seed, device=device)
        self.memory_budget = resolve_budget(memory_budget)
        self.model: Any = None
        self.framework: str | None = None
        self.adapter: Any = None
        self.mode = "scratch"
        self.checkpoint_path: Path | None = None
        self.freeze_layers: list[str] = []
        self.frozen: list[str] = []
        self.history: list[dict[str, float]] = []
        self.classes: np.ndarray | None = None
        self.train_hash: str | None = None
        self.epochs_run: list[int] = []
        self.resumed_from: str | None = None
        self.input_signature: dict[str, Any] = {}
        self.checkpoint_dir: Path | None = None
        self.best_epoch: int | None = None  # with early stopping: the epoch whose weights the model keeps

    # ------------------------------------------------------------------ setup
    def set_model(self, model: Any, framework: str = "torch") -> None:
        recording.params("set_model", model=model, framework=framework)
        self.adapter = frameworks.make_adapter(framework)
        self.model, self.framework = model, framework

    def configure_training(self, optimizer: Any = "adam", loss_fn: Any = None, metrics: list[str] | None = None,
                           batch_size: int = 64, learning_rate: float = 1e-3, *, early_stopping: int | None = None,
                           monitor: str = "val_loss", task: str = "classification", input_column: str | None = None,
                           target_column: str | None = None, device: str | None = None, seed: int | None = None,
                           **extra: Any) -> None:
        """``early_stopping``: stop after that many epochs without improvement of ``monitor`` (and keep the
        best weights). ``task``: classification or regression. ``device``: default CUDA when present."""
        if task not in ("classification", "regression"):
            raise BlaseError(f"task must be 'classification' or 'regression', not {task!r}.")
        given = {"optimizer": optimizer, "loss_fn": loss_fn, "metrics": metrics, "batch_size": batch_size,
                 "learning_rate": learning_rate, "early_stopping": early_stopping, "task": task,
                 "input_column": input_column, "target_column": target_column, "device": device, **extra}
        recording.params("configure_training", **{k: v for k, v in given.items() if v is not None})
        _at_least_one("batch_size", batch_size, "--set batch_size=64 or in configure_training(batch_size=...)")
        try:
            lr_ok = math.isfinite(float(learning_rate)) and float(learning_rate) > 0
        except (TypeError, ValueError):
            lr_ok = False
        if not lr_ok:
            raise ConfigError(f"learning_rate must be a number above 0, not {learning_rate!r}; set it with"
                              " --set learning_rate=0.001 or in configure_training(learning_rate=...).")
        self.config = TrainConfig(
            optimizer=optimizer, loss_fn=loss_fn, metrics=list(metrics or ["accuracy"]), batch_size=int(batch_size),
            learning_rate=float(learning_rate), early_stopping=early_stopping, monitor=monitor, task=task,
            input_column=input_column, target_column=target_column, device=device or self.config.device,
            seed=self.config.seed if seed is None else int(seed), extra=extra,
        )

    def set_mode(self, mode: str = "scratch", checkpoint_path: str | Path | None = None,
                 freeze_layers: list[str] | None = None) -> None:
        """``scratch``; ``fine_tune`` (start from ``checkpoint_path``'s weights, optionally freezing layers by
        name); ``resume`` (continue from a checkpoint: ``checkpoint_path``, or the last one a previous execution
        of this step left)."""
        if mode not in MODES:
            raise BlaseError(f"mode must be one of {', '.join(MODES)}, not {mode!r}.")
        recording.params("set_mode", mode=mode, **{k: v for k, v in (
            ("checkpoint_path", checkpoint_path), ("freeze_layers", freeze_layers)) if v is not None})
        if mode == "fine_tune" and checkpoint_path is not None and not Path(checkpoint_path).exists():
            raise BlaseError(f"checkpoint {checkpoint_path} does not exist; train a base model first or fix the path.")
        self.mode = mode
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.freeze_layers = list(freeze_layers or [])

    # ---------------------------------------------------------------- helpers
    def _targets(self, split: SplitData, column: str | None) -> np.ndarray | None:
        if column is None:
            return None
        return np.concatenate([np.asarray(a) for a in split.columns[column]])

    def _encode(self, y: np.ndarray) -> np.ndarray:
        if self.classes is None:
            return y.astype(np.float32)
        index = np.searchsorted(self.classes, y)
        index = np.clip(index, 0, len(self.classes) - 1)
        bad = self.classes[index] != y
        if np.any(bad):
            raise BlaseError(f"label {y[bad][0]!r} is not among the training classes {list(self.classes)[:10]}.")
        return index.astype(np.int64)

    def _find_checkpoint(self) -> Path | None:
        if self.checkpoint_path is not None:
            if not self.checkpoint_path.exists():
                raise BlaseError(f"checkpoint {self.checkpoint_path} does not exist.")
            return self.checkpoint_path
        if recording.step() is None:
            raise BlaseError("mode='resume' outside a step needs checkpoint_path=...")
        return recording.last_checkpoint(f"last{self.adapter.file_suffix}")

    def _checkpoint_dir(self) -> Path:
        """The step's folder in its run; outside any run a temporary folder (pass ``checkpoint_path`` to
        resume there)."""
        if self.checkpoint_dir is not None:
            path = self.checkpoint_dir
        else:
            path = recording.scratch_dir(CHECKPOINTS, prefix="blase-checkpoints-")
            if not recording.active():
                _log("no run: checkpoints go to %s", path)
            self.checkpoint_dir = path
        path.mkdir(parents=True, exist_ok=True)
        return path

    # ------------------------------------------------------------------ train
    def train(self, epochs: int = 10, data_dir: str | Path = "data/prepared") -> list[dict[str, float]]:
        """Train for ``epochs`` epochs (fewer with early stopping); returns the per-epoch history."""
        if self.adapter is None:
            raise BlaseError("no model: call set_model(model, framework=...) before train().")
        recording.params("train", epochs=epochs, data_dir=data_dir)
        # epochs=0 or -1 would run no epoch and still save, register and evaluate an untrained model
        _at_least_one("epochs", epochs, "--set epochs=10 or in train(epochs=...)")
        _mark_trained(self.model)
        data_dir = Path(data_dir)
        from_images = raw_images(data_dir)
        if from_images:  # the images are the recorded input, not blase's cache of them
            data_dir = self._shards_from_images(data_dir)
        train_dir = data_dir / "train" if (data_dir / "train").is_dir() else data_dir
        train = open_split(train_dir)
        val = open_split(data_dir / "val") if (data_dir / "val").is_dir() and train_dir != data_dir else None
        cfg = self.config
        x_col = train.input_column(cfg.input_column)
        y_col = train.target_column(cfg.target_column)
        self._splits = (train, val, x_col, y_col)  # for the priors save_model records
        if y_col is None:
            raise BlaseError(f"{train_dir} has no target column (label, y or target); name it with target_column=.")
        y_all = self._targets(train, y_col)
        if cfg.task == "classification":
            self.classes = np.unique(y_all)
        # what the splits hold now, as every reader hashes them (their manifest says what they held when written)
        self.train_hash = (None if from_images else recording.dataset(train_dir, role="input", records=len(train))
                           ) or train.manifest_hash
        if val is not None and not from_images:
            # validation picks the best epoch, so it decides the model as much as the training split does
            recording.dataset(data_dir / "val", role="input", records=len(val))
        first = train.columns[x_col][0]
        self.input_signature = {"column": x_col, "shape": list(first.shape[1:]), "dtype": str(first.dtype),
                                "target": y_col}
        self.adapter.setup(self.model, cfg, len(self.classes) if self.classes is not None else None)
        if self.mode == "fine_tune" and self.checkpoint_path is not None:
            recording.dataset(self.checkpoint_path, role="input")  # the base model is an input like the data
            self._load_weights(self.checkpoint_path)
        if self.freeze_layers:
            self.frozen = self.adapter.freeze(self.freeze_layers)
            _log("froze %d parameter tensors in %s", len(self.frozen), ", ".join(self.freeze_layers))

        start_epoch, best, best_state, waited, last_epoch = 1, None, None, 0, epochs
        if self.mode == "resume" or recording.resume_requested():
            path = self._find_checkpoint()
            if path is None:
                _log("no checkpoint from an earlier execution of this step: training from scratch")
            else:
                payload = self.adapter.read_checkpoint(path)
                start_epoch = int(payload["epoch"]) + 1
                self.history = list(payload.get("history", []))
                best, waited = payload.get("best"), int(payload.get("waited", 0))
                self.resumed_from = str(path)
                self.mode = "resume"
                stopped = bool(self.config.early_stopping and waited >= self.config.early_stopping)
                if stopped or start_epoch > epochs:
                    last_epoch = start_epoch - 1  # that training is over: nothing to run, nothing to save
                    why = (f"its early stopping had ended the training ({self.config.monitor} did not improve for"
                           f" {waited} epochs)" if stopped else
                           f"epochs is {epochs}; set it above {start_epoch - 1} (--set epochs=N) to train further")
                    _log("resuming from %s after epoch %d: no epoch left to train, %s", path, start_epoch - 1, why)
                else:
                    _log("resuming from %s after epoch %d", path, start_epoch - 1)

        if self.framework == "sklearn" and not self.adapter.incremental:
            return self._fit_whole(train, val, x_col, y_col)

        n_batches = -(-len(train) // cfg.batch_size)
        ckpt_dir = self._checkpoint_dir()
        # one bar over the epochs still to run, so the live panes have an ETA for the whole training
        overall = recording.progress("train", total=max(0, last_epoch - start_epoch + 1), unit="epochs")
        for epoch in range(start_epoch, last_epoch + 1):
            started = time.perf_counter()
            total_loss = correct = seen = 0
            bar = recording.progress(f"train epoch {epoch}/{epochs}", total=n_batches, unit="batches")
            for _, cols in train.batches(cfg.batch_size, columns=[x_col, y_col], shuffle=True, seed=cfg.seed,
                                         epoch=epoch):
                loss, ok, n = self.adapter.train_batch(cols[x_col], self._encode(cols[y_col]))
                total_loss += loss
                correct += ok
                seen += n
                bar.update(1, nbytes=cols[x_col].nbytes)
                overall.advance_within(bar.done / (n_batches + 1))  # the last part: validation, checkpoint
            bar.close()
            row: dict[str, float] = {"epoch": float(epoch), "loss": total_loss / max(seen, 1),
                                     "seconds": time.perf_counter() - started}
            if cfg.task == "classification":
                row["accuracy"] = correct / max(seen, 1)
            if val is not None:
                row.update(self._validate(val, x_col, y_col))
            self.history.append(row)
            self.epochs_run.append(epoch)
            recording.metrics({k: v for k, v in row.items() if k not in ("epoch",)}, iteration=epoch)
            key = cfg.monitor if cfg.monitor in row else "loss"  # no validation split: watch the training loss
            monitor = row[key]
            improved = best is None or (monitor > best if "acc" in key else monitor < best)
            if improved:
                best, waited = monitor, 0
                if cfg.early_stopping:
                    best_state, self.best_epoch = self.adapter.state(), epoch
            else:
                waited += 1
            self.adapter.save_checkpoint(ckpt_dir / f"last{self.adapter.file_suffix}",
                                         {"epoch": epoch, "history": self.history, "best": best, "waited": waited})
            _log("epoch %d/%d: %s", epoch, epochs, ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))
            overall.update(1)
            if cfg.early_stopping and waited >= cfg.early_stopping:
                _log("early stopping after epoch %d: %s did not improve for %d epochs", epoch, cfg.monitor, waited)
                break
        overall.close()
        if cfg.early_stopping and best_state is not None:
            self.adapter.load_state(best_state)
            last = int(self.history[-1]["epoch"]) if self.history else None
            if self.best_epoch is not None and last is not None and self.best_epoch != last:
                # the run's metrics are the last epoch's; the saved model (and its card) are this epoch's
                kept = next((h for h in self.history if int(h["epoch"]) == self.best_epoch), {})
                _log("kept the weights of epoch %d, the best %s (%.4g): the model's metrics are that epoch's, not"
                     " epoch %d's", self.best_epoch, cfg.monitor, kept.get(cfg.monitor, float("nan")), last)
        return self.history

    def _validate(self, val: SplitData, x_col: str, y_col: str) -> dict[str, float]:
        total_loss = correct = seen = 0
        for _, cols in val.batches(max(self.config.batch_size, 256), columns=[x_col, y_col]):
            loss, ok, n = self.adapter.loss(cols[x_col], self._encode(cols[y_col]))
            total_loss += loss
            correct += ok
            seen += n
        out = {"val_loss": total_loss / max(seen, 1)}
        if self.config.task == "classification":
            out["val_accuracy"] = correct / max(seen, 1)
        return out

    def _fit_whole(self, train: SplitData, val: SplitData | None, x_col: str, y_col: str) -> list[dict[str, float]]:
        # the estimator gets float32 copies: count those, not the stored bytes
        nbytes = sum(a.size * 4 for a in train.columns[x_col])
        if nbytes > share_of(self.memory_budget, WHOLE_SHARE):
            raise BlaseError(
                f"{type(self.model).__name__} fits on the whole training split at once ({nbytes / 2**20:.0f} MiB),"
                f" more than the memory budget ({self.memory_budget / 2**20:.0f} MiB); raise the budget or use an"
                " estimator with partial_fit (e.g. SGDClassifier)."
            )
        _log("%s has no partial_fit: the whole training split is loaded (%.1f MiB, within the %.0f MiB budget)",
             type(self.model).__name__, nbytes / 2**20, self.memory_budget / 2**20)
        started = time.perf_counter()
        x = train.gather(x_col, np.arange(len(train)))
        y = self._encode(np.concatenate([np.asarray(a) for a in train.columns[y_col]]))
        bar = recording.progress("fit", total=1, unit="fits")
        self.adapter.fit_all(x, y)
        bar.update(1)
        bar.close()
        loss, ok, n = self.adapter.loss(x, y)
        row = {"epoch": 1.0, "loss": loss / n, "seconds": time.perf_counter() - started}
        if self.config.task == "classification":
            row["accuracy"] = ok / n
        if val is not None:
            row.update(self._validate(val, x_col, y_col))
        self.history = [row]
        self.epochs_run = [1]
        recording.metrics({k: v for k, v in row.items() if k != "epoch"}, iteration=1)
        return self.history

    def _load_weights(self, path: Path) -> None:
        """Fine-tuning starts from a saved model or checkpoint of the same architecture."""
        if self.framework == "torch":
            import torch

            payload = torch.load(path, map_location="cpu", weights_only=False)
            state = payload.state_dict() if hasattr(payload, "state_dict") else payload.get("model", payload)
            self.adapter.model.load_state_dict(state)
        elif self.framework == "tensorflow":
            import tensorflow as tf

            self.adapter.model.set_weights(tf.keras.models.load_model(path, compile=False).get_weights())
        else:
            raise BlaseError("fine_tune applies to neural networks (torch, tensorflow).")

    # ------------------------------------------------------------------ save
    def card(self) -> dict[str, Any]:
        """The model card (``models.card.build``) with what training knows: the input it was trained on, its
        epochs and history, the data it read, the seed, frozen layers and what it resumed from."""
        card = card_mod.build(
            self.adapter.model, self.framework or "", task=self.config.task, metrics=self._kept_metrics(),
            where=recording.where(), classes=None if self.classes is None else list(self.classes),
            model_info=self.adapter.describe(),
            extra={"epochs": self.epochs_run, "best_epoch": self.best_epoch, "history": self.history,
                   "data_manifest_hash": self.train_hash, "seed": self.config.seed,
                   "frozen_layers": self.freeze_layers, "resumed_from": self.resumed_from,
                   **getattr(self, "extra_card", {})})
        card["input"] = self.input_signature
        card.setdefault("classes", None)
        return card

    def _kept_metrics(self) -> dict[str, float]:
        """The metrics of the weights the model holds: the best epoch's after early stopping, else the last."""
        if self.best_epoch is not None:
            for row in self.history:
                if int(row["epoch"]) == self.best_epoch:
                    return row
        return self.history[-1] if self.history else {}

    def save_model(self, path: str | Path, name: str | None = None) -> str:
        """Write the model at exactly ``path``, in the format its suffix names (``.keras``; ``.h5`` legacy
        Keras HDF5; ``.pt``/``.pth`` PyTorch; ``.joblib``/``.pkl`` scikit-learn), and its model card beside it
        (``path.card.json``); keep both in the content store and register a new version of the model ``name``
        (default: the file's stem). Returns ``"name v3"`` (the path outside any run)."""
        if self.adapter is None or self.adapter.model is None:
            raise BlaseError("nothing to save: train() a model first.")
        path = Path(path)
        if self.resumed_from is not None and not self.epochs_run and recording.active():
            # a resume of a finished training: the model is the one that training saved, not a new version
            # (outside any run nothing is registered, and the file is written where it was asked for)
            known = recording.registered_version(path) if path.is_file() else None
            held = f" ({path} still holds {known[0]} v{known[1]})" if known else ""
            _log("no model saved and no new version registered: this execution resumed a finished training and"
                 " trained no epoch%s", held)
            return f"{known[0]} v{known[1]}" if known else str(path)
        recording.params("save_model", **{"save_model.path": path}, **({"save_model.name": name} if name else {}))
        allowed = frameworks.FRAMEWORKS[self.framework].suffixes if self.framework in frameworks.FRAMEWORKS else ()
        if allowed and path.suffix not in allowed:
            raise BlaseError(f"{path}: a {self.framework} model is saved as {' or '.join(allowed)}; name the file"
                             f" with one of those suffixes (e.g. {path.with_suffix(allowed[0])}).")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.adapter.save(path)
        card = self.card()
        card_path = path.with_name(path.name + ".card.json")
        card_path.write_text(json.dumps(card, indent=1, default=str))
        saved = recording.register_model(name or path.stem, path, card_path, framework=self.framework or "",
                                         metrics=card["metrics"])
        if saved is None:
            return str(path)
        self._record_priors(saved)
        _log("saved model %s (%s)", saved, path)
        return saved

    def _record_priors(self, saved: str) -> None:
        """Feature priors of the training split and prediction priors on the validation split (else the training
        split), kept with the model (``saved``: "name vN") as ``priors/features.json`` and
        ``priors/predictions.json`` for ``Monitor``. Streamed in batches. Images get image priors instead of one
        prior per pixel (:mod:`blase_tui.modules.image_priors`: descriptors and the model's embedding); other
        inputs of more than 200 values a record get prediction priors only."""
        from blase_tui.modules import image_priors
        from blase_tui.modules.priors import FeaturePriors, prediction_priors

        folder = recording.artifact_dir()
        splits = getattr(self, "_splits", None)
        if folder is None or splits is None or self.adapter is None:
            return
        train, val, x_col, y_col = splits
        features: FeaturePriors | None = FeaturePriors(seed=self.config.seed or 0)
        embedding = image_priors.EmbeddingPriors(seed=self.config.seed or 0)
        embed = getattr(self.adapter, "embed", None)
        shape: tuple[int, ...] | None = None
        _, first = next(iter(train.batches(1, columns=[x_col])), (None, {x_col: np.zeros((1, 1))}))
        rows = min(4096, records_per_batch(np.asarray(first[x_col]).nbytes * 4.0, self.memory_budget))
        for _, cols in train.batches(rows, columns=[x_col]):
            x = np.asarray(cols[x_col])
            if image_priors.is_image(x.shape[1:]):
                shape = x.shape[1:]
                assert features is not None
                features.update(image_priors.descriptors(x))
                if val is None:  # the embedding's reference: held-out images when there are, else training's
                    wanted = embedding.wanted(len(x), len(train))
                    if embed is not None and wanted.any():
                        embedding.update(embed(x[wanted]))
                continue
            if x.ndim != 2 or x.shape[1] > 200:
                features = None
                break
            assert features is not None
            features.update({f"x{i}": x[:, i] for i in range(x.shape[1])})
        if shape is not None and val is not None and embed is not None:
            for _, cols in val.batches(rows, columns=[x_col]):
                x = np.asarray(cols[x_col])
                wanted = embedding.wanted(len(x), len(val))
                if wanted.any():
                    embedding.update(embed(x[wanted]))
        (folder / "priors").mkdir(parents=True, exist_ok=True)
        if features is not None and features.rows:
            data = features.to_json()
            if shape is not None:
                name, _, version = saved.rpartition(" v")
                data["image"] = {"shape": [int(s) for s in shape], "model": f"{name}:{version}"}
                section = embedding.to_json()
                if section is not None:
                    data["embedding"] = section
            (folder / "priors" / "features.json").write_text(json.dumps(data))
        held = val if val is not None else train
        preds, probas, truth = [], [], []
        for _, cols in held.batches(max(self.config.batch_size, 256), columns=[x_col, y_col]):
            out = np.asarray(self.adapter.predict(np.asarray(cols[x_col])))
            truth.append(np.asarray(cols[y_col]))
            if self.config.task == "classification" and out.ndim == 2:
                probas.append(out)
                labels = out.argmax(axis=1)
                preds.append(self.classes[labels] if self.classes is not None else labels)
            else:
                preds.append(out.reshape(len(out), -1)[:, 0] if out.ndim == 2 else out)
        if preds:
            classes = None if self.classes is None else list(self.classes)
            priors = prediction_priors(self.config.task, classes, np.concatenate(preds), np.concatenate(truth),
                                       np.concatenate(probas) if probas else None)
            priors["split"] = "validation" if val is not None else "train"  # "train": no honest estimate
            (folder / "priors" / "predictions.json").write_text(json.dumps(priors, default=_plain_json))

    def save_logs(self, path: str | Path) -> Path:
        """The training history and configuration as JSON (also kept with the run)."""
        path = Path(path)
        recording.params("save_logs", **{"save_logs.path": path})
        path.parent.mkdir(parents=True, exist_ok=True)
        config = {k: (v if isinstance(v, int | float | str | list | dict | type(None)) else repr(v))
                  for k, v in vars(self.config).items()}
        path.write_text(json.dumps({"config": config, "mode": self.mode, "history": self.history,
                                    "epochs": self.epochs_run, "resumed_from": self.resumed_from}, indent=1))
        recording.artifact(path, name=f"logs/{path.name}")
        recording.dataset(path, role="output")
        return path

    def _shards_from_images(self, folder: Path) -> Path:
        """A folder of raw images (labels from class folders, as Extract reads them) as training shards, read
        through ``Extract`` within the memory budget and cached by the images' content hash, so the next
        epoch, or the next run on the same images, reads memory-mapped shards."""
        from blase_tui.modules.extract import IMAGE_PATTERNS, Extract
        from blase_tui.modules.readers.common import files as find_files

        files = find_files(folder, IMAGE_PATTERNS, True, False, "image")
        digest, _, _ = recording.files_hash(files, root=folder)
        out = recording.cache_dir("image-shards") / digest.replace(":", "-")[:40]
        if not (out / "_manifest.json").is_file():
            import shutil

            tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            loader = Load(record=False)
            with recording.internal():
                for batch in Extract(memory_budget=self.memory_budget).load_images(directory=folder):
                    loader.save_to_filesystem(batch, tmp, format="npy")
            shutil.rmtree(out, ignore_errors=True)
            os.replace(tmp, out)
        else:  # the images are this step's input all the same
            recording.dataset(folder, role="input", records=len(files))
        _log("training on the images in %s (labels from their folders), %d images", folder, len(files))
        return out


_TRAINED: list[Any] = []  # weak references to the model objects Train.train() fitted in this process


def _at_least_one(name: str, value: Any, how: str) -> None:
    """``value`` is a whole number of at least 1 (not a bool, a float or text), else one line naming ``how`` to
    set it."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, not {value!r}; set it with {how}.")


def _mark_trained(model: Any) -> None:
    import weakref

    try:
        _TRAINED.append(weakref.ref(model))
    except TypeError:  # an object that takes no weak reference: never counted as trained here
        return


def trained_in_this_process(model: Any) -> bool:
    """Whether ``Train.train`` fitted this very object in this process (``Deploy`` then deploys it as it is,
    rather than taking it for the architecture of a model trained by an earlier step)."""
    return any(ref() is model for ref in _TRAINED)


def _plain_json(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)
