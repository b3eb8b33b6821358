"""The labelling queue: the N records a person should label next, chosen by a strategy while streaming the pool.

The pool is read in budget-sized batches (key, secondary id and feature columns only); records already
labelled, or trained on by the model's run (its ``training_ids.csv``), are dropped; the rest are scored and only
the best N (the ``candidates`` for diversity) are kept, so a pool of millions never sits in memory.

The model is the one registered by the last successful execution of ``train_step`` (``[labelling] model``
narrows it to one name); without one, uncertainty strategies fall back to a seeded random round.

>>> queue = build_queue(project, strategy="margin", n=10)
>>> [(item.key, item.why) for item in queue.items][:1]
[('1234', 'p(real)=0.51 vs p(bogus)=0.49: margin 0.02')]
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blase_tui.errors import BlaseError, ConfigError
from blase_tui.labelling import strategies
from blase_tui.labelling.config import STRATEGIES, LabellingConfig, load_function
from blase_tui.labelling.pool import Pool
from blase_tui.store import labels as label_store

if TYPE_CHECKING:
    from blase_tui.core.project import Project
    from blase_tui.store.records import ModelVersionDetail
    from blase_tui.store.runstore import RunStore

TRAINING_IDS = "training_ids.csv"


@dataclass(frozen=True)
class ModelInfo:
    """A registered model version that scores the pool."""

    name: str
    version: int
    run_id: str | None
    step_run_id: int | None
    framework: str
    path: Path
    classes: list[Any] | None

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True)
class QueueItem:
    """One record to offer: its key, secondary id, where it lives in the pool, its score (higher = asked first),
    why it was chosen, and the model's class probabilities (None without a model)."""

    key: str
    secondary: str | None
    location: str | None
    score: float
    why: str
    proba: dict[str, float] | None = None


@dataclass
class Queue:
    strategy: str
    model: ModelInfo | None
    items: list[QueueItem]
    scanned: int = 0
    excluded: int = 0
    seconds: float = 0.0
    note: str | None = None
    seed: int = 0


# -------------------------------------------------------------------------------------------------- model
def _model_info(row: ModelVersionDetail) -> ModelInfo:
    card = row.card or {}
    return ModelInfo(name=row.name, version=int(row.version), run_id=row.run_id, step_run_id=row.step_run_id,
                     framework=row.framework or "sklearn", path=Path(row.path), classes=card.get("classes"))


def model_by_ref(store: RunStore, ref: str) -> ModelInfo:
    from blase_tui.store import models

    return _model_info(models.get(store, ref, intact=True))


def find_model(store: RunStore, config: LabellingConfig) -> ModelInfo | None:
    """The model of the last successful execution of ``train_step`` that registered one (a reused execution
    counts with the model of the execution it reused); else the newest version of ``[labelling] model``; else
    None."""
    from blase_tui.store import models

    ref = models.latest_of_step(store, config.train_step, config.model)
    if ref is not None:
        return model_by_ref(store, ref)
    if config.model and models.exists(store, config.model):
        return model_by_ref(store, config.model)
    return None


def training_ids(store: RunStore, run_id: str | None) -> dict[str, int]:
    """The keys a run trained on and the round each came from (its ``training_ids.csv`` artifact)."""
    if run_id is None:
        return {}
    digest = store.artifact_hash(run_id, TRAINING_IDS)
    if digest is None or not store.cas.has(digest):
        return {}
    reader = csv.reader(io.StringIO(store.cas.read_bytes(digest).decode("utf-8")))
    next(reader, None)
    return {r[0]: int(r[1]) if len(r) > 1 and r[1].lstrip("-").isdigit() else 0 for r in reader if r}


def load_scorer(model: ModelInfo, config: LabellingConfig) -> Callable[[np.ndarray], np.ndarray]:
    """A function from features to class probabilities: ``[labelling] scorer`` (called with the model file's
    path) when set, else the framework adapter's ``predict`` (``predict_proba`` for scikit-learn)."""
    if config.scorer:
        return load_function(config.scorer, config.root, "scorer")(model.path)
    from blase_tui.models.frameworks import open_model

    try:
        adapter = open_model(Path(model.path), model.framework)
    except BlaseError:
        raise
    except Exception as exc:
        raise BlaseError(f"cannot load model {model.ref} ({type(exc).__name__}: {exc}); set `scorer` in [labelling]"
                         " to load it yourself.") from exc
    return adapter.predict


