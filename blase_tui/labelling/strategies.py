"""Query strategies: which records a person should label next.

Every strategy turns class probabilities (``proba``, one row per record, one column per class) into a score where
higher means "ask first", and says why in words. The queue keeps the best-scoring records while it streams the
pool; :func:`rank` does the same on arrays held in memory (the reference the streaming queue must agree with).

- ``least_confidence``: 1 - p(top class).
- ``margin``: 1 - (p(top class) - p(second class)); a small gap between the two best classes scores high.
- ``entropy``: the entropy of the class probabilities, in bits.
- ``random``: a uniform draw per record, from a seeded generator consumed in pool order (no model needed).
- ``ordered``: pool order (no model needed).
- ``diversity``: k-center greedy on the features among the ``candidates`` most uncertain records (least
  confidence; random draws when there is no model). Streaming keeps only those candidates, never the pool: the
  first pick is the most uncertain candidate, each next pick the candidate farthest from every pick so far
  (features standardised over the candidates).

>>> import numpy as np
>>> rank("margin", proba=np.array([[0.9, 0.1], [0.52, 0.48], [0.7, 0.3]]))
array([1, 2, 0])
"""

from __future__ import annotations

import numpy as np

UNCERTAINTY = ("least_confidence", "margin", "entropy")
NEEDS_NO_MODEL = ("random", "ordered")


def least_confidence(proba: np.ndarray) -> np.ndarray:
    return 1.0 - np.max(proba, axis=1)


def margin(proba: np.ndarray) -> np.ndarray:
    if proba.shape[1] < 2:
        return np.zeros(len(proba))
    top2 = -np.partition(-proba, 1, axis=1)[:, :2]
    return 1.0 - (top2[:, 0] - top2[:, 1])


def entropy(proba: np.ndarray) -> np.ndarray:
    p = np.clip(proba, 1e-12, 1.0)
    return -(proba * np.log2(p)).sum(axis=1)


SCORERS = {"least_confidence": least_confidence, "margin": margin, "entropy": entropy}


def uncertainty(strategy: str, proba: np.ndarray) -> np.ndarray:
    """The score of an uncertainty strategy; diversity pre-selects its candidates by least confidence."""
    return SCORERS.get(strategy, least_confidence)(np.asarray(proba, dtype=np.float64))


def candidate_count(n: int, configured: int | None = None) -> int:
    """How many of the most uncertain records diversity chooses among: ``configured``, else ``max(10 n, 1000)``;
    never fewer than ``n``."""
    return max(configured or max(10 * n, 1000), n)


def standardise(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    x = x.reshape(len(x), -1)
    mean = np.nanmean(x, axis=0) if len(x) else 0.0
    std = np.nanstd(x, axis=0) if len(x) else 1.0
    std = np.where(np.asarray(std) > 0, std, 1.0)
    return np.nan_to_num((x - mean) / std)


def k_center(features: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy k-center: pick row 0 first, then each time the row farthest from all picks. Returns the picks in
    order and the distance of each pick to the earlier ones (``inf`` for the first)."""
    x = standardise(features)
    m = len(x)
    n = min(n, m)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    picks = np.empty(n, dtype=np.int64)
    dists = np.empty(n)
    nearest = np.full(m, np.inf)
    current, picks[0], dists[0] = 0, 0, np.inf
    for i in range(1, n):
        np.minimum(nearest, np.sqrt(((x - x[current]) ** 2).sum(axis=1)), out=nearest)
        current = int(np.argmax(nearest))  # ties: the first, i.e. the more uncertain candidate
        picks[i], dists[i] = current, nearest[current]
    return picks, dists


def tiebreak(seq: np.ndarray, seed: int = 0) -> np.ndarray:
    """A seeded pseudo-random rank per pool position, for records whose scores are equal: a model that scores
    every record alike (few labels yet) gives a random round, not the pool's first records (one object's many
    alerts in a row)."""
    with np.errstate(over="ignore"):
        mixed = (np.asarray(seq, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x632BE59BD9B4E019)) \
            * np.uint64(0x9E3779B97F4A7C15)
    return mixed ^ (mixed >> np.uint64(29))


def top(scores: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Indices of the ``k`` highest scores, highest first; ties in a seeded random order (:func:`tiebreak`)."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.lexsort((tiebreak(np.arange(len(scores)), seed), -scores))[:k]


def rank(strategy: str, *, proba: np.ndarray | None = None, features: np.ndarray | None = None, n: int | None = None,
         seed: int = 0, candidates: int | None = None) -> np.ndarray:
    """The order in which ``strategy`` offers records held in memory (indices, first pick first, at most ``n``)."""
    if proba is not None:
        proba = np.asarray(proba, dtype=np.float64)
    count = len(proba) if proba is not None else len(features) if features is not None else 0
    n = count if n is None else min(n, count)
    if strategy == "ordered":
        return np.arange(n)
    if strategy == "random" or (strategy in UNCERTAINTY and proba is None):
        return top(np.random.default_rng(seed).random(count), n)
    if strategy == "diversity":
        if features is None:
            raise ValueError("diversity needs features")
        pre = uncertainty("least_confidence", proba) if proba is not None else np.random.default_rng(seed).random(count)
        chosen = top(pre, candidate_count(n, candidates), seed)
        picks, _ = k_center(np.asarray(features)[chosen], n)
        return chosen[picks]
    return top(uncertainty(strategy, proba), n, seed)


def _p(names: list[str], row: np.ndarray, i: int) -> str:
    return f"p({names[i] if i < len(names) else i})={row[i]:.2f}"


def why(strategy: str, proba: np.ndarray | None, names: list[str], score: float, *, seed: int = 0,
        distance: float | None = None) -> str:
    """One line saying why a record was offered, e.g. ``p(real)=0.51 vs p(bogus)=0.49: margin 0.02``."""
    if strategy == "ordered":
        return "pool order"
    if proba is None:
        if strategy == "diversity":
            return "first pick (random)" if distance is None or not np.isfinite(distance) else \
                f"far from the earlier picks (distance {distance:.2f})"
        return f"random pick (seed {seed})"
    row = np.asarray(proba, dtype=np.float64)
    order = np.argsort(-row, kind="stable")
    best = _p(names, row, int(order[0]))
    second = _p(names, row, int(order[1])) if len(order) > 1 else ""
    if strategy == "margin":
        gap = row[order[0]] - (row[order[1]] if len(order) > 1 else 0.0)
        return f"{best} vs {second}: margin {gap:.2f}"
    if strategy == "entropy":
        return f"entropy {score:.2f} bits: {best}, {second}".rstrip(", ")
    if strategy == "diversity":
        if distance is None or not np.isfinite(distance):
            return f"most uncertain candidate: {best}"
        return f"far from the earlier picks (distance {distance:.2f}); {best}"
    if strategy == "random":
        return f"random pick (seed {seed}); {best}"
    return f"{best} is the top class: confidence {row[order[0]]:.2f}"
