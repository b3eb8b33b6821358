"""Performance without labels, with an interval (``Monitor.track_performance_metrics`` uses it).

A classifier's probabilities say how often it should be right; once mapped through the calibration measured on
held-out records they are the chance that each live prediction is right, and their mean the expected accuracy
(NannyML's CBPE). Here every estimated metric goes through that one calibration:

- **the calibration**, fitted on the held-out records the prediction priors keep (``calibration.sample``):
  temperature scaling of every class (when the sample has each record's log-probabilities and label: up to
  10 classes), then a logistic fit of "the prediction was right" on the logit of the top probability. Three
  parameters: a calibrated model fits to the identity, one over- or underconfident by a temperature is
  corrected, and the fit does not break up into noisy bins where few held-out records fall (where covariate
  shift moves the live records). Priors without the sample fall back to their binned table.
- **the estimates**: ``estimated_accuracy`` is the mean calibrated probability of the predicted class;
  ``estimated_f1`` the macro F1 of the expected confusion matrix, where each record counts as right with its
  calibrated probability and as each other class in proportion to the model's own probabilities for them.
- **the interval** (``..._low``, ``..._high``, 95%): a parametric bootstrap of both uncertainties at once: the
  calibration refitted on a resample of the held-out records, then labels drawn from the calibrated
  probabilities, so the interval is where the metric the labels would show is expected to fall. Its coverage
  on shifted data, for a calibrated and an overconfident model, is measured by ``tests/test_estimates.py``.

Under *concept* shift (the same inputs now mean other labels) no estimate from the model's outputs can
know; only labels show it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DRAWS = 100  # bootstrap draws for the interval (each a recalibration of the window: the cost of an estimate)
LEVEL = 0.95
SAMPLE = 5_000  # held-out (confidence, right) pairs the prediction priors keep
_EPS = 1e-300


def top_logit(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The predicted class of each row of ``proba`` and the logit of its probability, ``log(top / rest)``, with
    the rest summed from the other classes (``1 - top`` would round to 0 for a confident model)."""
    proba = np.asarray(proba, dtype=np.float64)
    predicted = proba.argmax(axis=1)
    top = proba[np.arange(len(proba)), predicted]
    rest = proba.sum(axis=1) - top if proba.shape[1] > 2 else proba[np.arange(len(proba)), 1 - predicted]
    return predicted, np.log(np.maximum(top, _EPS)) - np.log(np.maximum(rest, _EPS))


