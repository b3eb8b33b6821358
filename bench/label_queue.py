"""Queueing a label round over a large pool: blase's streaming queue against the seed's pandas approach.

    python bench/label_queue.py [--records 1000000] [--n 100] [--budget-mib 256] [--strategy least_confidence]

Builds an alert-like Parquet pool (10 files; key ``candid``, ``objectId``, 12 float features and a 20-point
light curve per record), labels 2,000 random records and trains a HistGradientBoostingClassifier on them with a
real ``blase step train`` (``training_set`` + ``Train`` + ``record_training_ids``), then, each in a fresh
process:

- blase: ``build_queue(project, strategy, n)``: streams the pool in budget-sized batches (key, objectId and the
  features only), drops labelled and trained-on keys, scores, keeps the top N;
- peer (the seed's notebook): ``pd.read_parquet`` of the key, objectId and feature columns of the whole pool,
  drop the keys in ``labels.csv`` and ``training_ids.csv``, ``predict_proba`` on all of it, sort by the
  uncertainty, take the top N. (The seed reads every column; reading only these makes the peer faster and
  smaller, so the comparison favours it.)

Peak memory is each process's peak resident set (``VmHWM``, read by the process itself at its end), imports
included; a process that only imports the same libraries is shown for reference. Target: blase's peak < 512 MiB at 1,000,000 records.
Both sides must pick the same N records (the script checks).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FEATURES = [f"f{i}" for i in range(12)]

TOML = """
[project]
name = "bench"
memory_budget = "{budget}MiB"

[labelling]
pool = "data/pool"
key = "candid"
secondary = "objectId"
fields = ["objectId"]
features = {features}

[labelling.keys]
r = "real"
b = "bogus"

