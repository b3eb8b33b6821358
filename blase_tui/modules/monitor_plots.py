"""``Monitor``'s PNGs: drift over time, reference vs live distributions of the features that moved most, and the
performance metrics over time. Written into the step's artifacts when the monitor step ends (and by
``Monitor.plot(folder)``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from blase_tui.modules import drift as drift_mod

MAX_FEATURES = 20  # rows of the drift map
MAX_DISTRIBUTIONS = 6


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def drift_over_time(history: list[dict[str, Any]], alpha: float, path: Path) -> Path | None:
    """Top: the share of features flagged per batch. Bottom: -log10(p) per feature and batch, the features with
    the smallest p-values first; flagged cells are marked."""
    if not history:
        return None
    plt = _pyplot()
    features = sorted({f for h in history for f in h["p"]}, key=lambda f: min(h["p"].get(f, 1.0) for h in history))
    features = features[:MAX_FEATURES]
    batches = [h["batch"] for h in history]
    scores = np.array([[-np.log10(max(h["p"].get(f, 1.0), 1e-300)) for h in history] for f in features])
    share = [len(h["drifted"]) / max(len(h["p"]), 1) for h in history]
    height = 2.2 + 0.28 * len(features)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6.0, min(14.0, 3 + 0.25 * len(batches))), height),
                                      gridspec_kw={"height_ratios": [1, max(1.5, 0.28 * len(features))]}, sharex=True)
    top.bar(range(len(batches)), share, color=["#d62728" if s else "#4c78a8" for s in share])
    top.set_ylabel("share drifted")
    top.set_ylim(0, 1)
    top.set_title(f"drift per batch (Holm, alpha = {alpha})")
    image = bottom.imshow(np.minimum(scores, 10), aspect="auto", cmap="Oranges", vmin=0, vmax=10,
                          interpolation="nearest")
    for i, f in enumerate(features):
        for j, h in enumerate(history):
            if f in h["drifted"]:
                bottom.text(j, i, "x", ha="center", va="center", fontsize=7, color="black")
    bottom.set_yticks(range(len(features)), features, fontsize=7)
    step = max(1, len(batches) // 12)
    bottom.set_xticks(range(0, len(batches), step), [str(b) for b in batches[::step]], fontsize=7)
    bottom.set_xlabel("batch")
    fig.colorbar(image, ax=bottom, label="-log10 p (capped at 10)", fraction=0.03, pad=0.01)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def distributions(results: list[drift_mod.FeatureDrift], live: dict[str, Any], path: Path,
                  title: str = "reference vs live") -> Path | None:
    """Reference vs live for the features with the smallest p-values: distribution functions for numeric
    features, shares per category for the others."""
    chosen = [r for r in sorted(results, key=lambda r: r.p_value)
              if r.test != "missing" and r.feature in live and live[r.feature].n]
    chosen = chosen[:MAX_DISTRIBUTIONS]
    if not chosen:
        return None
    plt = _pyplot()
    cols = min(3, len(chosen))
    rows = (len(chosen) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, r in zip(axes.ravel(), chosen, strict=False):
        acc = live[r.feature]
        if isinstance(acc, drift_mod.NumericLive):
            grid = acc.ref.grid  # extended to the live range, so a shifted tail shows
            xs = np.concatenate([[min(acc.low, grid[0])], grid, [max(acc.high, grid[-1])]])
            live_cdf = np.concatenate([[acc.between[0] / acc.n], np.cumsum(acc.between[:-1] + acc.equal) / acc.n, [1.0]])
            ax.step(xs, np.concatenate([[0.0], acc.ref.cdf, [1.0]]), where="post", label="reference", color="#4c78a8")
            ax.step(xs, live_cdf, where="post", label="live", color="#d62728")
            ax.set_ylabel("share <= x")
        else:
            ref_total = max(sum(acc.reference.values()), 1)
            keys = sorted(set(acc.reference) | set(acc.counts), key=lambda k: -acc.reference.get(k, 0))[:12]
            x = np.arange(len(keys))
            ax.bar(x - 0.2, [acc.reference.get(k, 0) / ref_total for k in keys], 0.4, label="reference",
                   color="#4c78a8")
            ax.bar(x + 0.2, [acc.counts.get(k, 0) / max(acc.n, 1) for k in keys], 0.4, label="live", color="#d62728")
            labels = [str(k) for k in keys] if acc.edges is None else [f"{acc.edges[int(k)]:.3g}" for k in keys]
            ax.set_xticks(x, labels, rotation=45, fontsize=7)
            ax.set_ylabel("share")
        flag = "drifted" if r.drifted else "no drift"
        ax.set_title(f"{r.feature}: {r.test} p={r.p_value:.2g} ({flag})", fontsize=9)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(chosen):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def performance_over_time(history: list[dict[str, float]], reference: dict[str, float], path: Path) -> Path | None:
    """Each metric per batch (measured: solid; estimated: dashed), with the prediction priors' value as a
    dotted line."""
    names = [k for k in ("accuracy", "f1", "estimated_accuracy", "estimated_f1", "roc_auc", "mae", "rmse")
             if any(k in h for h in history)]
    if not names:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for i, name in enumerate(names):
        points = [(h["batch"], h[name]) for h in history if name in h]
        colour = f"C{i}"
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, color=colour,
                linestyle="--" if name.startswith("estimated_") else "-", label=name)
        base = reference.get(name.removeprefix("estimated_"))
        if base is not None:
            ax.axhline(base, color=colour, linestyle=":", linewidth=0.8)
    ax.set_xlabel("batch")
    ax.set_title("performance over the window (dotted: the priors')")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
