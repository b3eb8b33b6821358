"""Kill storm: a step that logs metrics and writes artifacts is killed with SIGKILL at random moments, again and
again; after each kill the store must be whole.

    python bench/kill_storm.py                 # 200 kills (~4 min on 2 cores)
    python bench/kill_storm.py --kills 50 --seed 3

Each try starts `blase step storm` (a real subprocess) in one project, waits a random 0.05-2 s (the step runs
for a random number of iterations, so some kills land while blase records the end of the step), kills it with
SIGKILL, lets the next command's recovery run (``RunStore.recover_dead``, as every `blase` command does), and
checks:

- ``PRAGMA integrity_check`` is ``ok``;
- every object in the content store hashes to its name (new objects since the last try);
- no run and no step execution is left ``running``;
- every run folder has a ``run.json`` whose status is the index's;
- every metric value in the index is also in the step's ``events.jsonl`` (the run folder can rebuild it), and
  how many values the step had logged (its own counter, written every 100 values) that neither holds.

It prints survived/tried and the most metric values a kill lost. Not a test: it takes minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
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


def check(root: Path, checked: set[str]) -> tuple[list[str], int | None]:
    """Problems found, and the metric values the last run lost (None when it cannot tell)."""
    sys.path.insert(0, str(REPO))
    from blase_tui.store.runstore import RunStore

    problems: list[str] = []
    store = RunStore(root)
    try:
        store.recover_dead()
    finally:
        store.close()
    db = sqlite3.connect(root / "runs" / "blase.db")
    try:
        if (ok := db.execute("PRAGMA integrity_check").fetchone()[0]) != "ok":
            problems.append(f"integrity_check: {ok}")
        running = db.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0]
        running += db.execute("SELECT COUNT(*) FROM step_runs WHERE status = 'running'").fetchone()[0]
        if running:
            problems.append(f"{running} runs or step executions left running")
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
            problems.append(f"{folder.name}: no readable run.json ({exc})")
            continue
        if statuses.get(folder.name) != desc.get("status"):
            problems.append(f"{folder.name}: run.json says {desc.get('status')}, the index {statuses.get(folder.name)}")
    objects = root / ".blase" / "cas" / "objects"
    for path in objects.rglob("*") if objects.is_dir() else ():
        name = path.parent.name + path.name
        if path.is_file() and not path.name.startswith(".tmp-") and name not in checked:
            if hashlib.sha256(path.read_bytes()).hexdigest() != name:
                problems.append(f"object {name[:12]} does not match its hash")
            checked.add(name)
    lost = None
    if last is not None:
        events = root / "runs" / last[0] / "storm" / "events.jsonl"
        in_events = set()
        if events.is_file():
            for line in events.read_text().splitlines():
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("type") == "metric":
                    in_events.add(e["iteration"])
        if not in_index <= in_events:
            problems.append(f"{len(in_index - in_events)} metric values in the index are not in events.jsonl")
        progress = root / "progress.txt"
        if progress.is_file():
            logged = int(progress.read_text() or 0) + 1
            lost = max(0, logged - len(in_events | in_index))
            progress.unlink()
    return problems, lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="blase-kill-storm-")) / "project"
    root.mkdir()
    (root / "blase.toml").write_text('[project]\nname = "storm"\n')
    (root / "main.py").write_text(MAIN)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    survived, worst_lost, finished_first = 0, 0, 0
    checked: set[str] = set()
    started = time.monotonic()
    for attempt in range(args.kills):
        iterations = rng.choice([200, 2_000, 20_000, 200_000])
        proc = subprocess.Popen([sys.executable, "-m", "blase_tui", "step", "storm", "--force", "--quiet",
                                 "--set", f"iterations={iterations}"], cwd=root, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 2.0))
        if proc.poll() is not None:
            finished_first += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        problems, lost = check(root, checked)
        if lost is not None:
            worst_lost = max(worst_lost, lost)
        if problems:
            print(f"try {attempt + 1}: " + "; ".join(problems[:3]))
        else:
            survived += 1
    elapsed = time.monotonic() - started
    print(f"\nkill storm: {survived}/{args.kills} kills left a whole store ({finished_first} steps had ended"
          f" before their kill), {elapsed:.0f} s")
    print(f"most metric values one kill lost: {worst_lost} (logged by the step, in neither events.jsonl nor the"
          " index)")
    print(f"project kept at {root}")


if __name__ == "__main__":
    main()