[labelling.targets]
real = 1
bogus = 0
"""

MAIN = '''
from sklearn.ensemble import HistGradientBoostingClassifier

from blase_tui import Load, Train, step
from blase_tui.labelling import record_training_ids, training_set


@step
def train(ctx):
    data = training_set(ctx.project)
    Load().save_to_filesystem(data.batch(), "data/al/train")
    trainer = Train(seed=42)
    trainer.set_model(HistGradientBoostingClassifier(max_iter=100, l2_regularization=10, learning_rate=0.1),
                      framework="sklearn")
    trainer.train(epochs=1, data_dir="data/al")
    trainer.save_model("models/vra.pkl", name="vra")
    record_training_ids(ctx, data.keys, data.rounds)
'''

PEAK = '''
def peak_mib():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024
'''

BLASE = PEAK + '''
import json, sys, time
from pathlib import Path
start = time.perf_counter()
from blase_tui.core.project import Project
from blase_tui.labelling import build_queue
import pyarrow.compute, pyarrow.dataset, pyarrow.parquet, sklearn.ensemble  # noqa: E401,F401 - as the peer
imported = time.perf_counter()
queue = build_queue(Project.at(Path(sys.argv[1])), strategy=sys.argv[2], n=int(sys.argv[3]))
done = time.perf_counter()
print(json.dumps({"seconds": done - imported, "imports": imported - start, "keys": [i.key for i in queue.items],
                  "scanned": queue.scanned, "excluded": queue.excluded, "model": queue.model.ref if queue.model else None, "peak": peak_mib()}))
'''

PEER = PEAK + '''
import json, pickle, sys, time
start = time.perf_counter()
import numpy as np
import pandas as pd
import pyarrow.compute, pyarrow.dataset, pyarrow.parquet  # noqa: E401,F401 - read_parquet's
import sklearn.ensemble  # noqa: F401 - what unpickling the model imports
imported = time.perf_counter()
pool, labels_csv, ids_csv, model_path, n = sys.argv[1:6]
features = json.loads(sys.argv[6])
df = pd.read_parquet(pool, columns=["candid", "objectId", *features])
seen = set(pd.read_csv(labels_csv)["candid"].astype(str)) | set(pd.read_csv(ids_csv)["candid"].astype(str))
df = df[~df["candid"].astype(str).isin(seen)]
with open(model_path, "rb") as fh:
    clf = pickle.load(fh)
proba = clf.predict_proba(df[features].to_numpy(dtype=np.float32))
df = df.assign(uncertainty=1 - proba.max(axis=1))
top = df.sort_values("uncertainty", ascending=False, kind="stable").head(int(n))
done = time.perf_counter()
print(json.dumps({"seconds": done - imported, "imports": imported - start, "keys": [str(k) for k in top["candid"]],
                  "peak": peak_mib()}))
'''

BASELINE = PEAK + '''
import json
import numpy, pandas, pyarrow, pyarrow.parquet, sklearn.ensemble  # noqa: F401
from blase_tui.labelling import build_queue  # noqa: F401
print(json.dumps({"peak": peak_mib()}))
'''


def build_pool(folder: Path, records: int, files: int = 10) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    per = records // files
    for f in range(files):
        candid = np.arange(f * per, (f + 1) * per, dtype=np.int64) + 2_000_000_000
        x = rng.normal(0, 1, (per, len(FEATURES)))
        curve = pa.FixedSizeListArray.from_arrays(pa.array(rng.normal(19, 1, per * 20)), 20)
        table = pa.table({"candid": candid, "objectId": pa.array([f"ZTF{c % 10**9:09d}" for c in candid]),
                          **{name: x[:, i] for i, name in enumerate(FEATURES)}, "magpsf": curve,
                          "truth": (x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.5, per)) > 0})
        pq.write_table(table, folder / f"20250101_{f:02d}0000_alerts.parquet", row_group_size=50_000)


def run_child(code: str, *args: str, env: dict[str, str]) -> tuple[dict, float, float]:
    """(its JSON output, wall seconds, its peak resident set in MiB, as it reports it)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, env=env, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{proc.stderr}")
    out = json.loads(proc.stdout)
    return out, time.perf_counter() - start, out["peak"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--n", type=int, default=100, help="records to queue (100)")
    parser.add_argument("--labels", type=int, default=2000, help="labelled records the model is trained on (2000)")
    parser.add_argument("--budget-mib", type=int, default=256, help="the project's memory budget (256)")
    parser.add_argument("--strategy", default="least_confidence")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side; the fastest is shown (3)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the project and pool here between runs")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="blase-labelq-"))
    root = work / "project"
    env = {**os.environ, "BLASE_HOME": str(work / "home"),
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    import numpy as np

    from blase_tui.core.project import Project
    from blase_tui.store import labels as label_store

    if not (root / "models").exists():
        t0 = time.perf_counter()
        root.mkdir(parents=True, exist_ok=True)
        (root / "blase.toml").write_text(TOML.format(budget=args.budget_mib, features=json.dumps(FEATURES)))
        (root / "main.py").write_text(MAIN)
        build_pool(root / "data" / "pool", args.records)
        import pyarrow.dataset as ds

        truth = ds.dataset(root / "data" / "pool").to_table(columns=["candid", "truth"])
        pick = np.random.default_rng(1).choice(truth.num_rows, args.labels, replace=False)
        project = Project.at(root)
        for i in pick.tolist():
            real = bool(truth.column("truth")[i].as_py())
            label_store.add_label(project.store, str(truth.column("candid")[i].as_py()), "real" if real else "bogus",
                                  1 if real else 0)
        proc = subprocess.run([sys.executable, "-m", "blase_tui", "step", "train"], cwd=root, env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"blase step train failed:\n{proc.stderr}")
        print(f"pool and model built in {work} ({time.perf_counter() - t0:.0f} s)", flush=True)
    project = Project.at(root)
    from blase_tui.store import models

    model = models.get(project.store, "vra")
    label_store.export_csv(project.store, work / "labels.csv", key_name="candid", secondary_name="objectId")
    ids_hash = project.store.db.query("SELECT hash FROM artifacts WHERE name = 'training_ids.csv'")[0]["hash"]
    (work / "training_ids.csv").write_bytes(project.store.cas.read_bytes(ids_hash))
    pool = root / "data" / "pool"
    disk = sum(f.stat().st_size for f in pool.glob("*.parquet"))

    for path in pool.glob("*.parquet"):  # same warm page cache for both sides
        path.read_bytes()
    _, _, base_peak = run_child(BASELINE, env=env)
    ours = theirs = None
    for _ in range(args.repeat):
        b = run_child(BLASE, str(root), args.strategy, str(args.n), env=env)
        p = run_child(PEER, str(pool), str(work / "labels.csv"), str(work / "training_ids.csv"), model.path,
                      str(args.n), json.dumps(FEATURES), env=env)
        ours = b if ours is None or b[0]["seconds"] < ours[0]["seconds"] else ours
        theirs = p if theirs is None or p[0]["seconds"] < theirs[0]["seconds"] else theirs
    assert ours is not None and theirs is not None
    (bo, bwall, bpeak), (po, pwall, ppeak) = ours, theirs
    same = len(set(bo["keys"]) & set(po["keys"]))
    agreement = f"{same}/{args.n}" if args.strategy == "least_confidence" else "n/a (the peer ranks by least confidence)"
    print(f"\npool {args.records:,} records in 10 Parquet files ({disk / 2**20:.0f} MiB on disk), {args.labels:,} labelled,"
          f" model {bo['model']}, strategy {args.strategy}, N={args.n}, budget {args.budget_mib} MiB;"
          f" python {platform.python_version()}, {os.cpu_count()} CPUs; fastest of {args.repeat}")
    print(f"{'side':<28}{'queue s':>9}{'process s':>11}{'peak RSS MiB':>14}")
    print(f"{'blase build_queue':<28}{bo['seconds']:>9.2f}{bwall:>11.2f}{bpeak:>14.0f}")
    print(f"{'pandas read+predict+sort':<28}{po['seconds']:>9.2f}{pwall:>11.2f}{ppeak:>14.0f}")
    print(f"{'imports only (reference)':<28}{'':>9}{'':>11}{base_peak:>14.0f}")
    print(f"\npandas/blase: time {po['seconds'] / bo['seconds']:.2f}x, peak memory {ppeak / bpeak:.2f}x;"
          f" same top {args.n}: {agreement}; scanned {bo['scanned']:,}, excluded {bo['excluded']:,}")
    print(f"target: blase peak < 512 MiB: {'PASS' if bpeak < 512 else 'MISS'} ({bpeak:.0f} MiB)")


if __name__ == "__main__":
    main()
