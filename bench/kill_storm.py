"""Kill storm: a step that logs metrics and writes artifacts is killed with SIGKILL at random moments, again and
again; after each kill the store must be whole.

    python bench/kill_storm.py                 # 200 kills (~10 min on 2 cores)
    python bench/kill_storm.py --kills 50 --seed 3

Each try starts `blase step storm` (a real subprocess) in one project, waits until the step's first metric is in
its ``events.jsonl`` (so no kill lands while Python starts or the project loads: on a loaded machine that takes
seconds, and a kill there tests nothing), then waits a random 0.05-2 s (the step runs for a random number of
iterations, so some kills land while blase records the end of the step), kills it with SIGKILL, lets the next
command's recovery run (``RunStore.recover_dead``, as every `blase` command does), and checks:

- ``PRAGMA integrity_check`` is ``ok``;
- every object in the content store hashes to its name (new objects since the last try);
- no run and no step execution is left ``running``;
- every run folder has a ``run.json`` whose status is the index's;
- every metric value in the index is also in the step's ``events.jsonl`` (the run folder can rebuild it), and
  how many values the step had logged (its own counter, written every 100 values) that neither holds;
- how many metric values were written (``events.jsonl`` or the index) before the kill: a kill that landed before
  any was is a failed try, and the storm says so and exits 1, since it tested nothing.

It prints survived/tried, the metric values written before each kill, and the most a kill lost. Not a test: it
takes minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

MAIN = '''
import os
from pathlib import Path

from blase_tui import main, step


@step
def storm(ctx, iterations: int = 1000):
    """Log metrics, write artifacts, report progress."""
    for i in range(iterations):
        ctx.log_metric("v", float(i), iteration=i)
        if i % 100 == 0:
            tmp = Path(f".progress.{os.getpid()}")
            tmp.write_text(str(i))
            os.replace(tmp, "progress.txt")  # what the step had logged by then, for the lost-values count
        if i % 250 == 0:
            (ctx.artifact_dir / f"part{i}.txt").write_text("x" * (i + 1))
        if i % 500 == 0:
            Path("note.txt").write_text(f"note {i}")
            ctx.log_artifact("note.txt", name=f"notes/{i}.txt")


if __name__ == "__main__":
    main()
'''


@dataclass
class Try:
    """What one kill left: the store's problems, the metric values written before it (``events.jsonl`` or the
    index) and those the step had logged that neither holds (None when it cannot tell)."""

    problems: list[str] = field(default_factory=list)
    written: int = 0
    lost: int | None = None


def check(root: Path, checked: set[str]) -> Try:
    """The store after a kill (recovered as the next command would) and the last run's metric values."""
    sys.path.insert(0, str(REPO))
    from blase_tui.store.events import read_events
    from blase_tui.store.runstore import RunStore

    out = Try()
    store = RunStore(root)
    try:
        store.recover_dead()
    finally:
        store.close()
    db = sqlite3.connect(root / "runs" / "blase.db")
    try:
        if (ok := db.execute("PRAGMA integrity_check").fetchone()[0]) != "ok":
            out.problems.append(f"integrity_check: {ok}")
        running = db.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0]
        running += db.execute("SELECT COUNT(*) FROM step_runs WHERE status = 'running'").fetchone()[0]
        if running:
            out.problems.append(f"{running} runs or step executions left running")
        statuses = dict(db.execute("SELECT id, status FROM runs"))
        last = db.execute("SELECT id FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        in_index = {r[0] for r in db.execute(
            "SELECT m.iteration FROM metrics m WHERE m.run_id = ?", (last[0],))} if last else set()
    finally:
        db.close()
    for folder in (root / "runs").iterdir():
        if not folder.is_dir():
            continue
        try:
            desc = json.loads((folder / "run.json").read_text())
        except (OSError, ValueError) as exc:
            out.problems.append(f"{folder.name}: no readable run.json ({exc})")
            continue
        if statuses.get(folder.name) != desc.get("status"):
            out.problems.append(f"{folder.name}: run.json says {desc.get('status')}, the index {statuses.get(folder.name)}")
    objects = root / ".blase" / "cas" / "objects"
    for path in objects.rglob("*") if objects.is_dir() else ():
        name = path.parent.name + path.name
        if path.is_file() and not path.name.startswith(".tmp-") and name not in checked:
            if hashlib.sha256(path.read_bytes()).hexdigest() != name:
                out.problems.append(f"object {name[:12]} does not match its hash")
            checked.add(name)
    if last is not None:
        in_events = {e["iteration"] for e in read_events(root / "runs" / last[0] / "storm" / "events.jsonl")
                     if e.get("type") == "metric"}
        if not in_index <= in_events:
            out.problems.append(f"{len(in_index - in_events)} metric values in the index are not in events.jsonl")
        out.written = len(in_events | in_index)
        progress = root / "progress.txt"
        if progress.is_file():
            logged = int(progress.read_text() or 0) + 1
            out.lost = max(0, logged - out.written)
            progress.unlink()
    return out