# -------------------------------------------------------------------------------------------------- queue
class _Best:
    """The ``k`` best records seen so far (score high first, a seeded random order among equals:
    ``strategies.tiebreak``), with what each needs; ``low`` and ``high``: the range of every score offered."""

    def __init__(self, k: int, seed: int = 0) -> None:
        self.k = k
        self.seed = seed
        self.low, self.high = np.inf, -np.inf
        self.score = np.zeros(0)
        self.seq = np.zeros(0, dtype=np.int64)
        self.cols: dict[str, np.ndarray] = {}

    def offer(self, score: np.ndarray, seq: np.ndarray, take: Callable[[np.ndarray], dict[str, np.ndarray]]) -> None:
        if len(score):
            self.low, self.high = min(self.low, float(score.min())), max(self.high, float(score.max()))
        if len(score) > self.k:
            if len(self.score) == self.k:  # only records that beat or tie the worst kept one
                keep = np.flatnonzero(score >= self.score[-1])
                score, seq, local = score[keep], seq[keep], keep
            else:
                local = np.arange(len(score))
            if len(score) > self.k:
                kth = np.partition(-score, self.k - 1)[self.k - 1]
                keep = np.flatnonzero(-score <= kth)
                score, seq, local = score[keep], seq[keep], local[keep]
        else:
            local = np.arange(len(score))
        if len(score) == 0:
            return
        new = take(local)
        score = np.concatenate([self.score, score])
        seq = np.concatenate([self.seq, seq])
        order = np.lexsort((strategies.tiebreak(seq, self.seed), -score))[: self.k]
        self.score, self.seq = score[order], seq[order]
        self.cols = {name: (np.concatenate([self.cols[name], values]) if name in self.cols else values)[order]
                     for name, values in new.items()}


