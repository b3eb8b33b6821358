"""How long `blase` commands take to start, against a bare `python script.py` (issue 28) and `mlflow --help`.

    python bench/startup.py [--repeat 15]

Targets (issue 28): `blase step` of a step that prints one line and `blase runs find` at most 4x a bare `python
script.py` that prints one line; `blase --help` at most 5x. Prints the median of several runs of each command,
the ratios, and which heavy modules each blase command imported (none is the target).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = """
import json, sys
sys.argv = ["blase", *json.loads(sys.argv[1])]
from blase_tui.cli.hot import run
try:
    run()
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "tensorflow", "textual", "pandas", "pyarrow", "sklearn") if m in sys.modules)
sys.__stderr__.write("HEAVY=" + json.dumps(heavy) + "\\n")
"""


def median_seconds(cmd: list[str], repeat: int, cwd: Path, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        root.mkdir()
        (root / "blase.toml").write_text('[project]\nname = "bench"\n')
        (root / "main.py").write_text("from blase_tui import step\n@step\ndef hello(ctx):\n    print('hello')\n")
        (root / "script.py").write_text("print('hello')\n")
        env = {**os.environ, "BLASE_HOME": str(Path(tmp) / "home")}
        blase = [sys.executable, "-m", "blase_tui"]
        subprocess.run([*blase, "step", "hello"], cwd=root, env=env, capture_output=True, check=True)
        # interleaved, round by round (bare, then each command): a slow spell of the machine weighs on every
        # command alike instead of on whichever was being timed then
        commands = [("python script.py", [sys.executable, "script.py"], None),
                    ("blase --help", [*blase, "--help"], 5.0),
                    ("blase step hello", [*blase, "step", "hello"], 4.0),
                    ("blase runs find", [*blase, "runs", "find", "--step", "hello", "--latest"], 4.0),
                    ("blase runs list", [*blase, "runs", "list"], None)]
        times: dict[str, list[float]] = {label: [] for label, _, _ in commands}
        for _ in range(args.repeat):
            for label, cmd, _ in commands:
                times[label].append(median_seconds(cmd, 1, root, env))
        bare = statistics.median(times["python script.py"])
        rows = [(label, statistics.median(times[label]), target) for label, _, target in commands[1:]]
        heavy = {}
        for label, argv in (("blase --help", ["--help"]), ("blase runs list", ["runs", "list"]),
                            ("blase step hello", ["step", "hello", "--force"])):
            proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)], cwd=root, env=env,
                                  capture_output=True, text=True)
            heavy[label] = json.loads(proc.stderr.split("HEAVY=")[-1])
        mlflow = shutil.which("mlflow") or shutil.which("mlflow", path=str(Path(sys.executable).parent))
        peer = median_seconds([mlflow, "--help"], args.repeat, root) if mlflow else None

    print(f"{'command':<22}{'median s':>10}{'x python script.py':>20}   target")
    print(f"{'python script.py':<22}{bare:>10.3f}{1.0:>19.1f}x")
    for label, seconds, target in rows:
        verdict = "" if target is None else f"   ≤ {target:.0f}x: {'PASS' if seconds / bare <= target else 'MISS'}"
        print(f"{label:<22}{seconds:>10.3f}{seconds / bare:>19.1f}x{verdict}")
    if peer is not None:
        print(f"{'mlflow --help':<22}{peer:>10.3f}")
        print(f"ratio mlflow/blase --help: {peer / rows[0][1]:.1f}x")
    else:
        print("mlflow not installed (pip install '.[bench]' to compare)")
    for label, mods in heavy.items():
        print(f"heavy modules imported by {label}: {', '.join(mods) or 'none'}")


if __name__ == "__main__":
    main()
