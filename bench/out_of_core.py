"""Out-of-core throughput and memory: blase's Extract -> Transform -> Load against a hand-written
pyarrow/numpy loop doing the same work on the same files, in the same run.

    python bench/out_of_core.py [--scale 1.0] [--budget-mib 256] [--workdir DIR]
    python bench/out_of_core.py --executor dask --workers 2 [--budget-mib 256]   # blase-dask vs one process

It builds a Parquet dataset of float rows and a folder of PNG images, each at least 8x the memory budget
(decoded), then runs both pipelines in fresh processes:
- Parquet: read all columns in batches, y = 2x + 1 on every column, write Parquet shards;
- images: decode every PNG, invert it (255 - x), write .npy shards.
The blase side runs as a real `blase step` (tracking, events and dataset hashes included). Each process samples
its own RssAnon (anonymous memory: file pages of memory-mapped data do not count) every 5 ms; the figure is the
peak above the process's baseline after imports. Targets: blase >= 0.8x the hand-written throughput; peak
anonymous memory above baseline <= 1.25x the budget.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLER = '''
import threading, time
def rss_anon():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0
class Peak:
    def __init__(self):
        self.baseline = rss_anon(); self.peak = self.baseline; self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True); self._t.start()
    def _run(self):
        while not self._stop:
            self.peak = max(self.peak, rss_anon()); time.sleep(0.005)
    def stop(self):
        self._stop = True; self._t.join(); self.peak = max(self.peak, rss_anon())
        return self.peak - self.baseline
'''

BLASE_MAIN = SAMPLER + '''
import json, time
from pathlib import Path
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from blase_tui import Extract, Load, Transform, step
from blase_tui.modules.load import read_manifest

def affine(batch):
    table = batch.data
    return pa.table({name: pc.add(pc.multiply(table.column(name), 2.0), 1.0) for name in table.column_names})

def invert(batch):
    return {"image": 255 - batch["image"], "label": batch["label"]}

@step
def parquet(ctx, src: str = "", dst: str = "", out: str = ""):
    extractor, transformer, loader = Extract(), Transform(), Load()
    peak = Peak(); start = time.perf_counter()
    for batch in extractor.load_parquet(src):  # the loop never looks at a batch: under an executor, workers read them
        loader.save_to_filesystem(transformer.apply_function(batch, affine), directory=dst)
    seconds = time.perf_counter() - start
    import pyarrow.parquet as pq
    rows = read_manifest(dst)["records"]
    nbytes = rows * 8 * len(pq.ParquetDataset(src).schema.names)
    Path(out).write_text(json.dumps({"seconds": seconds, "records": rows, "bytes": nbytes, "peak_anon": peak.stop()}))

@step
def images(ctx, src: str = "", dst: str = "", out: str = ""):
    extractor, transformer, loader = Extract(), Transform(), Load()
    peak = Peak(); start = time.perf_counter()
    for batch in extractor.load_images(src):
        loader.save_to_filesystem(transformer.apply_function(batch, invert), directory=dst)
    seconds = time.perf_counter() - start
    n = read_manifest(dst)["records"]
    nbytes = n * int(np.prod(np.load(sorted(Path(dst).glob("part-*.image.npy"))[0], mmap_mode="r").shape[1:]))
    Path(out).write_text(json.dumps({"seconds": seconds, "records": n, "bytes": nbytes, "peak_anon": peak.stop()}))
'''

HAND = SAMPLER + '''
import io, json, sys, time
from pathlib import Path
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from PIL import Image

kind, src, dst, out, batch_bytes = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], int(sys.argv[5])
dst.mkdir(parents=True, exist_ok=True)
peak = Peak(); start = time.perf_counter(); n = 0; nbytes = 0
if kind == "parquet":
    dataset = ds.dataset(src, format="parquet")
    row_bytes = 8 * len(dataset.schema.names)
    for i, rb in enumerate(dataset.to_batches(batch_size=max(1, batch_bytes // row_bytes), batch_readahead=1,
                                               fragment_readahead=1)):
        table = pa.Table.from_batches([rb])
        n += table.num_rows; nbytes += table.nbytes
        result = pa.table({c: pc.add(pc.multiply(table.column(c), 2.0), 1.0) for c in table.column_names})
        pq.write_table(result, dst / f"part-{i:05d}.parquet")
else:
    files = sorted(src.rglob("*.png"))
    arrays, labels, shard = [], [], 0
    per_batch = None
    for f in files:
        with Image.open(io.BytesIO(f.read_bytes())) as img:
            a = np.asarray(img)
        per_batch = per_batch or max(1, batch_bytes // a.nbytes)
        arrays.append(a); labels.append(f.parent.name)
        if len(arrays) >= per_batch:
            x = 255 - np.stack(arrays); n += len(x); nbytes += x.nbytes
            np.save(dst / f"part-{shard:05d}.image.npy", x); np.save(dst / f"part-{shard:05d}.label.npy", np.array(labels))
            arrays, labels, shard = [], [], shard + 1
    if arrays:
        x = 255 - np.stack(arrays); n += len(x); nbytes += x.nbytes
        np.save(dst / f"part-{shard:05d}.image.npy", x); np.save(dst / f"part-{shard:05d}.label.npy", np.array(labels))
seconds = time.perf_counter() - start
Path(out).write_text(json.dumps({"seconds": seconds, "records": n, "bytes": nbytes, "peak_anon": peak.stop()}))
'''


def build_data(root: Path, budget: int, scale: float) -> tuple[Path, Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    rng = np.random.default_rng(0)
    parquet_dir, image_dir = root / "parquet", root / "images"
    target = int(8.5 * budget * scale)
    if not parquet_dir.exists():
        parquet_dir.mkdir(parents=True)
        columns, rows_per_file = 32, 250_000  # 64 MB of float64 per file
        written, i = 0, 0
        while written < target:
            table = pa.table({f"f{c}": rng.standard_normal(rows_per_file) for c in range(columns)})
            pq.write_table(table, parquet_dir / f"data-{i:03d}.parquet", row_group_size=50_000, compression="none")
            written += table.nbytes
            i += 1
    if not image_dir.exists():
        side = 256
        per_image = side * side * 3
        count = int(target / per_image) + 1
        base = rng.integers(0, 255, (side, side, 3), dtype=np.uint8)
        for i in range(count):
            folder = image_dir / str(i % 10)
            folder.mkdir(parents=True, exist_ok=True)
            image = np.roll(base, i, axis=1)  # distinct images, cheap to make
            Image.fromarray(image).save(folder / f"img_{i:06d}.png", compress_level=1)
    return parquet_dir, image_dir


def run_blase(kind: str, src: Path, dst: Path, budget: int, work: Path, *, executor: str | None = None,
              workers: int = 1) -> dict:
    """One `blase step`; with ``executor``, on ``workers`` workers each with ``budget`` (the step's budget is
    budget x workers), and the peak anonymous memory of each worker process sampled from here."""
    project = work / ("blase_project" if executor is None else f"blase_project_{executor}")
    project.mkdir(exist_ok=True)
    (project / "blase.toml").write_text(f'[project]\nname = "bench"\nmemory_budget = {budget * workers}\n')
    (project / "main.py").write_text(BLASE_MAIN)
    out = work / f"blase-{kind}-{executor or 'local'}.json"
    env = {**os.environ, "BLASE_HOME": str(work / "home")}
    command = [sys.executable, "-m", "blase_tui", "step", kind, "--force", "--set", f"src={src}", "--set", f"dst={dst}",
               "--set", f"out={out}"]
    if executor:
        command += ["--executor", executor, "--workers", str(workers)]
    proc = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers_peak = _sample_workers(proc) if executor else {}
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"blase step {kind} failed:\n{stderr}")
    result = json.loads(out.read_text())
    if workers_peak:
        # each worker process's whole peak anonymous memory: its imports (the floor) included
        result["worker_peaks"] = list(workers_peak.values())
    return result


def _rss_anon(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _sample_workers(proc: subprocess.Popen) -> dict[int, int]:
    """Every 20 ms until ``proc`` ends: the Dask worker processes under it (spawned by multiprocessing) and each
    one's highest anonymous memory."""
    import psutil

    seen: dict[int, int] = {}
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            children = parent.children(recursive=True)
        except psutil.Error:
            break
        for child in children:
            try:  # a worker: a process multiprocessing spawned (not its resource tracker)
                if "spawn_main" not in " ".join(child.cmdline()):
                    continue
            except psutil.Error:
                continue
            anon = _rss_anon(child.pid)
            if anon is None:
                continue
            seen[child.pid] = max(seen.get(child.pid, 0), anon)
        time.sleep(0.02)
    return seen


