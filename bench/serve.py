"""Serving latency and throughput: `blase serve` (prediction log on) against the limit, a bare ASGI endpoint on
the same uvicorn that parses the same JSON with the same library and calls the same model's predict, and against
`mlflow models serve --env-manager local` for reference; interleaved case by case, the same request bytes to
every side.

    python bench/serve.py                        # ~6 min on 2 cores, every side and model
    python bench/serve.py --requests 500         # quicker, noisier
    python bench/serve.py --sides blase,bare --models table --requests 300 --rounds 2

Models: a HistGradientBoosting classifier on scikit-learn's breast-cancer table (30 named columns), sent as
`dataframe_split`, and the image sample's CNN (PyTorch, 32x32 grey digits), sent as `inputs` of uint8 pixels;
both registered and deployed in a blase project. The bare endpoint loads the deployment's model file; MLflow gets
the estimator (`mlflow.sklearn`) and the CNN behind a pyfunc that scales the same uint8 pixels to [0, 1], as
blase's CNN does. Each server runs one worker process with one math thread (blase's default, `--threads 1`; the
others by OMP_NUM_THREADS and torch.set_num_threads).

Load: N client threads, each with its own keep-alive connection (TCP_NODELAY), send a fixed number of requests
(1-row cases `--requests`, 100-row a fifth), each timed; warm-up is a tenth of that. For each case the sides
take turns, `--rounds` times, in an order that rotates each round; the case's row is printed when its rounds
are done: the median over rounds of requests/s and of p50/p99 latency, with the rounds' range. Targets (issue
30), table model: blase's median latency at most 1.25x the bare endpoint's, its throughput at least 0.8x.

Every server is started in a process group of its own and stopped on any exit: the end, an error, Ctrl-C,
SIGTERM or SIGHUP (`timeout` sends SIGTERM). Each start is printed (`server SIDE MODEL pid N`) as it happens.
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

MAIN = '''
import numpy as np
from blase_tui import Deploy, step


@step
def models(ctx, mlflow: bool = False, cnn: bool = True):
    """The models, registered in blase (and saved for MLflow when asked)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier

    table = load_breast_cancer(as_frame=True)
    x, y = table.data, table.target
    clf = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(x, y)
    ctx.log_model(clf, name="table", input_example=x.head(3))
    x.to_parquet("table.parquet")
    if mlflow:
        import mlflow.sklearn
        from mlflow.models import infer_signature

        mlflow.sklearn.save_model(clf, "mlflow/table", signature=infer_signature(x.head(20), clf.predict(x.head(20))),
                                  serialization_format="cloudpickle")
    if not cnn:
        return
    import torch
    from model import build_cnn

    torch.manual_seed(0)
    net = build_cnn().eval()
    images = np.random.default_rng(0).integers(0, 256, (200, 32, 32)).astype(np.uint8)
    ctx.log_model(net, name="cnn", framework="torch", input_example=images[:2])
    np.save("images.npy", images)
    if mlflow:
        import mlflow.pyfunc
        from mlflow.models import infer_signature

        torch.save(net, "cnn.pt")

        class Scaled(mlflow.pyfunc.PythonModel):
            """The CNN on uint8 pixels, scaled to [0, 1] as blase's image models take them."""

            def load_context(self, context):
                self.net = torch.load(context.artifacts["net"], weights_only=False).eval()
                torch.set_num_threads(1)

            def predict(self, context, model_input, params=None):
                x = torch.as_tensor(np.asarray(model_input, dtype=np.float32)[:, None] / 255)
                with torch.no_grad():
                    return self.net(x).numpy()

        sample = images[:4].astype(np.int64)
        mlflow.pyfunc.save_model("mlflow/cnn", python_model=Scaled(), artifacts={"net": "cnn.pt"},
                                 signature=infer_signature(sample, np.zeros((4, 10), dtype=np.float32)),
                                 code_paths=["model.py"])


@step
def deploy(ctx, cnn: bool = True):
    """Deploy them."""
    Deploy().deploy_model("table", "deployments/table")
    if cnn:
        Deploy().deploy_model("cnn", "deployments/cnn")