def first_metric(root: Path, before: set[str], proc: subprocess.Popen, timeout: float) -> float | None:
    """Seconds until the step's first metric is in the ``events.jsonl`` of the run it made (a run folder not in
    ``before``); None when the step ended, or ``timeout`` passed, without one."""
    sys.path.insert(0, str(REPO))
    from blase_tui.store.events import read_events

    started = time.monotonic()
    runs = root / "runs"
    events: Path | None = None
    while time.monotonic() - started < timeout:
        ended = proc.poll() is not None
        if events is None and runs.is_dir():
            new = [d for d in runs.iterdir() if d.is_dir() and d.name not in before]
            if new:
                events = max(new) / "storm" / "events.jsonl"
        if events is not None and events.is_file() and any(
                e.get("type") == "metric" for e in read_events(events)):
            return time.monotonic() - started
        if ended:  # its events were closed as it ended: no metric now means none
            return None
        time.sleep(0.005)
    return None


def spread(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    return (f"min {ordered[0]:,.0f}, median {statistics.median(ordered):,.0f}, max {ordered[-1]:,.0f}"
            if max(ordered) >= 10 else
            f"min {ordered[0]:.2f}, median {statistics.median(ordered):.2f}, max {ordered[-1]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start-timeout", type=float, default=120.0,
                        help="seconds a try waits for the step's first metric before it counts as failed")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="blase-kill-storm-")) / "project"
    root.mkdir()
    (root / "blase.toml").write_text('[project]\nname = "storm"\n')
    (root / "main.py").write_text(MAIN)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    survived, worst_lost, finished_first = 0, 0, 0
    early: list[int] = []  # tries whose kill landed before any metric value was written
    written: list[float] = []
    waits: list[float] = []
    checked: set[str] = set()
    started = time.monotonic()
    for attempt in range(args.kills):
        iterations = rng.choice([200, 2_000, 20_000, 200_000])
        delay = rng.uniform(0.05, 2.0)
        runs = root / "runs"
        before = {d.name for d in runs.iterdir()} if runs.is_dir() else set()
        proc = subprocess.Popen([sys.executable, "-m", "blase_tui", "step", "storm", "--force", "--quiet",
                                 "--set", f"iterations={iterations}"], cwd=root, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        waited = first_metric(root, before, proc, args.start_timeout)
        if waited is not None:
            waits.append(waited)
            time.sleep(delay)
        if proc.poll() is not None:
            finished_first += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        result = check(root, checked)
        if result.lost is not None:
            worst_lost = max(worst_lost, result.lost)
        written.append(result.written)
        problems = result.problems
        if not problems:
            survived += 1
        if result.written == 0:
            early.append(attempt + 1)
            why = (f"the step logged none in {args.start_timeout:g} s" if waited is None
                   else "none was in events.jsonl or the index after all")
            problems = [f"the kill landed before any metric value was written ({why})", *problems]
        if problems:
            print(f"try {attempt + 1}: " + "; ".join(problems[:3]), flush=True)
    elapsed = time.monotonic() - started
    print(f"\nkill storm: {survived}/{args.kills} kills left a whole store ({finished_first} steps had ended"
          f" before their kill), {elapsed:.0f} s")
    print(f"metric values written before each kill: {spread(written)}")
    print(f"wait for the step's first metric: {spread(waits) + ' s' if waits else 'it never came'}")
    print(f"most metric values one kill lost: {worst_lost} (logged by the step, in neither events.jsonl nor the"
          " index)")
    print(f"project kept at {root}")
    if early:
        print(f"kill storm FAILED: {len(early)} of {args.kills} kills landed before the step had written any metric"
              f" value (tries {', '.join(map(str, early[:10]))}{', ...' if len(early) > 10 else ''}), so they"
              " tested nothing; raise --start-timeout or run it on a less loaded machine.", file=sys.stderr)
        sys.exit(1)
    if survived < args.kills:
        print(f"kill storm FAILED: {args.kills - survived} of {args.kills} kills left a damaged store (lines"
              " above).", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
