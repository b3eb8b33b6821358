"""Keypress to next record in the labelling screen, measured with Textual's Pilot on a real project.

    python bench/label_keys.py [--pool 20000] [--keys 60]

Target (issue 6): ≤ 50 ms from a label key to the next record shown. The time runs from the key's handler to
the first screen refresh after the next record was drawn, and covers committing the label to SQLite with
fsync (synchronous=FULL), reading the next record (prefetched) and drawing its fields, stamp and light curve.

The peer is what the seed's workflow needs to not lose labels when the process dies: append the label to
`labels.csv` by reading it with pandas and writing it back (as its notebook does at the end of a round),
after every key. Both are printed with the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


async def measure(root: Path, keys: int) -> list[float]:
    """The screen's own figures: from the key's handler to the refresh that drew the next record (Pilot's
    ``press`` waits for the app to go idle, which would add its own tens of milliseconds)."""
    from blase_tui.tui.app import make_app
    from blase_tui.tui.screens.label import LabelScreen

    app = make_app(root, start="label", label_options={"strategy": None, "n": keys + 5})
    async with app.run_test(size=(120, 40)) as pilot:
        while not (isinstance(app.screen, LabelScreen) and app.screen.record is not None and not app.screen.busy):
            await pilot.pause(0.01)
        screen = app.screen
        screen.latencies.clear()
        for i in range(keys):
            await pilot.press("rb"[i % 2])
            while len(screen.latencies) <= i:
                await asyncio.sleep(0.001)
        return list(screen.latencies)


def peer(root: Path, keys: int, existing: int) -> list[float]:
    import pandas as pd

    path = root / "labels.csv"
    pd.DataFrame({"candid": range(existing), "objectId": [f"ZTF{i}" for i in range(existing)],
                  "label": ["real"] * existing, "timestamp": ["2026-01-01T00:00:00"] * existing}).to_csv(path, index=False)
    out = []
    for i in range(keys):
        start = time.perf_counter()
        df = pd.read_csv(path)
        df.loc[len(df)] = [10**9 + i, f"ZTF{i}", "real", "2026-01-01T00:00:00"]
        df.to_csv(path, index=False)
        with open(path, "rb+") as fh:
            os.fsync(fh.fileno())
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=60)
    parser.add_argument("--existing-labels", type=int, default=5_000, help="labels already in the peer's CSV")
    args = parser.parse_args()
    from conftest import make_project
    from test_tui_label import LABEL_TOML, write_pool

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BLASE_HOME"] = str(Path(tmp) / "home")
        root = make_project(Path(tmp) / "alerts", main_src="from blase_tui import step\n", toml=LABEL_TOML)
        write_pool(root, n=args.pool)
        ours = asyncio.run(measure(root, args.keys))
        theirs = peer(Path(tmp), args.keys, args.existing_labels)
    med, p95 = statistics.median(ours) * 1e3, sorted(ours)[int(0.95 * len(ours))] * 1e3
    pmed = statistics.median(theirs) * 1e3
    print(f"pool of {args.pool:,} alerts, {args.keys} keys; peer CSV holds {args.existing_labels:,} labels")
    print(f"{'measure':<40}{'blase':>10}{'pandas CSV':>12}{'ratio':>8}   target")
    print(f"{'key to next record shown, median (ms)':<40}{med:>10.1f}{pmed:>12.1f}{pmed / med:>7.1f}x   ≤ 50 ms")
    print(f"{'key to next record shown, p95 (ms)':<40}{p95:>10.1f}")


if __name__ == "__main__":
    main()