'''

# The limit: what any server must do for a request, nothing else. The same uvicorn settings as blase serve, the
# same JSON library (orjson), the model loaded from the deployment's file by blase's loader at start (so it is
# the same object), one math thread.
BARE = '''
import os
import sys

import numpy as np
import orjson

from blase_tui.models.frameworks import open_model
from blase_tui.modules.deploy import read_deployment

folder = os.environ["BARE_DEPLOYMENT"]
manifest = read_deployment(folder)
framework = manifest["model"]["framework"]
model = open_model(os.path.join(folder, manifest["model_file"]), framework, allow_code=True).model
if framework == "torch":
    import torch

    torch.set_num_threads(1)
else:
    import warnings

    warnings.simplefilter("ignore")  # "X does not have valid feature names", once for all


def predict(data):
    if framework == "torch":
        x = torch.as_tensor(np.asarray(data["inputs"], dtype=np.float32)[:, None] / 255)
        with torch.no_grad():
            return model(x).numpy().argmax(axis=1)
    return model.predict(np.asarray(data["dataframe_split"]["data"], dtype=np.float64))


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/ping":
        body = b"\\n"
    else:
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = orjson.dumps({"predictions": predict(orjson.loads(b"".join(chunks)))},
                            option=orjson.OPT_SERIALIZE_NUMPY)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False,
                timeout_graceful_shutdown=5)
