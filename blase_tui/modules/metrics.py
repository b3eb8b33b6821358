"""Evaluation metrics in numpy (checked against scikit-learn in the tests)."""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (y, pred), 1)
    return matrix


def _binary_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """ROC AUC as the Mann-Whitney statistic (ties count half)."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # average ranks of tied scores
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-scores, kind="mergesort")
    pos = positive[order]
    tps = np.concatenate([[0], np.cumsum(pos)])
    fps = np.concatenate([[0], np.cumsum(~pos)])
    return fps / max(fps[-1], 1), tps / max(tps[-1], 1)


def classification(y: np.ndarray, proba: np.ndarray, classes: list[Any]) -> dict[str, Any]:
    """Accuracy, precision/recall/F1 (macro and per class), confusion matrix, ROC AUC (one-vs-rest macro),
    log loss. ``y`` holds class indices, ``proba`` one row of probabilities per record."""
    n = len(classes)
    pred = proba.argmax(axis=1)
    cm = confusion_matrix(y, pred, n)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    actual = cm.sum(axis=1).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros(n), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(n), where=actual > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(n), where=(precision + recall) > 0)
    present = actual > 0
    aucs = {}
    for i in range(n):
        if n == 2 and i == 0:
            continue
        auc = _binary_auc(proba[:, i], y == i)
        if auc is not None:
            aucs[str(classes[i])] = auc
    p = np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)
    return {
        "accuracy": float((pred == y).mean()) if len(y) else 0.0,
        "precision_macro": float(precision[present].mean()) if present.any() else 0.0,
        "recall_macro": float(recall[present].mean()) if present.any() else 0.0,
        "f1_macro": float(f1[present].mean()) if present.any() else 0.0,
        "roc_auc": float(np.mean(list(aucs.values()))) if aucs else None,
        "log_loss": float(-np.log(p).mean()) if len(y) else None,
        "per_class": {str(c): {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                               "support": int(actual[i])} for i, c in enumerate(classes)},
        "confusion_matrix": cm.tolist(),
        "classes": [str(c) for c in classes],
    }


def regression(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    residual = pred - y
    ss_res = float((residual**2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    q = np.quantile(residual, [0.05, 0.25, 0.5, 0.75, 0.95]) if len(y) else np.zeros(5)
    return {
        "mae": float(np.abs(residual).mean()), "rmse": float(np.sqrt((residual**2).mean())),
        "r2": 1 - ss_res / ss_tot if ss_tot > 0 else 0.0,
        "residual_quantiles": dict(zip(("p5", "p25", "p50", "p75", "p95"), map(float, q), strict=True)),
    }
