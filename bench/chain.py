"""Seed 004's chain run again unchanged: what it costs now against an earlier blase (issue 28: less than half).

    python bench/chain.py [--baseline REV] [--repeat 5]

The chain as a user scripts it (tests/test_reuse_and_lineage.py has the same): `blase step cutouts` for two
window sizes, then merge, features, cluster and sample, each given the previous run's id by `blase runs find
--latest` (12 commands). Run once to fill the store; then timed while nothing changed, so every step is reused and
the whole cost is the commands' start-up and their lookups. The baseline is the same project run by the blase of
git revision REV (a worktree of this repository, on PYTHONPATH), in alternation with this one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

MAIN = '''
import numpy as np

from blase_tui import Extract, runs, step


def _load(path):
    return np.concatenate([np.asarray(b["array"]) for b in Extract().load_npy(path)])


@step
def cutouts(ctx, window_size: int = 64):
    """Cut the mosaic into windows."""
    mosaic = _load("data/mosaic.npy")
    n = mosaic.shape[0] // window_size
    np.save(ctx.artifact_dir / "cutouts.npy", mosaic[: n * window_size].reshape(n, -1)[:, :64])


@step
def merge(ctx, cutouts_ids: list = []):
    """Merge cutout runs."""
    parts = [_load(runs.get(r).artifact_path("cutouts.npy")) for r in cutouts_ids]
    np.save(ctx.artifact_dir / "merged.npy", np.concatenate(parts))


@step
def features(ctx, merged_cutouts_id: str = ""):
    """Features of the merged cutouts."""
    x = _load(runs.get(merged_cutouts_id).artifact_path("merged.npy"))
    np.save(ctx.artifact_dir / "features.npy", x.mean(axis=1, keepdims=True))


@step
def cluster(ctx, features_id: str = "", n_clusters: int = 3):
    """Cluster the features."""
    x = _load(runs.get(features_id).artifact_path("features.npy"))
    np.save(ctx.artifact_dir / "clusters.npy", (x[:, 0] * 1000).astype(int) % n_clusters)


@step
def sample(ctx, clustering_id: str = "", num_samples: int = 5):
    """Sample from the clusters."""
    c = _load(runs.get(clustering_id).artifact_path("clusters.npy"))
    (ctx.artifact_dir / "sample.txt").write_text(str(c[:num_samples].tolist()))
'''


def chain(root: Path, env: dict[str, str]) -> float:
    """The 12 commands of the chain; their wall time."""
    blase = [sys.executable, "-m", "blase_tui"]

    def call(*args: str) -> str:
        return subprocess.run([*blase, *args], cwd=root, env=env, capture_output=True, text=True,
                              check=True).stdout.strip()

    def latest(step: str, *params: str) -> str:
        return call("runs", "find", "--step", step, *[a for p in params for a in ("--param", p)], "--latest")

    start = time.perf_counter()
    before = len(list(root.glob("runs/2*")))
    for w in (64, 128):
        call("step", "cutouts", "--set", f"window_size={w}")
    small, large = latest("cutouts", "window_size=64"), latest("cutouts", "window_size=128")
    call("step", "merge", "--set", f'cutouts_ids=["{small}", "{large}"]')
    call("step", "features", "--set", f"merged_cutouts_id={latest('merge')}")
    call("step", "cluster", "--set", f"features_id={latest('features')}")
    call("step", "sample", "--set", f"clustering_id={latest('cluster')}")
    took = time.perf_counter() - start
    made = len(list(root.glob("runs/2*"))) - before
    if made and before:  # a chain run again must reuse every step: otherwise this measures executions
        raise SystemExit(f"the unchanged chain made {made} new run(s) in {root}: its steps were not reused")
    return took


def project(root: Path) -> Path:
    import numpy as np

    root.mkdir(parents=True)
    (root / "blase.toml").write_text('[project]\nname = "curation"\n')
    (root / "main.py").write_text(MAIN)
    (root / "data").mkdir()
    np.save(root / "data" / "mosaic.npy", np.random.default_rng(0).random((4096, 64)))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="96cf4f0", help="git revision of the earlier blase (default: the last"
                                                                " commit before issue 28's start-up work)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        worktree = base / "baseline"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.baseline],
                       check=True, capture_output=True)
        try:
            clean = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as a user's Python
            setups = {
                "now": (project(base / "now"), {**clean, "BLASE_HOME": str(base / "home-now")}),
                f"baseline {args.baseline}": (project(base / "then"), {**clean, "BLASE_HOME": str(base / "home-then"),
                                                                       "PYTHONPATH": str(worktree)}),
            }
            times: dict[str, list[float]] = {label: [] for label in setups}
            for root, env in setups.values():
                chain(root, env)  # fills the store: every later chain reuses every step
                chain(root, env)  # (and writes the bytecode caches, as a user's second day does)
            for _ in range(args.repeat):
                for label, (root, env) in setups.items():
                    times[label].append(chain(root, env))
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False,
                           capture_output=True)
            shutil.rmtree(worktree, ignore_errors=True)
    now, then = (statistics.median(v) for v in times.values())
    print("seed 004's chain run again unchanged (12 commands, every step reused), median of", args.repeat)
    for label, values in times.items():
        print(f"  {label:<22}{statistics.median(values):>8.2f} s")
    print(f"now / baseline: {now / then:.2f} (target < 0.5: {'PASS' if now / then < 0.5 else 'MISS'})")


if __name__ == "__main__":
    main()