def _object_array(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def build_queue(project: Project, *, strategy: str | None = None, n: int | None = None,
                model: ModelInfo | None | str = "auto", exclude: Collection[str] = (), seed: int | None = None,
                config: LabellingConfig | None = None,
                progress: Callable[[int, int | None], None] | None = None) -> Queue:
    """Choose the ``n`` records to offer next. ``model="auto"`` finds the last training run's model; pass a
    :class:`ModelInfo` (or None) to use another. Keys in ``exclude`` are left out, as are labelled keys and the
    keys the model was trained on."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from blase_tui.labelling import config as config_mod

    started = time.perf_counter()
    config = config or config_mod.load(project)
    store = project.store
    strategy = strategy or config.strategy
    if strategy not in STRATEGIES:
        raise ConfigError(f"--strategy {strategy}: use one of {', '.join(STRATEGIES)}.")
    n = config.n if n is None else n
    if n < 1:
        raise ConfigError(f"--n {n}: a round needs at least one record.")
    seed = config.seed if seed is None else seed
    note = None
    if model == "auto":
        model = find_model(store, config) if strategy not in strategies.NEEDS_NO_MODEL else None
    if model is None and strategy in strategies.UNCERTAINTY:
        note = f"no trained model yet (no successful `{config.train_step}` step registered one): a random round"
        strategy = "random"
    assert model is None or isinstance(model, ModelInfo)
    names = config.class_names(model.classes) if model else []
    scorer = load_scorer(model, config) if model is not None else None
    diversity = strategy == "diversity"
    keep = strategies.candidate_count(n, config.candidates) if diversity else n

    pool = Pool(config)
    excluded_keys = set(exclude) | label_store.labelled_keys(store) | set(training_ids(store, model.run_id if model
                                                                                       else None))
    value_set = pa.array(sorted(excluded_keys), type=pa.string())
    needs_features = scorer is not None or diversity
    columns = [c for c in (config.secondary,) if c]
    if needs_features:
        feature_columns = pool.feature_columns()
        columns = None if feature_columns is None else columns + feature_columns
    rng = np.random.default_rng(seed)
    best = _Best(keep, seed)
    scanned = dropped = 0
    for part in pool.scan(columns):
        m = len(part)
        seq = np.arange(scanned, scanned + m)
        draws = rng.random(m) if strategy == "random" or (diversity and scorer is None) else None
        scanned += m
        mask = np.ones(m, dtype=bool)
        if len(value_set):
            mask = ~pc.is_in(part.keys, value_set=value_set).to_numpy(zero_copy_only=False)
        idx = np.flatnonzero(mask)
        dropped += m - len(idx)
        if progress is not None:
            progress(scanned, part.total)
        if len(idx) == 0:
            continue
        kept = part if len(idx) == m else part.take(idx)
        proba = x = None
        if needs_features:
            x = pool.features(kept)
        if scorer is not None:
            proba = np.asarray(scorer(x), dtype=np.float64)
            if proba.ndim != 2 or len(proba) != len(idx):
                raise BlaseError(f"model {model.ref if model else ''} returned predictions of shape {proba.shape};"
                                 " the queue needs class probabilities, one row per record.")
        if strategy == "ordered":
            score = -seq[idx].astype(np.float64)
        elif draws is not None:
            score = draws[idx]
        else:
            score = strategies.uncertainty(strategy, proba)

        def take(local: np.ndarray, kept: Any = kept, proba: Any = proba, x: Any = x) -> dict:
            rows = pa.array(local, type=pa.int64())
            cols = {"key": _object_array(kept.keys.take(rows).to_pylist()),
                    "location": _object_array([kept.locations[int(i)] for i in local] if kept.locations is not None
                                              else [None] * len(local))}
            if config.secondary:
                values = kept.table.column(config.secondary).take(rows).to_pylist()
                cols["secondary"] = _object_array([None if v is None else str(v) for v in values])
            if proba is not None:
                cols["proba"] = proba[local]
            if diversity:
                cols["features"] = x[local]
            return cols

        best.offer(score, seq[idx], take)

    if scorer is not None and strategy in strategies.UNCERTAINTY and best.high - best.low < 1e-9 and scanned > 1:
        note = (f"the model ({model.ref if model else ''}) gives every record the same score ({best.high:.3f}):"
                " too few labels to rank by uncertainty yet, so this round comes in a seeded random order; label"
                f" it, run `blase step {config.train_step}`, and the next round is ranked")
    # every record scored alike: the order is the tie-break's seeded random one, and each record says so
    items = _items(best, "random" if note and scorer is not None else strategy, names, seed, n, diversity,
                   alike=bool(note and scorer is not None))
    return Queue(strategy=strategy, model=model, items=items, scanned=scanned, excluded=dropped,
                 seconds=time.perf_counter() - started, note=note, seed=seed)


def _items(best: _Best, strategy: str, names: list[str], seed: int, n: int, diversity: bool, *,
           alike: bool = False) -> list[QueueItem]:
    if len(best.score) == 0:
        return []
    order = np.arange(len(best.score))
    distances = np.full(len(order), np.nan)
    if diversity:
        order, distances = strategies.k_center(best.cols["features"], n)
    items: list[QueueItem] = []
    seen: set[str] = set()
    proba = best.cols.get("proba")
    for rank_, i in enumerate(order):
        key = best.cols["key"][i]
        if key in seen:  # the same key in two pool files: offer it once
            continue
        seen.add(key)
        row = proba[i] if proba is not None else None
        score = float(best.score[i])
        why = strategies.why(strategy, row, names, score, seed=seed,
                             distance=float(distances[rank_]) if diversity else None)
        if alike:
            why = f"the model scores every record alike, so: {why}"
        items.append(QueueItem(
            key=key, secondary=best.cols["secondary"][i] if "secondary" in best.cols else None,
            location=best.cols["location"][i], score=score, why=why,
            proba=None if row is None else {(names[j] if j < len(names) else str(j)): round(float(p), 4)
                                            for j, p in enumerate(row)},
        ))
        if len(items) == n:
            break
    return items


@dataclass
class QueueSummary:
    """What ``blase label queue --json`` prints."""

    strategy: str
    model: str | None
    model_run: str | None
    scanned: int
    excluded: int
    seconds: float
    note: str | None
    items: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, queue: Queue) -> QueueSummary:
        return cls(queue.strategy, queue.model.ref if queue.model else None, queue.model.run_id if queue.model else None,
                   queue.scanned, queue.excluded, round(queue.seconds, 3), queue.note,
                   [{"position": i, **vars(item)} for i, item in enumerate(queue.items)])
