"""Labels as training data, and the record of what a training run trained on.

- :func:`label_batches`: the current labels as Batches (``label``, ``target``, ``round`` columns, keyed by the
  record key), to join to the pool with ``Prepare.register_source("targets", label_batches(project))``.
- :func:`training_set`: the labelled records of the pool with their features and targets, in one Batch-able
  object (what the seed builds as ``X_train``/``y_train``).
- :func:`record_training_ids`: a training step writes ``training_ids.csv`` (key, round) as an artifact and tags
  its run ``round=N``; the next label round excludes those keys and scores with that run's model.

>>> @step
... def train(ctx):
...     data = training_set(ctx.project)
...     Load().save_to_filesystem(data.batch(), "data/al/train")
...     trainer = Train(seed=42)
...     trainer.set_model(HistGradientBoostingClassifier(), framework="sklearn")
...     trainer.train(data_dir="data/al")
...     trainer.save_model("models/vra.pkl")
...     record_training_ids(ctx, data.keys, data.rounds)
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blase_tui.errors import BlaseError
from blase_tui.labelling import config as config_mod
from blase_tui.labelling.pool import Pool
from blase_tui.labelling.queue import TRAINING_IDS
from blase_tui.modules import recording
from blase_tui.modules.batch import Batch, BatchMeta
from blase_tui.store import labels as label_store

if TYPE_CHECKING:
    from blase_tui.core.project import Project


def _project(project: Project | str | Path | None) -> Project:
    from blase_tui.core.project import Project

    if isinstance(project, Project):
        return project
    if project is None:
        ctx = recording.step()
        if ctx is not None:
            return ctx.project
        return Project.discover()
    return Project.discover(Path(project))


def _array(values: Sequence[Any]) -> np.ndarray:
    """Targets as one numpy array: integers, floats, or strings when any target is one."""
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.float64)
    return np.asarray([str(v) for v in values])


def _record_labels(project: Project, labels: Sequence[label_store.Label]) -> None:
    """Inside a step: the labels are an input dataset (hash of what was read; the stamp file's fingerprint makes
    a later execution with changed labels run again instead of being reused)."""
    if not recording.active():
        return
    from blase_tui.store.hashing import hash_json

    stamp = label_store.stamp_path(project.store)
    if not stamp.exists():
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text("0\n")
    digest = "xxh3:" + hash_json([[lab.key, lab.label, lab.target] for lab in labels])
    recording.dataset(stamp, role="input", name="labels", digest=digest, records=len(labels))


def label_batches(project: Project | str | Path | None = None, *, batch_size: int = 100_000,
                  untrained: bool = False) -> Iterator[Batch]:
    """The current labels as Batches keyed by record key, with ``label``, ``target`` and ``round`` columns.
    Labels without a training target are left out unless ``untrained`` (their target is then None)."""
    project = _project(project)
    config = config_mod.load(project)
    rows = [lab for lab in label_store.current_labels(project.store) if untrained or lab.target is not None]
    _record_labels(project, rows)
    for start in range(0, max(len(rows), 1), batch_size):
        part = rows[start:start + batch_size]
        if not part:
            return
        data = {
            "label": np.asarray([lab.label or "" for lab in part]),
            "target": _array([lab.target for lab in part]) if not untrained else np.asarray(
                [lab.target for lab in part], dtype=object),
            "round": np.asarray([lab.round or 0 for lab in part], dtype=np.int64),
        }
        yield Batch([lab.key for lab in part], data, BatchMeta(f"labels:{config.key}", start // batch_size, None,
                                                              len(rows), start, ("labels",)))


@dataclass
class TrainingSet:
    """The labelled records found in the pool, in pool order: ``keys``, ``features`` (2-D float32),
    ``targets``, ``labels`` and ``rounds``; ``missing`` lists labelled keys the pool no longer holds."""

    keys: list[str]
    features: np.ndarray
    targets: np.ndarray
    labels: np.ndarray
    rounds: np.ndarray
    missing: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.keys)

    def batch(self) -> Batch:
        """A Batch with ``features``, ``target`` and ``round`` columns, for ``Load.save_to_filesystem`` and
        ``Train`` (which then picks ``features`` as input and ``target`` as target)."""
        return Batch(list(self.keys), {"features": self.features, "target": self.targets, "round": self.rounds},
                     BatchMeta("training_set", 0, 1, len(self.keys), 0, ("training_set",)))


def training_set(project: Project | str | Path | None = None) -> TrainingSet:
    """Stream the pool once and keep the records that have a label with a training target, with the features
    configured in ``[labelling]``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    project = _project(project)
    config = config_mod.load(project)
    labels = {lab.key: lab for lab in label_store.current_labels(project.store) if lab.target is not None}
    if not labels:
        raise BlaseError("there are no labels with a training target yet; label a round first with `blase label`.")
    _record_labels(project, list(labels.values()))
    pool = Pool(config)
    value_set = pa.array(sorted(labels), type=pa.string())
    keys: list[str] = []
    parts: list[np.ndarray] = []
    seen: set[str] = set()
    for part in pool.scan(pool.feature_columns()):
        hits = np.flatnonzero(pc.is_in(part.keys, value_set=value_set).to_numpy(zero_copy_only=False))
        if len(hits) == 0:
            continue
        chosen = part.take(hits)
        x = pool.features(chosen)
        fresh = []
        for i, key in enumerate(chosen.keys.to_pylist()):
            if key not in seen:  # the same key in two pool files: train on it once
                seen.add(key)
                keys.append(key)
                fresh.append(i)
        parts.append(x[fresh])
    chosen_labels = [labels[k] for k in keys]
    return TrainingSet(
        keys=keys,
        features=np.vstack(parts).astype(np.float32) if parts else np.zeros((0, 0), dtype=np.float32),
        targets=_array([lab.target for lab in chosen_labels]),
        labels=np.asarray([lab.label for lab in chosen_labels]),
        rounds=np.asarray([lab.round or 0 for lab in chosen_labels], dtype=np.int64),
        missing=sorted(k for k in labels if k not in seen),
    )


def record_training_ids(ctx_or_tracker: Any, keys: Sequence[str], rounds: Sequence[int] | int) -> Path:
    """Keep ``training_ids.csv`` (columns: the key column's name, ``round``) as an artifact of the running step
    and tag its run ``round`` = the newest round trained on. Returns the artifact's path in the run folder."""
    del ctx_or_tracker  # the running step is found through the module API; the argument stays for old calls
    folder = recording.step_folder()
    if folder is None:
        raise BlaseError("record_training_ids needs a run: call it inside a step (or a Track run).")
    rounds_list = [int(rounds)] * len(keys) if isinstance(rounds, int | np.integer) else [int(r) for r in rounds]
    if len(rounds_list) != len(keys):
        raise BlaseError(f"record_training_ids got {len(keys)} keys but {len(rounds_list)} rounds; give one round per"
                         " key (or one number for all).")
    try:
        key_name = config_mod.load(_project(None)).key
    except BlaseError:
        key_name = "key"
    tmp = folder / f".tmp-{os.getpid()}-{TRAINING_IDS}"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow([key_name, "round"])
            writer.writerows(zip(keys, rounds_list, strict=True))
        recording.artifact(tmp, name=TRAINING_IDS)
    finally:
        tmp.unlink(missing_ok=True)
    recording.tags({"round": max(rounds_list, default=0)})
    recording.metrics({"n_train": float(len(keys))})
    return folder / "artifacts" / TRAINING_IDS
