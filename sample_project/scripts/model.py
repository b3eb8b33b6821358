"""The sample project's model: a scikit-learn logistic regression on flattened pixels."""

from __future__ import annotations


def build_model(C: float = 1.0, max_iter: int = 500, seed: int = 0):  # noqa: N803 - sklearn's name
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
