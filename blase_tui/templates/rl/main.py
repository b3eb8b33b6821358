"""A reinforcement-learning project: a CartPole policy (gymnasium) trained by the cross-entropy method, each
episode's return logged as a metric, the policy registered as a model, evaluated over fixed seeds, and servable.

Run the whole pipeline with `blase run`, a step with `blase step NAME`, or as the seed does:
`python main.py --step train --start_run`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scripts.policy import as_model, episode, make_env

from blase_tui import main, step

POLICY = "cartpole_policy"
REPORT = Path("reports/evaluation.json")


# The environment is seeded, so the same code, params and environment give the same policy: reuse=True says so
# (blase reuses a step that records no input only when told; a download or a clock would make it wrong).
@step(reuse=True)
def train(ctx, iterations: int = 20, population: int = 24, elite: float = 0.2, seed: int = 0):
    """Cross-entropy method on a linear policy: each iteration draws `population` policies around the current
    one, plays an episode with each, and moves to the mean of the best; every episode's return is logged
    (`episode_return`, by episode), and each iteration's mean and best. The best policy is registered."""
    env = make_env()
    rng = np.random.default_rng(seed)
    mean, std = np.zeros(5), np.ones(5)
    keep = max(2, int(population * elite))
    n, best, best_return = 0, mean, -np.inf
    progress = ctx.progress("iterations", total=iterations, unit="iterations")
    for it in range(iterations):
        candidates = rng.normal(mean, std, size=(population, 5))
        returns = np.array([episode(env, w, seed=seed * 100_000 + n + j) for j, w in enumerate(candidates)])
        for j, r in enumerate(returns):
            ctx.log_metric("episode_return", float(r), iteration=n + j)
        n += population
        top = np.argsort(returns)[-keep:]
        mean, std = candidates[top].mean(axis=0), candidates[top].std(axis=0) + 0.05
        if returns.max() >= best_return:
            best, best_return = candidates[int(np.argmax(returns))], float(returns.max())
        ctx.log_metrics({"mean_return": float(returns.mean()), "best_return": float(returns.max())}, iteration=it)
        ctx.log.info("iteration %d/%d: mean return %.1f, best %.0f", it + 1, iterations, returns.mean(), returns.max())
        progress.update()
    ctx.log_metric("episodes", float(n))
    ctx.log_model(as_model(best), POLICY, framework="sklearn", input_example=np.zeros((1, 4), dtype=np.float64),
                  metrics={"best_episode_return": best_return})


@step
def evaluate(ctx, episodes: int = 20):
    """The registered policy over fixed seeds (0, 1, …), as loaded from the registry: mean, min and max
    return, and the share of episodes balanced to the end (500 steps)."""
    from blase_tui.models import load

    policy = load(POLICY)
    ctx.log_dataset(policy.path, role="input", name=POLICY)  # a new version makes this step stale
    env = make_env()
    returns = np.array([episode(env, None, seed=s, policy=policy) for s in range(episodes)])  # type: ignore[arg-type]
    scores = {"min_return": float(returns.min()), "max_return": float(returns.max()),
              "solved_share": float((returns >= 500).mean()), "mean_return": float(returns.mean())}  # the headline last
    ctx.log_metrics(scores)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps({"model": str(policy), "returns": returns.tolist(), **scores}, indent=1))
    ctx.log_dataset(REPORT, role="output")
    ctx.log.info("%s over %d fixed seeds: mean return %.1f (min %.0f)", policy, episodes, returns.mean(), returns.min())


if __name__ == "__main__":
    main()
