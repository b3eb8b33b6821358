"""Drift at scale and drift you can trust: blase's streamed drift report against Evidently's ``DataDriftPreset``,
in the same run.

    python bench/monitor.py [--rows 10000000] [--files 20] [--peer-rows 1000000,10000000] [--budget-mib 256]
                            [--repeat 1] [--trials 200] [--peer-python PATH] [--workdir DIR]

1. **Scale.** A Parquet dataset of ``--rows`` rows x 20 float features (``--files`` files; two features shifted,
   the rest unchanged) and a 100,000-row reference. blase: ``Monitor(memory_budget=...).drift_report(folder)``,
   the priors built from the reference (``FeaturePriors``, a 10,000-value sample per feature). The floor: a
   plain pyarrow pass over the same columns of the same files (``iter_batches``, each column summed with
   ``pyarrow.compute``), what reading alone costs: run before and after each of blase's reports (``--repeat``
   of them), the fastest of each kept. Evidently: ``Report([DataDriftPreset()]).run(current, reference)`` on
   the first N rows read into pandas (its way: the whole data in memory), for each N of ``--peer-rows`` it
   completes. All run in fresh processes; time is wall clock from after the imports (reading, loading the
   priors and the tests included), and for blase and the pyarrow pass also CPU seconds (all threads: steadier
   than wall clock on a shared machine); memory is the peak RssAnon above the process's baseline after
   imports, sampled every 5 ms, and the baseline (the import floor) is shown.
2. **False alarms.** ``--trials`` no-change trials per live size (100, 1,000, 10,000, 100,000 rows; 20 features
   of five distributions; a fresh 10,000-row reference each trial): the share of trials in which any feature
   is flagged. Evidently with its default settings (the test ``DataDriftPreset`` picks per column: KS p < 0.05
   up to 1,000 reference rows, normed Wasserstein >= 0.1 above; applied through Evidently's own stattest
   functions, checked against a full Report on the first trial), blase with ``detect_feature_drift`` at
   alpha = 0.05.

Evidently 0.7 does not import with pandas 3 (``infer_dtype_from_object``): give ``--peer-python`` a venv with
``pandas<3`` and ``evidently`` (the default: ``$BLASE_BENCH_PEER_PYTHON``, else this interpreter).
Targets: blase faster at equal rows; blase's report <= 3x the plain pyarrow pass; blase's peak <= the budget
above its import floor; blase's false-alarm rate within [0.5, 1.5] x alpha at every size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from out_of_core import SAMPLER  # noqa: E402  (the RssAnon sampler both sides use)

FEATURES = 20
FILES = 20  # --files
ALPHA = 0.05
SIZES = (100, 1_000, 10_000, 100_000)

MAKE = '''
import sys
import numpy as np, pandas as pd
from pathlib import Path
rows, folder, ref_path, files, out = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5])
names = [f"f{i:02d}" for i in range({features})]
folder.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(7)
pd.DataFrame(rng.normal(size=(100_000, len(names))), columns=names).to_parquet(ref_path)
per = rows // files
for i in range(files):
    block = rng.normal(size=(per, len(names)))
    block[:, 3] += 0.05            # a small shift in f03
    block[:, 7] *= 1.1             # a wider f07
    pd.DataFrame(block, columns=names).to_parquet(folder / f"part-{i:02d}.parquet", row_group_size=100_000)
out.write_text("{}")
'''.replace("{features}", str(FEATURES))

PRIORS = '''
import json, sys
from pathlib import Path
import pyarrow.parquet as pq
from blase_tui.modules.priors import FeaturePriors
ref_path, out = Path(sys.argv[1]), Path(sys.argv[2])
priors = FeaturePriors()
for batch in pq.ParquetFile(ref_path).iter_batches(batch_size=50_000):
    priors.update(batch.to_pandas())
ref_path.with_name("priors-features.json").write_text(json.dumps(priors.to_json()))
out.write_text("{}")
'''

BLASE_SCALE = SAMPLER + '''
import json, sys, time
from pathlib import Path
import numpy as np, pandas as pd
from blase_tui import Monitor
from blase_tui.modules.priors import FeaturePriors


def main():
    folder, ref_path, budget, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[-1]
    spec = sys.argv[4] if len(sys.argv) == 6 else ""  # "dask:2": the drift report on an executor's workers
    priors_path = Path(ref_path).with_name("priors-features.json")  # what training wrote (PRIORS, not measured)
    peak = Peak()
    t1, c1 = time.perf_counter(), time.process_time()
    executor, workers = (spec.split(":") + ["0"])[:2] if spec else ("", "0")
    monitor = Monitor(memory_budget=budget)
    monitor.load_feature_priors(str(priors_path))
    results = monitor.drift_report(folder, executor=executor or None, workers=int(workers) or None)
    seconds, cpu = time.perf_counter() - t1, time.process_time() - c1
    Path(out).write_text(json.dumps({"seconds": seconds, "cpu": cpu, "peak_anon": peak.stop(),
                                     "baseline": peak.baseline, "rows": max(r.n for r in results),
                                     "drifted": sorted(r.feature for r in results if r.drifted)}))


if __name__ == "__main__":  # Dask's workers start by importing this file again (spawn)
    main()
'''

ARROW_PASS = SAMPLER + '''
import json, sys, time
from pathlib import Path
import pyarrow.compute as pc
import pyarrow.parquet as pq
folder, out = Path(sys.argv[1]), sys.argv[2]
names = [f"f{i:02d}" for i in range({features})]
peak = Peak()
t0, c0 = time.perf_counter(), time.process_time()
rows = 0
for path in sorted(folder.glob("*.parquet")):  # the report's columns, every batch touched: reading, no more
    for batch in pq.ParquetFile(path).iter_batches(columns=names):
        rows += batch.num_rows
        for column in batch.columns:
            pc.sum(column)
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
Path(out).write_text(json.dumps({"seconds": seconds, "cpu": cpu, "peak_anon": peak.stop(), "baseline": peak.baseline,
                                 "rows": rows, "drifted": []}))
'''.replace("{features}", str(FEATURES))

PEER_SCALE = SAMPLER + '''
import json, sys, time
from pathlib import Path
import pandas as pd
import pyarrow.parquet as pq
from evidently import Report
from evidently.presets import DataDriftPreset
folder, ref_path, rows, out = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]

def drifted(metric):
    # a p-value test drifts under its threshold, a distance at or over it
    value, threshold = float(metric["value"]), metric["config"]["threshold"]
    return value < threshold if "p_value" in metric["config"]["method"] else value >= threshold

peak = Peak()
t0 = time.perf_counter()
reference = pd.read_parquet(ref_path)
frames, have = [], 0
for path in sorted(folder.glob("*.parquet")):
    if have >= rows:
        break
    frame = pq.read_table(path).to_pandas()
    frames.append(frame.iloc[: rows - have])
    have += len(frames[-1])
current = pd.concat(frames, ignore_index=True)
del frames, frame
report = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference).dict()
flagged = sorted(m["config"]["column"] for m in report["metrics"]
                 if m["config"]["type"].endswith("ValueDrift") and drifted(m))
seconds = time.perf_counter() - t0
Path(out).write_text(json.dumps({"seconds": seconds, "peak_anon": peak.stop(), "baseline": peak.baseline,
                                 "rows": len(current), "drifted": flagged}))
'''

TRIAL_DATA = '''
import numpy as np
def draw(rng, n, features):
    """n rows of 20 features in five shapes (normal, log-normal, uniform, exponential, Student t)."""
    kinds = [lambda k: rng.normal(size=k), lambda k: rng.lognormal(size=k), lambda k: rng.uniform(size=k),
             lambda k: rng.exponential(size=k), lambda k: rng.standard_t(5, size=k)]
    return np.column_stack([kinds[j % 5](n) for j in range(features)])
'''

BLASE_TRIALS = TRIAL_DATA + '''
import contextlib, io, json, sys, time
import pandas as pd
from blase_tui import Monitor
from blase_tui.modules.priors import FeaturePriors
sizes, trials, out = [int(s) for s in sys.argv[1].split(",")], int(sys.argv[2]), sys.argv[3]
names = [f"f{i:02d}" for i in range({features})]
result = {}
for n in sizes:
    rng = np.random.default_rng(1000 + n)
    alarms, t0 = 0, time.perf_counter()
    for _ in range(trials):
        priors = FeaturePriors()
        priors.update(pd.DataFrame(draw(rng, 10_000, len(names)), columns=names))
        monitor = Monitor(alpha={alpha})
        monitor.load_feature_priors(priors.to_json())
        with contextlib.redirect_stderr(io.StringIO()):
            found = monitor.detect_feature_drift(pd.DataFrame(draw(rng, n, len(names)), columns=names))
        alarms += any(r.drifted for r in found)
    result[n] = {"rate": alarms / trials, "seconds_per_trial": (time.perf_counter() - t0) / trials}
open(out, "w").write(json.dumps(result))
'''.replace("{features}", str(FEATURES)).replace("{alpha}", str(ALPHA))

PEER_TRIALS = TRIAL_DATA + '''
import json, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
from evidently.legacy.calculations.stattests.registry import get_stattest
from evidently.legacy.core import ColumnType
sizes, trials, out = [int(s) for s in sys.argv[1].split(",")], int(sys.argv[2]), sys.argv[3]
names = [f"f{i:02d}" for i in range({features})]

def flags(reference, current):
    """DataDriftPreset's default decision per column, through Evidently's own stattest functions."""
    found = []
    for name in names:
        test = get_stattest(reference[name], current[name], ColumnType.Numerical, None)
        if test(reference[name], current[name], ColumnType.Numerical, None).drifted:
            found.append(name)
    return found

result = {}
for n in sizes:
    rng = np.random.default_rng(1000 + n)
    alarms = share = 0
    t0 = time.perf_counter()
    for trial in range(trials):
        reference = pd.DataFrame(draw(rng, 10_000, len(names)), columns=names)
        current = pd.DataFrame(draw(rng, n, len(names)), columns=names)
        found = flags(reference, current)
        if trial == 0:  # the shortcut decides as the full Report does
            report = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference).dict()
            count = report["metrics"][0]["value"]["count"]
            assert int(count) == len(found), (count, found)
        alarms += bool(found)
        share += len(found) >= len(names) / 2  # the preset's dataset drift (drift_share = 0.5)
    result[n] = {"rate": alarms / trials, "dataset_rate": share / trials,
                 "seconds_per_trial": (time.perf_counter() - t0) / trials}
open(out, "w").write(json.dumps(result))
'''.replace("{features}", str(FEATURES))


def child(python: str, code: str, args: list[str], work: Path, name: str, timeout: float | None = None) -> dict | None:
    script = work / f"{name}.py"
    script.write_text(code)
    out = work / f"{name}.json"
    out.unlink(missing_ok=True)
    try:
        proc = subprocess.run([python, str(script), *args, str(out)], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  {name}: did not finish in {timeout:.0f} s")
        return None
    if proc.returncode != 0 or not out.exists():
        print(f"  {name}: failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:] if proc.stderr else ''}")
        return None
    return json.loads(out.read_text())


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=FILES, help="Parquet files the rows are written to")
    parser.add_argument("--repeat", type=int, default=1, help="run blase's report and the pyarrow pass this many"
                        " times each, alternating, and keep the fastest of each (a shared machine's noise)")
    parser.add_argument("--peer-rows", default="1000000,10000000")
    parser.add_argument("--budget-mib", type=int, default=256)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--peer-python", default=os.environ.get("BLASE_BENCH_PEER_PYTHON", sys.executable))
    parser.add_argument("--peer-timeout", type=float, default=1800)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-trials", action="store_true")
    parser.add_argument("--executor", default=None, help="also run blase's report on this executor (dask), the same"
                        " budget per worker, and print the speed-up over one process")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="blase-bench-monitor-"))
    work.mkdir(parents=True, exist_ok=True)
    budget = args.budget_mib * 2**20
    print(f"workdir {work}; peer {args.peer_python}")

    if not args.skip_scale:
        folder = work / (f"live-{args.rows}" if args.files == FILES else f"live-{args.rows}-in-{args.files}")
        ref_path = work / "reference.parquet"
        if not folder.exists():
            t = time.perf_counter()
            child(sys.executable, MAKE, [str(args.rows), str(folder), str(ref_path), str(args.files)], work, "make")
            print(f"made {args.rows:,} rows x {FEATURES} features in {time.perf_counter() - t:.0f} s")
        if not ref_path.with_name("priors-features.json").exists():
            child(sys.executable, PRIORS, [str(ref_path)], work, "priors")
        peer_rows = {int(r) for r in args.peer_rows.split(",") if r.strip() and int(r) > 0}
        rows_list = sorted({r for r in peer_rows if r <= args.rows} | {args.rows})
        print(f"\n## drift report, {FEATURES} features (f03 shifted by 0.05 sd, f07 10% wider); budget"
              f" {args.budget_mib} MiB\n")
        print("| rows | tool | seconds | rows/s | peak anon above floor, MiB | import floor, MiB | x budget | flagged |")
        print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |")
        summary: list[tuple[int, dict | None, dict | None, dict | None]] = []
        for rows in rows_list:
            subset = work / f"{folder.name}-first-{rows}"
            if rows < args.rows and not subset.exists():
                subset.mkdir()
                per = args.rows // args.files
                for path in sorted(folder.glob("*.parquet"))[: max(1, rows // per)]:
                    (subset / path.name).symlink_to(path)
            source = folder if rows == args.rows else subset
            # reading alone, just before and just after each of blase's reports (the fastest counts)
            passes, reports = [child(sys.executable, ARROW_PASS, [str(source)], work, f"pyarrow-{rows}")], []
            for _ in range(max(1, args.repeat)):
                reports.append(child(sys.executable, BLASE_SCALE, [str(source), str(ref_path), str(budget)], work,
                                     f"blase-{rows}"))
                passes.append(child(sys.executable, ARROW_PASS, [str(source)], work, f"pyarrow-{rows}"))
            reading = min((r for r in passes if r), key=lambda r: r["seconds"], default=None)
            ours = min((r for r in reports if r), key=lambda r: r["seconds"], default=None)
            if ours is not None:  # the peak: the highest of all runs, not the fastest one's
                ours = {**ours, "peak_anon": max(r["peak_anon"] - r["baseline"] for r in reports if r) + ours["baseline"]}
            theirs = child(args.peer_python, PEER_SCALE, [str(folder), str(ref_path), str(rows)], work,
                           f"evidently-{rows}", timeout=args.peer_timeout) if rows in peer_rows else None
            summary.append((rows, ours, reading, theirs))
            for tool, r in (("pyarrow pass (reading only)", reading), ("blase", ours), ("Evidently", theirs)):
                if r is None:
                    continue
                print(f"| {r['rows']:,} | {tool} | {r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} |"
                      f" {mib(r['peak_anon'] - r['baseline'])} | {mib(r['baseline'])} |"
                      f" {(r['peak_anon'] - r['baseline']) / budget:.2f} | {', '.join(r['drifted']) or '-'} |")
            if ours and theirs:
                print(f"|  | **Evidently / blase** | **{theirs['seconds'] / ours['seconds']:.1f}x** | | "
                      f"**{(theirs['peak_anon'] - theirs['baseline']) / max(ours['peak_anon'] - ours['baseline'], 2**20):.1f}x**"
                      " | | | |")
            if ours and reading:
                print(f"|  | **blase / pyarrow pass** | **{ours['seconds'] / reading['seconds']:.1f}x** | | | | | |")
            sys.stdout.flush()
        print(f"\nblase's drift report against reading the same columns with pyarrow (target <= 3x), and its peak"
              f" above the import floor against the budget ({args.budget_mib} MiB):\n")
        for rows, ours, reading, theirs in summary:
            if ours is None:
                continue
            ratio = (f"{ours['seconds'] / reading['seconds']:.1f}x the pyarrow pass ({reading['seconds']:.2f} s);"
                     f" CPU {ours['cpu']:.2f} s against {reading['cpu']:.2f} s ({ours['cpu'] / reading['cpu']:.1f}x)") \
                if reading else "no pyarrow pass"
            peer = f"; Evidently {theirs['seconds']:.1f} s" if theirs else "; Evidently not run"
            used = ours["peak_anon"] - ours["baseline"]
            print(f"  {rows:,} rows: blase {ours['seconds']:.2f} s, {ratio}{peer}; peak {mib(used)} MiB above the"
                  f" floor for a {args.budget_mib} MiB budget ({used / budget:.2f}x, {'PASS' if used <= budget else 'FAIL'})")

    if args.executor and not args.skip_scale:
        rows = args.rows
        print(f"\n## drift report on {args.workers} {args.executor} workers vs one process, {rows:,} rows,"
              f" {args.budget_mib} MiB per process\n")
        print("| where | seconds | rows/s | speed-up | flagged |")
        print("| --- | ---: | ---: | ---: | --- |")
        one = child(sys.executable, BLASE_SCALE, [str(folder), str(ref_path), str(budget)], work, "blase-one")
        spread = child(sys.executable, BLASE_SCALE, [str(folder), str(ref_path), str(budget * args.workers),
                                                     f"{args.executor}:{args.workers}"], work, "blase-spread")
        for where, r in (("one process", one), (f"{args.workers} {args.executor} workers", spread)):
            if r is not None:
                print(f"| {where} | {r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} |"
                      f" {one['seconds'] / r['seconds'] if one else float('nan'):.2f}x | {', '.join(r['drifted'])} |")

    if not args.skip_trials:
        sizes = ",".join(str(s) for s in SIZES)
        print(f"\n## false alarms: {args.trials} no-change trials per size, {FEATURES} features, alpha = {ALPHA}\n")
        ours = child(sys.executable, BLASE_TRIALS, [sizes, str(args.trials)], work, "blase-trials")
        theirs = child(args.peer_python, PEER_TRIALS, [sizes, str(args.trials)], work, "evidently-trials")
        print("| live rows | blase: any feature flagged | Evidently defaults: any feature flagged |"
              " Evidently: dataset drift (>= half) | target for blase | verdict |")
        print("| ---: | ---: | ---: | ---: | --- | --- |")
        for n in SIZES:
            b = ours[str(n)] if ours else None
            e = theirs[str(n)] if theirs else None
            ok = b is not None and 0.5 * ALPHA <= b["rate"] <= 1.5 * ALPHA
            print(f"| {n:,} | {b['rate']:.3f} |" if b else f"| {n:,} | - |", end="")
            print(f" {e['rate']:.3f} | {e['dataset_rate']:.3f} |" if e else " - | - |", end="")
            print(f" [{0.5 * ALPHA:.3f}, {1.5 * ALPHA:.3f}] | {'PASS' if ok else 'FAIL'} |")


if __name__ == "__main__":
    main()