def fit(x: np.ndarray, correct: np.ndarray, prior: float = 1.0, start: tuple[float, float] = (0.0, 1.0)
        ) -> tuple[float, float]:
    """``(a, b)`` of P(right) = sigmoid(a + b * x), x the logit of the top probability: the maximum likelihood, by Newton's method with
    step halving, with a weak pull (``prior`` pseudo-records) towards the identity (a=0, b=1), so that a held-out
    set the model got all right stays finite."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)

    def loss(a: float, b: float) -> float:
        z = a + b * x
        return float(np.sum(np.logaddexp(0, z) - y * z) + prior * (a * a + (b - 1) ** 2) / 2)

    a, b = start
    current = loss(a, b)
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(a + b * x, -500, 500)))
        w = p * (1 - p)
        grad = np.array([np.sum(p - y) + prior * a, np.sum((p - y) * x) + prior * (b - 1)])
        hess = np.array([[np.sum(w) + prior, np.sum(w * x)], [np.sum(w * x), np.sum(w * x * x) + prior]])
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-6 and loss(a - scale * step[0], b - scale * step[1]) > current:
            scale /= 2
        a, b = a - scale * step[0], b - scale * step[1]
        previous, current = current, loss(a, b)
        if previous - current < 1e-10 * max(1.0, abs(current)):
            break
    return float(a), float(b)


def fit_temperature(logp: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T that makes ``softmax(logp / T)`` most likely to give the true ``labels`` (temperature
    scaling: one parameter for every class at once)."""
    from scipy.optimize import minimize_scalar

    rows = np.arange(len(labels))

    def loss(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        return float(-np.sum(z[rows, labels] - np.log(np.exp(z).sum(axis=1))))

    return float(np.exp(minimize_scalar(loss, bounds=(-4.0, 4.0), method="bounded",
                                        options={"xatol": 1e-4}).x))


def _scaled(proba: np.ndarray, temperature: float) -> np.ndarray:
    if temperature == 1.0:
        return proba
    z = np.log(np.maximum(proba, _EPS)) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


Params = tuple[float, float, float]  # temperature, a, b


class Calibration:
    """The map from a model's probabilities to the chance each prediction is right, fitted on held-out records:
    temperature scaling of all the classes (when the priors keep the held-out log-probabilities and labels, up
    to 10 classes), then a logistic fit on the logit of the top probability. Priors written before the
    held-out records were kept: their binned table."""

    def __init__(self, logits: np.ndarray | None = None, correct: np.ndarray | None = None,
                 table: tuple[np.ndarray, np.ndarray] | None = None, logp: np.ndarray | None = None,
                 labels: np.ndarray | None = None) -> None:
        self.logits = None if logits is None else np.asarray(logits, dtype=np.float64)
        self.correct = None if correct is None else np.asarray(correct, dtype=np.float64)
        self.logp = None if logp is None else np.asarray(logp, dtype=np.float64)
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.table = table
        self.params = self._fit(np.arange(len(self.correct))) if self.correct is not None and len(self.correct) \
            else None
        self._draws: list[Params | None] | None = None

    def _fit(self, pick: np.ndarray, start: Params | None = None) -> Params:
        assert self.correct is not None
        if self.logp is not None and self.labels is not None:
            temperature = fit_temperature(self.logp[pick], self.labels[pick])
            _, logits = top_logit(_scaled(np.exp(self.logp[pick]), temperature))
        else:
            assert self.logits is not None
            temperature, logits = 1.0, self.logits[pick]
        a, b = fit(logits, self.correct[pick], start=(start[1], start[2]) if start else (0.0, 1.0))
        return temperature, a, b

    @classmethod
    def from_priors(cls, priors: dict[str, Any] | None) -> Calibration | None:
        cal = (priors or {}).get("calibration") or {}
        sample = cal.get("sample") or {}
        if sample.get("logit") and sample.get("correct"):
            full = sample.get("logp") is not None and sample.get("label") is not None
            return cls(np.asarray(sample["logit"]), np.asarray(sample["correct"]),
                       logp=np.asarray(sample["logp"]) if full else None,
                       labels=np.asarray(sample["label"]) if full else None)
        mids = [(c, a) for c, a in zip(cal.get("confidence") or [], cal.get("accuracy") or [], strict=False)
                if c is not None]
        if len(mids) >= 2:
            return cls(table=(np.array([m[0] for m in mids]), np.array([m[1] for m in mids])))
        return None

    def __call__(self, proba: np.ndarray, params: Params | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The predicted class of each record and the calibrated probabilities of every class."""
        params = params or self.params
        proba = np.asarray(proba, dtype=np.float64)
        if params is not None:
            scaled = _scaled(proba, params[0])
            predicted, logits = top_logit(scaled)
            right = 1 / (1 + np.exp(-np.clip(params[1] + params[2] * logits, -500, 500)))
            return predicted, calibrated(scaled, predicted, right)
        predicted, logits = top_logit(proba)
        if self.table is None:
            return predicted, proba
        confidence = 1 / (1 + np.exp(-np.clip(logits, -500, 500)))
        return predicted, calibrated(proba, predicted, np.clip(np.interp(confidence, *self.table), 0, 1))

    def resampled(self, draws: int, seed: int = 0) -> list[Params | None]:
        """The fit on ``draws`` bootstrap resamples of the held-out records (seeded; made once and kept: the
        held-out records do not change while a monitor runs). None for a table: no records to resample."""
        if self._draws is None or len(self._draws) != draws:
            if self.correct is None or self.params is None:
                self._draws = [None] * draws
            else:
                rng = np.random.default_rng(seed)
                n = len(self.correct)
                self._draws = [self._fit(rng.integers(0, n, n), start=self.params) for _ in range(draws)]
        return self._draws


def calibrated(proba: np.ndarray, predicted: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Class probabilities where the predicted class has probability ``right`` and the others share the rest in
    proportion to the model's own probabilities for them."""
    proba = np.asarray(proba, dtype=np.float64)
    rows = np.arange(len(proba))
    others = proba.copy()
    others[rows, predicted] = 0.0
    total = others.sum(axis=1)
    flat = total <= 0  # the model gave the other classes nothing: share the rest evenly
    others[flat] = 1.0
    others[flat, predicted[flat]] = 0.0
    out = others * ((1 - right) / others.sum(axis=1))[:, None]
    out[rows, predicted] = right
    return out


def _f1(predicted: np.ndarray, probabilities: np.ndarray) -> float:
    """Macro F1 of the expected confusion matrix: ``probabilities[i, k]`` the chance record i is of class k. Over
    the classes the window holds, as the measured F1 is: predicted, or expected at least once."""
    f1s = []
    present = np.bincount(predicted, minlength=probabilities.shape[1]) > 0
    present |= probabilities.sum(axis=0) >= 1
    for k in np.flatnonzero(present):
        is_k = predicted == k
        tp = float(probabilities[is_k, k].sum())
        fp = float(is_k.sum()) - tp
        fn = float(probabilities[~is_k, k].sum())
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(f1s))


def _f1_of(predicted: np.ndarray, truth: np.ndarray, classes: int) -> float:
    """Macro F1 of labels ``truth`` (class indices) against ``predicted``."""
    confusion = np.bincount(predicted * classes + truth, minlength=classes * classes).reshape(classes, classes)
    tp = np.diag(confusion).astype(np.float64)
    fp, fn = confusion.sum(axis=1) - tp, confusion.sum(axis=0) - tp
    denominator = 2 * tp + fp + fn
    present = denominator > 0  # the classes predicted or drawn, as the measured F1 counts them
    return float(np.mean(2 * tp[present] / denominator[present])) if present.any() else 0.0


def estimate(proba: np.ndarray, calibration: Calibration | None, *, draws: int = DRAWS, seed: int = 0
             ) -> dict[str, float]:
    """``estimated_accuracy`` and ``estimated_f1`` of records with class probabilities ``proba``, with their 95%
    intervals (``_low``, ``_high``)."""
    proba = np.asarray(proba, dtype=np.float64)
    cal = calibration or Calibration()
    predicted, probabilities = cal(proba)
    rows = np.arange(len(proba))
    out = {"estimated_accuracy": float(probabilities[rows, predicted].mean()),
           "estimated_f1": _f1(predicted, probabilities)}
    rng = np.random.default_rng(seed)
    accuracies, f1s = np.empty(draws), np.empty(draws)
    for i, params in enumerate(cal.resampled(draws, seed)):
        drawn = cal(proba, params)[1] if params is not None else probabilities
        # labels as the calibrated probabilities would draw them: the metric the labels would show
        cumulative = np.cumsum(drawn, axis=1)
        truth = (rng.random(len(proba))[:, None] > cumulative[:, :-1]).sum(axis=1)
        accuracies[i] = float(np.mean(truth == predicted))
        f1s[i] = _f1_of(predicted, truth, proba.shape[1])
    tail = (1 - LEVEL) / 2 * 100
    for name, values in (("estimated_accuracy", accuracies), ("estimated_f1", f1s)):
        low, high = np.percentile(values, [tail, 100 - tail])
        out[f"{name}_low"], out[f"{name}_high"] = float(min(low, out[name])), float(max(high, out[name]))
    return out


FULL_CLASSES = 10  # up to this many classes the priors keep each held-out record's log-probabilities


def sample_pairs(probabilities: np.ndarray, correct: np.ndarray, labels: np.ndarray | None = None, seed: int = 0
                 ) -> dict[str, list[Any]]:
    """Up to ``SAMPLE`` held-out records, a seeded uniform choice, for the prediction priors: the logit of the
    top probability and whether the prediction was right; with ``labels`` (each record's true class, as a
    column index) and up to ``FULL_CLASSES`` classes, also every class's log-probability, for the temperature."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    _, logits = top_logit(probabilities)
    correct = np.asarray(correct, dtype=bool)
    keep = np.arange(len(logits))
    if len(logits) > SAMPLE:
        keep = np.sort(np.random.default_rng(seed).choice(len(logits), SAMPLE, replace=False))
    out: dict[str, list[Any]] = {"logit": [round(float(v), 5) for v in logits[keep]],
                                 "correct": [int(c) for c in correct[keep]]}
    if labels is not None and probabilities.shape[1] <= FULL_CLASSES:
        logp = np.maximum(np.log(np.maximum(probabilities[keep], _EPS)), -700.0)
        out["logp"] = [[round(float(v), 5) for v in row] for row in logp]
        out["label"] = [int(v) for v in np.asarray(labels)[keep]]
    return out
