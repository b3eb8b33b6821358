"""What opening the run store costs, with the check for damage (docs/architecture.md, "A store that notices
damage"): a 5,000-run index opened as every command opens it, when the last process left it clean (the common
path: a few system calls) and when it was not (a ``PRAGMA quick_check`` first), next to SQLite's full
``integrity_check`` (``blase verify``).

    python bench/store_open.py [--runs 5000] [--repeat 200]

Run it with another checkout first on ``PYTHONPATH`` to time that version's open the same way (its "left clean"
and "not closed cleanly" lines are then the same path).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path


def fill(root: Path, runs: int) -> None:
    """``runs`` runs of one step with 20 metrics each, a few params and a tag, through the store's own API."""
    from blase_tui.store.runstore import RunStore

    store = RunStore(root)
    for i in range(runs):
        run_id = store.create_run(name=f"r{i}", params={"lr": i, "model": "cnn"}, tags={"t": i})
        step_run_id, _ = store.begin_step(run_id, "train", pid=os.getpid(), pid_started=None)
        store.log_metrics([(run_id, step_run_id, "loss", 1.0 / (j + 1), j, time.time()) for j in range(20)])
        store.finish_step(step_run_id, "succeeded", exit_code=0)
        store.close_run(run_id)
    store.close()


def open_ms(root: Path, repeat: int, clean: bool) -> list[float]:
    from blase_tui.store.runstore import RunStore

    stamp = root / "runs" / ".blase.db.clean"
    times = []
    for _ in range(repeat):
        if not clean:
            stamp.unlink(missing_ok=True)
        start = time.perf_counter()
        store = RunStore(root)
        store.db.query("SELECT COUNT(*) FROM runs")
        store.close()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    import blase_tui

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fill(root, args.runs)
        db = root / "runs" / "blase.db"
        print(f"blase from {Path(blase_tui.__file__).parent}; index {args.runs} runs, {db.stat().st_size / 2**20:.1f} MiB")
        open_ms(root, 5, True)  # warm the page cache
        for label, clean in (("left clean", True), ("not closed cleanly", False)):
            times = open_ms(root, args.repeat if clean else max(10, args.repeat // 10), clean)
            print(f"open + query + close, {label:18}: median {statistics.median(times):6.2f} ms"
                  f"  (min {min(times):.2f}, n={len(times)})")
        con = sqlite3.connect(db)
        for pragma in ("quick_check", "integrity_check"):
            times = []
            for _ in range(5):
                start = time.perf_counter()
                con.execute(f"PRAGMA {pragma}").fetchall()
                times.append((time.perf_counter() - start) * 1000)
            print(f"PRAGMA {pragma:34}: median {statistics.median(times):6.2f} ms")
        con.close()


if __name__ == "__main__":
    main()
