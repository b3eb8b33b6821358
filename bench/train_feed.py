"""Training data feed and training-loop overhead: blase against plain PyTorch/numpy on the same shards.

    python bench/train_feed.py [--records 20000] [--epochs 3]

1. Feeding: blase's shuffled batches from memory-mapped npy shards (`SplitData.batches`) against a plain
   memory-mapped read of the same shards with the same permutation and batch size. Target: >= 0.9x.
2. Training: `Train` (a PyTorch CNN, per-epoch checkpoint, metrics, progress events) against a hand-written
   PyTorch loop over the same data, model, batch size, seed and epochs. Target: blase's per-epoch overhead
   <= 5%. Both run in this process, interleaved three times; the fastest epoch of each side is compared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_split(root: Path, records: int, shard: int = 5000) -> Path:
    from blase_tui.modules.batch import Batch, BatchMeta
    from blase_tui.modules.load import Load

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, records)
    base = rng.integers(0, 60, (10, 32, 32), dtype=np.uint8)
    loader = Load()
    for lo in range(0, records, shard):
        y = labels[lo:lo + shard]
        x = (base[y] + rng.integers(0, 40, (len(y), 32, 32), dtype=np.uint8)).astype(np.uint8)
        keys = [f"r{i}" for i in range(lo, lo + len(y))]
        loader.save_to_filesystem(Batch(keys, {"image": x, "label": y}, BatchMeta("bench", lo)), root / "train")
    return root


def plain_batches(split_dir: Path, batch_size: int, epoch: int, seed: int):  # noqa: ANN201
    """The hand-written feed: memory-mapped shards, a seeded permutation per epoch, sorted batch indices."""
    shards = sorted(split_dir.glob("part-*.image.npy"))
    images = [np.load(s, mmap_mode="r") for s in shards]
    labels = [np.load(str(s).replace(".image.", ".label."), mmap_mode="r") for s in shards]
    offsets = np.cumsum([0] + [len(a) for a in images])
    n = int(offsets[-1])
    order = np.random.default_rng([seed, epoch]).permutation(n)
    for lo in range(0, n, batch_size):
        index = np.sort(order[lo:lo + batch_size])
        which = np.searchsorted(offsets, index, side="right") - 1
        x = np.empty((len(index), 32, 32), np.uint8)
        y = np.empty(len(index), np.int64)
        for s in np.unique(which):
            m = which == s
            x[m] = images[s][index[m] - offsets[s]]
            y[m] = labels[s][index[m] - offsets[s]]
        yield x, y


def plain_feed(split_dir: Path, batch_size: int, epoch: int, seed: int) -> int:
    return sum(len(x) for x, _ in plain_batches(split_dir, batch_size, epoch, seed))


def blase_feed(split_dir: Path, batch_size: int, epoch: int, seed: int) -> int:
    from blase_tui.modules.shards import open_split

    split = open_split(split_dir)
    seen = 0
    for _, cols in split.batches(batch_size, columns=["image", "label"], shuffle=True, seed=seed, epoch=epoch):
        seen += len(cols["image"])
    return seen


def cnn():
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def hand_train(split_dir: Path, epochs: int, batch_size: int, seed: int) -> list[float]:
    import torch

    torch.manual_seed(seed)
    model = cnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        for x, y in plain_batches(split_dir, batch_size, epoch, seed):
            inputs = torch.from_numpy(x.astype(np.float32) / 255.0)[:, None]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs), torch.from_numpy(y))
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times


def blase_train(split_dir: Path, epochs: int, batch_size: int, seed: int) -> list[float]:
    from blase_tui.modules.train import Train

    trainer = Train(seed=seed)
    trainer.set_model(cnn(), framework="torch")
    trainer.configure_training(optimizer="adam", loss_fn="cross_entropy", batch_size=batch_size, learning_rate=1e-3)
    history = trainer.train(epochs=epochs, data_dir=split_dir)
    return [h["seconds"] for h in history]


def best(fn, *args, repeat: int = 2) -> float:  # noqa: ANN001
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        out.append(time.perf_counter() - start)
    return min(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    work = Path(tempfile.mkdtemp(prefix="blase-feed-"))
    cwd = os.getcwd()
    try:
        os.chdir(work)  # blase writes its checkpoints next to the working directory outside a step
        data = make_split(work / "prepared", args.records)
        split_dir = data / "train"
        plain_feed(split_dir, args.batch_size, 0, 0)  # warm the page cache
        feed_plain = best(plain_feed, split_dir, args.batch_size, 1, 0, repeat=3)
        feed_blase = best(blase_feed, split_dir, args.batch_size, 1, 0, repeat=3)
        results: dict[str, list[float]] = {"hand": [], "blase": []}
        for _ in range(3):  # interleaved, so a busy moment of the machine hits both sides
            results["hand"] += hand_train(split_dir, args.epochs, args.batch_size, 0)
            results["blase"] += blase_train(data, args.epochs, args.batch_size, 0)
        # the fastest epoch of each side: the least disturbed measure of what the loop itself costs
        hand, ours = min(results["hand"]), min(results["blase"])
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)

    rate_plain, rate_blase = args.records / feed_plain, args.records / feed_blase
    feed_ratio = rate_blase / rate_plain
    overhead = ours / hand - 1
    print(f"{args.records} records of 32x32 uint8, batch {args.batch_size}, {args.epochs} epochs, "
          f"{os.cpu_count()} cores, torch {torch.__version__}, python {sys.version.split()[0]}")
    print(f"{'':<34}{'plain/hand':>14}{'blase':>14}{'ratio':>9}")
    print(f"{'feed, records/s (shuffled)':<34}{rate_plain:>14,.0f}{rate_blase:>14,.0f}{feed_ratio:>9.2f}x")
    print(f"{'train, seconds per epoch':<34}{hand:>14.3f}{ours:>14.3f}{ours / hand:>9.3f}x")
    print(f"feeding: blase = {feed_ratio:.2f}x the plain memory-mapped read (target >= 0.90: "
          f"{'PASS' if feed_ratio >= 0.9 else 'MISS'})")
    print(f"training: blase per-epoch overhead = {overhead * 100:+.1f}% (target <= 5%: "
          f"{'PASS' if overhead <= 0.05 else 'MISS'}); blase includes progress events, metrics and a checkpoint per epoch")


if __name__ == "__main__":
    main()