def run_hand(kind: str, src: Path, dst: Path, budget: int, work: Path) -> dict:
    script = work / "hand.py"
    script.write_text(HAND)
    out = work / f"hand-{kind}.json"
    # the same batch size blase picks: a quarter of the budget
    subprocess.run([sys.executable, str(script), kind, str(src), str(dst), str(out), str(budget // 4)], check=True)
    return json.loads(out.read_text())


def drop_caches_hint(paths: list[Path]) -> None:
    # Read everything once so both sides start from the same warm page cache.
    for root in paths:
        for f in root.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    while fh.read(1 << 24):
                        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="dataset size as a multiple of 8.5x the budget")
    parser.add_argument("--budget-mib", type=int, default=256)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated data here between runs")
    parser.add_argument("--only", choices=("parquet", "images"), default=None, help="run one pipeline")
    parser.add_argument("--executor", default=None,
                        help="also run blase on this executor (dask): its throughput against blase in one process")
    parser.add_argument("--workers", type=int, default=2, help="the executor's workers, each with --budget-mib")
    args = parser.parse_args()
    if args.executor:
        return main_executor(args)
    budget = args.budget_mib * 1024**2
    work = args.workdir or Path(tempfile.mkdtemp(prefix="blase-ooc-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    parquet_dir, image_dir = build_data(work / "data", budget, args.scale)
    print(f"data in {work / 'data'} (built in {time.perf_counter() - t0:.0f} s)")
    drop_caches_hint([parquet_dir, image_dir])
    rows = []
    for kind, src in (("parquet", parquet_dir), ("images", image_dir)):
        if args.only and kind != args.only:
            continue
        results = {}
        for side, runner in (("hand", run_hand), ("blase", run_blase)):
            dst = work / "out" / f"{side}-{kind}"
            shutil.rmtree(dst, ignore_errors=True)
            results[side] = runner(kind, src, dst, budget, work)
            shutil.rmtree(dst, ignore_errors=True)
        rows.append((kind, results))

    mib = 1024**2
    print(f"\nbudget {args.budget_mib} MiB, {os.cpu_count()} cores, python {sys.version.split()[0]}")
    print(f"{'pipeline':<10}{'side':<7}{'records':>10}{'data MiB':>10}{'seconds':>9}{'MiB/s':>9}"
          f"{'peak anon MiB':>15}{'x budget':>10}")
    verdicts = []
    for kind, results in rows:
        for side in ("hand", "blase"):
            r = results[side]
            print(f"{kind:<10}{side:<7}{r['records']:>10}{r['bytes'] / mib:>10.0f}{r['seconds']:>9.2f}"
                  f"{r['bytes'] / mib / r['seconds']:>9.1f}{r['peak_anon'] / mib:>15.1f}{r['peak_anon'] / budget:>10.2f}")
        ratio = results["hand"]["seconds"] / results["blase"]["seconds"]
        mem = results["blase"]["peak_anon"] / budget
        verdicts.append((kind, ratio, mem))
    print()
    for kind, ratio, mem in verdicts:
        print(f"{kind}: blase throughput = {ratio:.2f}x hand-written (target >= 0.80: {'PASS' if ratio >= 0.8 else 'MISS'});"
              f" blase peak anon = {mem:.2f}x budget (target <= 1.25: {'PASS' if mem <= 1.25 else 'MISS'})")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


def main_executor(args: argparse.Namespace) -> None:
    """blase in one process with the budget, against blase on ``--workers`` workers each with that budget."""
    budget = args.budget_mib * 1024**2
    work = args.workdir or Path(tempfile.mkdtemp(prefix="blase-ooc-"))
    work.mkdir(parents=True, exist_ok=True)
    parquet_dir, image_dir = build_data(work / "data", budget, args.scale)
    drop_caches_hint([parquet_dir, image_dir])
    mib = 1024**2
    print(f"\nper-worker budget {args.budget_mib} MiB, {os.cpu_count()} cores, python {sys.version.split()[0]}")
    print(f"{'pipeline':<10}{'side':<16}{'records':>10}{'data MiB':>10}{'seconds':>9}{'MiB/s':>9}"
          f"{'peak anon MiB per process':>27}")
    verdicts = []
    for kind, src in (("parquet", parquet_dir), ("images", image_dir)):
        if args.only and kind != args.only:
            continue
        results = {}
        for side, executor, workers in (("local", None, 1), (args.executor, args.executor, args.workers)):
            dst = work / "out" / f"{side}-{kind}"
            shutil.rmtree(dst, ignore_errors=True)
            results[side] = run_blase(kind, src, dst, budget, work, executor=executor, workers=workers)
            shutil.rmtree(dst, ignore_errors=True)
        for side, r in results.items():
            label = "in one process" if side == "local" else f"{side} x{args.workers}"
            peaks = r.get("worker_peaks") or [r["peak_anon"]]
            print(f"{kind:<10}{label:<16}{r['records']:>10}{r['bytes'] / mib:>10.0f}{r['seconds']:>9.2f}"
                  f"{r['bytes'] / mib / r['seconds']:>9.1f}{', '.join(f'{p / mib:.0f}' for p in peaks):>27}")
        spread = results[args.executor]
        ratio = results["local"]["seconds"] / spread["seconds"]
        worst = max(spread.get("worker_peaks") or [0]) / budget
        verdicts.append((kind, ratio, worst))
    print()
    for kind, ratio, worst in verdicts:
        print(f"{kind}: {args.executor} with {args.workers} workers = {ratio:.2f}x blase in one process (target >= 1.6:"
              f" {'PASS' if ratio >= 1.6 else 'MISS'}); worst worker's whole peak anon, imports included ="
              f" {worst:.2f}x its budget (target <= 1.25 plus the imports: {'PASS' if worst <= 1.25 else 'MISS'})")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
