"""Tracking speed: blase against MLflow 3.x on its SQLite backend, measured in the same process and run.

    python bench/tracking.py                 # 10,000 runs in each store (~15-30 s on 2 cores)
    python bench/tracking.py --runs 2000     # quicker

Measures, for each tool, side by side with the ratio:

1. ``log_metric`` per call inside an open run. blase: ``log_metric`` x N and then ``end_run()`` (which flushes
   the buffered metrics and closes the run), divided by N. MLflow: ``mlflow.log_metric`` in an active run.
2. Creating a run with two params: ``start_run`` + ``log_params({2 params})`` + ``end_run``.
3. Finding the newest succeeded run of step ``train`` with ``window_size = 64`` among ``--runs`` runs.
4. Listing the newest 100 of ``--runs`` runs.

Targets: log_metric >= 50x faster than MLflow, run creation >= 10x faster, find <= 10 ms and list <= 20 ms at
10,000 runs.

The two 10,000-run stores are filled the same way: one template run is written through each tool's own API
(blase: ``RunStore`` calls in the order the step engine makes them; MLflow: ``MlflowClient.create_run`` +
``log_batch`` + ``set_terminated``), then its index rows are cloned by SQL with new ids, times and values. The
script checks that the clones read back through each tool's API as the template does and that both tools find
the run a brute-force scan says they should. ``--fill api`` writes every run through the APIs instead (slow
for MLflow: about 20-90 ms a run on a 2-core machine).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

STEPS = ("train", "etl")
WINDOWS = (16, 32, 64, 128)
RARE_WINDOW = 256  # held only by the oldest run: the worst case for "find the newest match"
METRIC_KEYS = ("loss", "accuracy")
METRIC_ITERATIONS = 5
GAP = 0.01  # seconds between the start times of consecutive fixture runs (distinct millisecond run ids)


def spec(i: int) -> tuple[str, int]:
    """Step name and window_size of fixture run ``i`` (0 = oldest)."""
    return STEPS[i % 2], (RARE_WINDOW if i == 0 else WINDOWS[(i // 2) % len(WINDOWS)])


def expected_newest(n: int, step: str, window: int) -> int | None:
    return next((i for i in range(n - 1, -1, -1) if spec(i) == (step, window)), None)


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up: SQLite page cache, SQLAlchemy compiled statements
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def quiet() -> None:
    warnings.filterwarnings("ignore")
    for name in ("mlflow", "alembic", "sqlalchemy", "git"):
        logging.getLogger(name).setLevel(logging.ERROR)


# ---------------------------------------------------------------------------------------------------- blase
def new_project(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "blase.toml").write_text('[project]\nname = "bench"\n')
    return root


def blase_api_run(store: Any, i: int, started: float) -> str:
    """One run the way `blase step NAME` writes it (minus the step's own files): run, step execution with its
    signature and params, metrics, finish, close."""
    from blase_tui.core.signature import Signature
    from blase_tui.store import procs
    from blase_tui.store.hashing import hash_json

    step, window = spec(i)
    pid = os.getpid()
    run_id = store.create_run(owner_pid=pid, owner_started=procs.process_started(), started=started)
    step_run_id, _ = store.begin_step(run_id, step, pid=pid, pid_started=procs.process_started())
    sig = Signature(step=step, func_hash=hash_json(step), code_hash=hash_json("code"),
                    params_hash=hash_json({"window_size": window}), env_hash=hash_json("env"))
    store.set_step_signature(step_run_id, sig, sig.digest, None)
    store.log_params(run_id, {"window_size": window}, step_run_id)
    store.log_metrics([
        (run_id, step_run_id, key, 1.0 / (it + 1) + k, it, started + 0.001 * it)
        for it in range(METRIC_ITERATIONS) for k, key in enumerate(METRIC_KEYS)
    ])
    store.finish_step(step_run_id, "succeeded", exit_code=0)
    store.close_run(run_id, None)
    return run_id


def fill_blase(store: Any, n: int, base: float, how: str) -> list[str]:
    """``n`` runs, oldest first; returns their ids (index = fixture number)."""
    if how == "api":
        return [blase_api_run(store, i, base + i * GAP) for i in range(n)]
    from blase_tui.core.signature import Signature
    from blase_tui.store.hashing import hash_json
    from blase_tui.store.ids import new_run_id
    from blase_tui.store.runstore import to_json_value

    # The template is the newest run, written through the API; the others are its rows, cloned.
    template = blase_api_run(store, n - 1, base + (n - 1) * GAP)
    db = store.db
    run = dict(db.query("SELECT * FROM runs WHERE id = ?", (template,))[0])
    srun = dict(db.query("SELECT * FROM step_runs WHERE run_id = ?", (template,))[0])
    metrics = [dict(r) for r in db.query("SELECT * FROM metrics WHERE run_id = ? ORDER BY rowid", (template,))]
    for table in ("tags", "artifacts", "datasets"):
        if db.query(f"SELECT 1 FROM {table} WHERE run_id = ?", (template,)):
            raise RuntimeError(f"template run unexpectedly has {table}; extend the cloning")
    run_len, step_len = run["ended"] - run["started"], srun["ended"] - srun["started"]
    ids, runs, sruns, params, mrows = [], [], [], [], []
    next_step_id = srun["id"] + 1
    for i in range(n - 1):
        started = base + i * GAP
        run_id = new_run_id(started)
        step, window = spec(i)
        ids.append(run_id)
        runs.append({**run, "id": run_id, "started": started, "ended": started + run_len})
        sig = Signature(step=step, func_hash=hash_json(step), code_hash=hash_json("code"),
                        params_hash=hash_json({"window_size": window}), env_hash=hash_json("env"))
        sruns.append({**srun, "id": next_step_id, "run_id": run_id, "step": step, "folder": step,
                      "started": started, "ended": started + step_len, "signature": sig.digest,
                      "func_hash": sig.func_hash, "params_hash": sig.params_hash})
        params.append((run_id, "window_size", next_step_id, to_json_value(window)))
        for m in metrics:
            mrows.append({**m, "run_id": run_id, "step_run_id": next_step_id, "ts": started + (m["ts"] - run["started"]),
                          "value": m["value"] + i * 1e-6})
        next_step_id += 1

    def insert(conn: sqlite3.Connection, table: str, rows: list[dict[str, Any]]) -> None:
        cols = list(rows[0])
        conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                         [tuple(r[c] for c in cols) for r in rows])

    if n > 1:
        with db.write() as conn:
            insert(conn, "runs", runs)
            insert(conn, "step_runs", sruns)
            conn.executemany("INSERT INTO params (run_id, key, step_run_id, value) VALUES (?, ?, ?, ?)", params)
            insert(conn, "metrics", mrows)
    return [*ids, template]


def check_blase(store: Any, ids: list[str]) -> None:
    from blase_tui.store.query import find_runs, list_runs

    n = len(ids)
    for i in sorted({0, n // 2, max(n - 2, 0), n - 1}):
        d = store.describe_run(ids[i])
        step, window = spec(i)
        ok = (d.run.status == "succeeded" and [s.step for s in d.steps] == [step]
              and d.steps[0].status == "succeeded" and d.steps[0].params == {"window_size": window}
              and set(d.steps[0].metrics) == set(METRIC_KEYS))
        if not ok:
            raise RuntimeError(f"blase fixture run {i} does not read back as written: {d}")
    for step, window in (("train", 64), ("etl", 32), ("train", RARE_WINDOW), ("etl", RARE_WINDOW)):
        want = expected_newest(n, step, window)
        got = find_runs(store, step=step, params={"window_size": str(window)}, limit=1)
        if got != ([ids[want]] if want is not None else []):
            raise RuntimeError(f"blase find_runs({step}, {window}) gave {got}, expected run {want}")
    listed = [r["id"] for r in list_runs(store, limit=100)]
    if listed != ids[::-1][:100]:
        raise RuntimeError("blase list_runs does not give the newest 100 runs")


# --------------------------------------------------------------------------------------------------- mlflow
def mlflow_client(db_dir: Path) -> Any:
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{db_dir / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment("bench", artifact_location=(db_dir / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=exp_id)
    return client, exp_id


def mlflow_api_run(client: Any, exp_id: str, i: int, start_ms: int) -> str:
    from mlflow.entities import Metric, Param

    step, window = spec(i)
    run = client.create_run(exp_id, start_time=start_ms, run_name=step)
    run_id = run.info.run_id
    client.log_batch(run_id, params=[Param("window_size", str(window))], metrics=[
        Metric(key, 1.0 / (it + 1) + k, start_ms + it, it)
        for it in range(METRIC_ITERATIONS) for k, key in enumerate(METRIC_KEYS)
    ])
    client.set_terminated(run_id, "FINISHED", end_time=start_ms + 10)
    return run_id


def fill_mlflow(client: Any, exp_id: str, db_dir: Path, n: int, base: float, how: str) -> list[str]:
    def start_ms(i: int) -> int:
        return int((base + i * GAP) * 1000)

    if how == "api":
        return [mlflow_api_run(client, exp_id, i, start_ms(i)) for i in range(n)]
    template = mlflow_api_run(client, exp_id, n - 1, start_ms(n - 1))
    conn = sqlite3.connect(db_dir / "mlflow.db")
    conn.row_factory = sqlite3.Row
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    handled = ("runs", "tags", "params", "metrics", "latest_metrics")
    rows: dict[str, list[dict[str, Any]]] = {}
    for table in tables:
        cols = [c[1] for c in conn.execute(f"PRAGMA table_info({table})")]
        if "run_uuid" not in cols:
            continue
        found = [dict(r) for r in conn.execute(f"SELECT * FROM {table} WHERE run_uuid = ?", (template,))]
        if table in handled:
            rows[table] = found
        elif found:
            raise RuntimeError(f"template run unexpectedly has rows in {table}; extend the cloning")
    run = rows["runs"][0]
    t0 = run["start_time"]
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in handled}
    ids = []
    for i in range(n - 1):
        run_id, step, window = uuid.uuid4().hex, *spec(i)
        ids.append(run_id)
        shift = start_ms(i) - t0
        out["runs"].append({**run, "run_uuid": run_id, "name": step, "start_time": run["start_time"] + shift,
                            "end_time": run["end_time"] + shift,
                            "artifact_uri": run["artifact_uri"].replace(template, run_id)})
        for tag in rows["tags"]:
            value = step if tag["key"] == "mlflow.runName" else tag["value"]
            out["tags"].append({**tag, "run_uuid": run_id, "value": value})
        for p in rows["params"]:
            out["params"].append({**p, "run_uuid": run_id, "value": str(window) if p["key"] == "window_size" else p["value"]})
        for table in ("metrics", "latest_metrics"):
            for m in rows[table]:
                out[table].append({**m, "run_uuid": run_id, "timestamp": m["timestamp"] + shift,
                                   "value": m["value"] + i * 1e-6})
    if n > 1:
        with conn:
            for table, new in out.items():
                cols = list(new[0])
                conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                 [tuple(r[c] for c in cols) for r in new])
    conn.close()
    return [*ids, template]


def mlflow_find(client: Any, exp_id: str, step: str, window: int) -> list[str]:
    runs = client.search_runs(
        [exp_id],
        filter_string=f"attributes.run_name = '{step}' and params.window_size = '{window}'"
                      " and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=1,
    )
    return [r.info.run_id for r in runs]


def mlflow_list(client: Any, exp_id: str) -> list[str]:
    runs = client.search_runs([exp_id], order_by=["attributes.start_time DESC"], max_results=100)
    return [r.info.run_id for r in runs]


def check_mlflow(client: Any, exp_id: str, ids: list[str]) -> None:
    n = len(ids)
    for i in sorted({0, n // 2, max(n - 2, 0), n - 1}):
        run = client.get_run(ids[i])
        step, window = spec(i)
        ok = (run.info.status == "FINISHED" and run.info.run_name == step
              and run.data.params == {"window_size": str(window)} and set(run.data.metrics) == set(METRIC_KEYS)
              and len(client.get_metric_history(ids[i], "loss")) == METRIC_ITERATIONS)
        if not ok:
            raise RuntimeError(f"MLflow fixture run {i} does not read back as written: {run}")
    for step, window in (("train", 64), ("etl", 32), ("train", RARE_WINDOW), ("etl", RARE_WINDOW)):
        want = expected_newest(n, step, window)
        got = mlflow_find(client, exp_id, step, window)
        if got != ([ids[want]] if want is not None else []):
            raise RuntimeError(f"MLflow search_runs({step}, {window}) gave {got}, expected run {want}")
    if mlflow_list(client, exp_id) != ids[::-1][:100]:
        raise RuntimeError("MLflow search_runs does not give the newest 100 runs")


# ---------------------------------------------------------------------------------------------- benchmarks
def bench_log_metric(tmp: Path, blase_calls: int, mlflow_calls: int) -> tuple[float, float, float]:
    """Seconds per call: blase (including end_run's flush), blase end_run alone, MLflow."""
    import mlflow

    from blase_tui import Track

    track = Track(project=str(new_project(tmp / "metric-project")))
    # warm-up run: the first run of a fresh project lists the installed packages once (~50 ms, then cached)
    track.start_run(name="warm-up")
    track.log_metric("loss", 1.0)
    track.end_run()
    track.start_run(name="metrics")
    start = time.perf_counter()
    for i in range(blase_calls):
        track.log_metric("loss", 1.0 / (i + 1), iteration=i)
    before_end = time.perf_counter()
    track.end_run()
    end = time.perf_counter()
    rows = track.project.store.db.query("SELECT COUNT(*) FROM metrics WHERE run_id = ?", (track.run_id,))[0][0]
    if rows != blase_calls:
        raise RuntimeError(f"blase stored {rows} of {blase_calls} metrics")
    blase_per_call = (end - start) / blase_calls

    mlflow_client(tmp / "mlflow-metric")
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 1.0, step=0)  # warm-up (first write compiles statements)
        start = time.perf_counter()
        for i in range(mlflow_calls):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i + 1)
        mlflow_per_call = (time.perf_counter() - start) / mlflow_calls
    if len(mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")) != mlflow_calls + 1:
        raise RuntimeError("MLflow did not store every metric")
    return blase_per_call, end - before_end, mlflow_per_call


def bench_create_runs(tmp: Path, count: int, rounds: int = 10) -> tuple[list[float], list[float]]:
    """Seconds of each run created with two params (start_run + log_params + end_run): blase, MLflow. The two
    tools take turns in ``rounds`` batches so that a burst of load on the machine hits both alike."""
    import mlflow

    from blase_tui import Track

    track = Track(project=str(new_project(tmp / "create-project")))
    mlflow_client(tmp / "mlflow-create")
    for _ in range(2):  # warm-up: package listing, statement compilation
        track.start_run(name="warm-up")
        track.log_params({"lr": 0.0, "window_size": 64})
        track.end_run()
        with mlflow.start_run(run_name="warm-up"):
            mlflow.log_params({"lr": 0.0, "window_size": 64})
    blase_times: list[float] = []
    mlflow_times: list[float] = []
    for r in range(rounds):
        for i in range(r * count // rounds, (r + 1) * count // rounds):
            start = time.perf_counter()
            track.start_run(name=f"run-{i}")
            track.log_params({"lr": 0.01 * (i + 1), "window_size": 64})
            track.end_run()
            blase_times.append(time.perf_counter() - start)
        for i in range(r * count // rounds, (r + 1) * count // rounds):
            start = time.perf_counter()
            mlflow.start_run(run_name=f"run-{i}")
            mlflow.log_params({"lr": 0.01 * (i + 1), "window_size": 64})
            mlflow.end_run()
            mlflow_times.append(time.perf_counter() - start)
    return blase_times, mlflow_times


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs in each store for find/list (10000)")
    parser.add_argument("--metric-calls", type=int, default=5000, help="blase log_metric calls (5000)")
    parser.add_argument("--mlflow-metric-calls", type=int, default=300, help="MLflow log_metric calls (300)")
    parser.add_argument("--create-runs", type=int, default=200, help="runs created per tool (200)")
    parser.add_argument("--repeat", type=int, default=15, help="timed calls per query; the median is shown (15)")
    parser.add_argument("--fill", choices=("sql", "api"), default="sql",
                        help="sql: one API-written template run per store, cloned by SQL (default); "
                             "api: every run through the API (slow for MLflow)")
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs must be at least 2")
    quiet()
    t_import = time.perf_counter()
    import mlflow

    from blase_tui.core.project import Project
    from blase_tui.store.query import find_runs, list_runs

    quiet()  # mlflow's import may have configured its loggers
    print(f"blase vs MLflow {mlflow.__version__} (SQLite), python {platform.python_version()},"
          f" {os.cpu_count()} CPUs, {platform.platform()}; imports took {time.perf_counter() - t_import:.1f} s",
          flush=True)

    with tempfile.TemporaryDirectory(prefix="blase-bench-") as tmp_name:
        tmp = Path(tmp_name)
        print(f"1/4 log_metric: blase x {args.metric_calls}, MLflow x {args.mlflow_metric_calls} ...", flush=True)
        b_metric, b_end, m_metric = bench_log_metric(tmp, args.metric_calls, args.mlflow_metric_calls)
        print(f"2/4 run creation with 2 params: {args.create_runs} runs each ...", flush=True)
        b_create_all, m_create_all = bench_create_runs(tmp, args.create_runs)
        b_create, m_create = statistics.fmean(b_create_all), statistics.fmean(m_create_all)

        n = args.runs
        base = time.time() - n * GAP - 3600
        print(f"3/4 filling both stores with {n:,} runs ({args.fill}) ...", flush=True)
        start = time.perf_counter()
        store = Project.at(new_project(tmp / "query-project")).store
        blase_ids = fill_blase(store, n, base, args.fill)
        b_fill = time.perf_counter() - start
        check_blase(store, blase_ids)
        start = time.perf_counter()
        client, exp_id = mlflow_client(tmp / "mlflow-query")
        mlflow_ids = fill_mlflow(client, exp_id, tmp / "mlflow-query", n, base, args.fill)
        m_fill = time.perf_counter() - start
        check_mlflow(client, exp_id, mlflow_ids)
        print(f"    filled: blase {b_fill:.1f} s, MLflow {m_fill:.1f} s (checked: the clones read back through"
              " each API, find and list return the expected runs)", flush=True)

        print(f"4/4 queries, median of {args.repeat} ...", flush=True)
        b_find = median_ms(lambda: find_runs(store, step="train", params={"window_size": "64"}, limit=1),
                           args.repeat)
        m_find = median_ms(lambda: mlflow_find(client, exp_id, "train", 64), args.repeat)
        b_rare = median_ms(lambda: find_runs(store, step="train", params={"window_size": str(RARE_WINDOW)},
                                             limit=1), args.repeat)
        m_rare = median_ms(lambda: mlflow_find(client, exp_id, "train", RARE_WINDOW), args.repeat)
        b_list = median_ms(lambda: list_runs(store, limit=100), args.repeat)
        m_list = median_ms(lambda: mlflow_list(client, exp_id), args.repeat)
        store.close()

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    at = f"{n:,} runs"
    rows = [
        ("log_metric, per call", fmt_time(b_metric), fmt_time(m_metric), m_metric / b_metric,
         ">= 50x faster", verdict(m_metric / b_metric >= 50)),
        ("create run + 2 params", fmt_time(b_create), fmt_time(m_create), m_create / b_create,
         ">= 10x faster", verdict(m_create / b_create >= 10)),
        (f"find newest match, {at}", f"{b_find:.2f} ms", f"{m_find:.2f} ms", m_find / b_find,
         "blase <= 10 ms", verdict(b_find <= 10)),
        (f"list newest 100, {at}", f"{b_list:.2f} ms", f"{m_list:.2f} ms", m_list / b_list,
         "blase <= 20 ms", verdict(b_list <= 20)),
        (f"find, match is oldest, {at}", f"{b_rare:.2f} ms", f"{m_rare:.2f} ms", m_rare / b_rare,
         "(information)", ""),
    ]
    print()
    print(f"{'benchmark':<34}{'blase':>11}{'MLflow':>11}{'MLflow/blase':>14}  {'target':<16}verdict")
    for label, b, m, ratio, target, v in rows:
        print(f"{label:<34}{b:>11}{m:>11}{ratio:>13.1f}x  {target:<16}{v}")
    print(f"\nblase log_metric: {args.metric_calls} calls then end_run(); end_run (flush + close) took"
          f" {b_end * 1e3:.1f} ms of the total. MLflow: {args.mlflow_metric_calls} mlflow.log_metric calls in an"
          " active run (end_run not timed).")
    print(f"run creation: mean per run (the figure above) blase {fmt_time(b_create)}, MLflow {fmt_time(m_create)};"
          f" median blase {fmt_time(statistics.median(b_create_all))},"
          f" MLflow {fmt_time(statistics.median(m_create_all))} (ratio"
          f" {statistics.median(m_create_all) / statistics.median(b_create_all):.1f}x)")
    print(f"populating {n:,} runs ({args.fill}): blase {b_fill:.1f} s, MLflow {m_fill:.1f} s")
    if n != 10_000:
        print("note: the find/list targets are defined at 10,000 runs; this run used", f"{n:,}.")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