'''

_RUNNING: list[subprocess.Popen] = []  # every server started, stopped on any exit


def stop_all(*_: object) -> None:
    while _RUNNING:
        proc = _RUNNING.pop()
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def _on_signal(signum: int, _frame: object) -> None:
    stop_all()
    sys.exit(128 + signum)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not answer /ping")


def connect(port: int) -> http.client.HTTPConnection:
    """A keep-alive connection with TCP_NODELAY, as requests/urllib3 and curl open them (http.client does not:
    its header and body writes then wait on the server's delayed ACK, ~12 ms a request, whatever the server)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def drive(port: int, body: bytes, requests: int, clients: int) -> dict[str, float]:
    """Send ``requests`` POSTs of ``body`` from ``clients`` threads (after a tenth as many to warm up); wall
    time and per-request latency."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    errors = [0]
    headers = {"Content-Type": "application/json"}

    def client() -> None:
        conn = connect(port)
        mine = []
        while True:
            with lock:
                if next(counter, None) is None:
                    break
            t0 = time.perf_counter()
            conn.request("POST", "/invocations", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            mine.append(time.perf_counter() - t0)
            if resp.status != 200:
                errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    warm = connect(port)
    for _ in range(max(10, requests // 10)):
        warm.request("POST", "/invocations", body=body, headers=headers)
        warm.getresponse().read()
    warm.close()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    lat = np.asarray(latencies) * 1000
    return {"rps": len(lat) / wall, "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
            "errors": errors[0]}


def start(side: str, model: str, project: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    if side in ("blase", "blase-nolog"):
        cmd = [sys.executable, "-m", "blase_tui", "serve", f"deployments/{model}", "--port", str(port), "--workers", "1",
               *(["--no-log"] if side == "blase-nolog" else [])]
    elif side == "bare":
        cmd = [sys.executable, "bare.py", str(port)]
    else:
        cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"mlflow/{model}", "--env-manager", "local",
               "-p", str(port), "-h", "127.0.0.1", "-w", "1"]
    # one math thread for every side (blase serve sets it itself); mlflow starts `uvicorn` by name: the
    # interpreter's own bin folder comes first on PATH
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               BARE_DEPLOYMENT=str(project / "deployments" / model))
    proc = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    _RUNNING.append(proc)
    print(f"server {side} {model} pid {proc.pid}", flush=True)
    wait_ready(port, proc)
    return proc, port


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per 1-row case and round (100-row: a"
                                                                   " fifth); warm-up: a tenth")
    parser.add_argument("--rounds", type=int, default=3, help="turns each side takes at each case")
    parser.add_argument("--sides", default="blase,bare,mlflow", help="comma-separated: blase, bare, mlflow (and"
                                                                     " blase-nolog: blase serve --no-log)")
    parser.add_argument("--models", default="table,cnn", help="comma-separated: table, cnn")
    args = parser.parse_args()
    sides = [s for s in args.sides.split(",") if s]
    models = [m for m in args.models.split(",") if m]
    if "mlflow" in sides:
        try:
            import mlflow  # noqa: F401
        except ImportError:
            print("mlflow is not installed (pip install '.[bench]'): its side is left out")
            sides.remove("mlflow")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    atexit.register(stop_all)
    import pandas as pd

    work = Path(tempfile.mkdtemp(prefix="blase-bench-serve-"))
    project = work / "p"
    project.mkdir()
    (project / "blase.toml").write_text('[project]\nname = "bench-serve"\n')
    (project / "main.py").write_text(MAIN)
    (project / "bare.py").write_text(BARE)
    (project / "model.py").write_text((REPO / "sample_project" / "scripts" / "model.py").read_text())
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with_cnn, with_mlflow = f"cnn={'cnn' in models}", f"mlflow={'mlflow' in sides}"
    for step, sets in (("models", [with_mlflow, with_cnn]), ("deploy", [with_cnn])):
        subprocess.run([sys.executable, "-m", "blase_tui", "step", step, "--quiet",
                        *[a for s in sets for a in ("--set", s)]], cwd=project, env=env, check=True)

    def body(model: str, n: int) -> bytes:
        """One request's bytes, the same for every side."""
        if model == "table":
            table = pd.read_parquet(project / "table.parquet")
            rows = table.iloc[np.arange(n) % len(table)]
            return json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}).encode()
        images = np.load(project / "images.npy")
        return json.dumps({"inputs": images[np.arange(n) % len(images)].tolist()}).encode()

    print(f"\none worker and one math thread per server; {os.cpu_count()} CPUs; blase serve logs every prediction;"
          f" {args.rounds} interleaved rounds per case, medians (range)", flush=True)
    head = " | ".join(f"{s + ' req/s':>16} {'p50 ms':>6} {'p99 ms':>6}" for s in sides)
    print(f"{'model':6} {'rows':>4} {'clients':>7} | {head} | blase/bare: latency, throughput", flush=True)
    try:
        for model in models:
            servers = {side: start(side, model, project) for side in sides}
            for rows in (1, 100):
                for clients in (1, 8):
                    payload = body(model, rows)
                    n = args.requests if rows == 1 else max(50, args.requests // 5)
                    got: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
                    for turn in range(args.rounds):
                        order = sides[turn % len(sides):] + sides[:turn % len(sides)]
                        for side in order:
                            got[side].append(drive(servers[side][1], payload, n, clients))
                    cells = []
                    for side in sides:
                        runs = got[side]
                        cells.append(f"{spread([r['rps'] for r in runs]):>16} {statistics.median(r['p50'] for r in runs):>6.1f}"
                                     f" {statistics.median(r['p99'] for r in runs):>6.1f}")
                    verdict = ""
                    if "blase" in got and "bare" in got:
                        lat = statistics.median(r["p50"] for r in got["blase"]) / \
                            statistics.median(r["p50"] for r in got["bare"])
                        thr = statistics.median(r["rps"] for r in got["blase"]) / \
                            statistics.median(r["rps"] for r in got["bare"])
                        ok = lat <= 1.25 and thr >= 0.8
                        verdict = f"{lat:.2f}x, {thr:.2f}x" + (f" ({'PASS' if ok else 'MISS'})" if model == "table" else "")
                    errors = {side: sum(r["errors"] for r in got[side]) for side in sides}
                    print(f"{model:6} {rows:>4} {clients:>7} | {' | '.join(cells)} | {verdict}"
                          + (f"  errors: {errors}" if any(errors.values()) else ""), flush=True)
            stop_all()
    finally:
        stop_all()
    logged = sum(1 for _ in (project / "predictions").rglob("*.parquet"))
    print(f"blase's prediction log: {logged} Parquet files written", flush=True)


if __name__ == "__main__":
    main()
