"""The project's own functions: a linear policy for CartPole, its episodes, and the policy as a model blase can
register, serve and load (a scikit-learn logistic regression whose weights are the policy's)."""

from __future__ import annotations

import numpy as np

ENV = "CartPole-v1"


def make_env():  # noqa: ANN201 - a gymnasium environment
    try:
        import gymnasium
    except ImportError:
        raise SystemExit("this project needs gymnasium: pip install 'blase-tui[rl]' (or pip install gymnasium)") from None
    return gymnasium.make(ENV)


def act(weights: np.ndarray, observation: np.ndarray) -> int:
    """Push right (1) when the weighted observation plus the bias is positive, else left (0)."""
    return int(float(np.dot(weights[:-1], observation) + weights[-1]) > 0)


def episode(env, weights: np.ndarray, seed: int, policy=None) -> float:  # noqa: ANN001
    """One episode from the environment's reset with ``seed``; the total reward (CartPole: steps balanced)."""
    observation, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        action = act(weights, observation) if policy is None else int(policy.predict(observation[None, :])[0])
        observation, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
    return total


def as_model(weights: np.ndarray):  # noqa: ANN201 - a fitted LogisticRegression
    """The policy as a scikit-learn classifier: ``predict(observations)`` is the action, ``predict_proba`` how
    sure it is; it saves safely (skops), serves with `blase serve` and loads with ``blase_tui.models.load``."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression()
    model.classes_ = np.array([0, 1])
    model.coef_ = np.asarray(weights[:-1], dtype=np.float64)[None, :]
    model.intercept_ = np.array([float(weights[-1])])
    model.n_features_in_ = len(weights) - 1
    return model
