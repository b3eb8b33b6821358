"""Serving throughput and latency: `blase serve` (prediction log on) against `mlflow models serve --env-manager
local`, the same models, the same load generator, one after the other on the same machine.

    python bench/serve.py                      # ~3 min on 2 cores
    python bench/serve.py --requests 500       # quicker, noisier

Models: a HistGradientBoosting classifier on the tabular sample's data (scikit-learn's breast-cancer table,
30 named columns) and the image sample's CNN (PyTorch, 32x32 grey digits), each registered in a blase project,
deployed with `Deploy`, and saved with `mlflow.<flavor>.save_model` with a signature for MLflow.

Load: N client threads, each with its own keep-alive connection, send a fixed number of requests in total
(1-row and 100-row JSON bodies, `dataframe_split` for the table and `inputs` for the images) and time each
response. Both servers run one worker process. Printed: requests/s, records/s and p50/p99 latency per case,
blase's and MLflow's side by side, and the throughput ratio. Needs the `bench` extra (mlflow).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
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
def models(ctx):
    """The two models, registered in blase and saved for MLflow."""
    import mlflow.pytorch
    import mlflow.sklearn
    import torch
    from mlflow.models import infer_signature
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from model import build_cnn

    table = load_breast_cancer(as_frame=True)
    x, y = table.data, table.target
    clf = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(x, y)
    ctx.log_model(clf, name="table", input_example=x.head(3))
    mlflow.sklearn.save_model(clf, "mlflow/table", signature=infer_signature(x.head(20), clf.predict(x.head(20))),
                             serialization_format="cloudpickle")
    x.to_parquet("table.parquet")

    torch.manual_seed(0)
    cnn = build_cnn().eval()
    images = np.random.default_rng(0).integers(0, 256, (200, 32, 32)).astype(np.uint8)
    ctx.log_model(cnn, name="cnn", framework="torch", input_example=images[:2])
    sample = images[:4].astype(np.float32)[:, None, :, :] / 255
    with torch.no_grad():
        out = cnn(torch.from_numpy(sample)).numpy()
    mlflow.pytorch.save_model(cnn, "mlflow/cnn", signature=infer_signature(sample, out), input_example=sample)
    np.save("images.npy", images)


@step
def deploy(ctx):
    """Deploy both."""
    Deploy().deploy_model("table", "deployments/table")
    Deploy().deploy_model("cnn", "deployments/cnn")
'''


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
    """Send ``requests`` POSTs of ``body`` from ``clients`` threads; wall time and per-request latency."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    errors = [0]

    def client() -> None:
        conn = connect(port)
        mine = []
        headers = {"Content-Type": "application/json"}
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

    # warm up (the first requests pay for lazy imports, caches and the garbage of start-up)
    drive_once = connect(port)
    for _ in range(200):
        drive_once.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
        drive_once.getresponse().read()
    drive_once.close()
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


def start(cmd: list[str], cwd: Path, port: int) -> subprocess.Popen:
    # mlflow starts `uvicorn` by name: the interpreter's own bin folder comes first on PATH
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    wait_ready(port, proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per 1-row case (100-row: a fifth)")
    args = parser.parse_args()
    import pandas as pd

    work = Path(tempfile.mkdtemp(prefix="blase-bench-serve-"))
    project = work / "p"
    project.mkdir()
    (project / "blase.toml").write_text('[project]\nname = "bench-serve"\n')
    (project / "main.py").write_text(MAIN)
    (project / "model.py").write_text((REPO / "sample_project" / "scripts" / "model.py").read_text())
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for step in ("models", "deploy"):
        subprocess.run([sys.executable, "-m", "blase_tui", "step", step, "--quiet"], cwd=project, env=env, check=True)

    table = pd.read_parquet(project / "table.parquet")
    images = np.load(project / "images.npy")

    def table_body(n: int) -> bytes:
        rows = table.iloc[np.arange(n) % len(table)]
        return json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}).encode()

    def image_body(n: int, as_float: bool) -> bytes:
        x = images[np.arange(n) % len(images)]
        data = (x.astype(np.float32)[:, None] / 255).tolist() if as_float else x.tolist()
        return json.dumps({"inputs": data}).encode()

    cases = []
    for model, bodies in (("table", {"blase": table_body, "mlflow": table_body}),
                          ("cnn", {"blase": lambda n: image_body(n, False), "mlflow": lambda n: image_body(n, True)})):
        for rows in (1, 100):
            for clients in (1, 8):
                cases.append((model, rows, clients, bodies))

    results: dict[tuple[str, int, int, str], dict[str, float]] = {}
    for server in ("blase", "mlflow"):
        for model in ("table", "cnn"):
            port = free_port()
            if server == "blase":
                cmd = [sys.executable, "-m", "blase_tui", "serve", f"deployments/{model}", "--port", str(port),
                       "--workers", "1"]
            else:
                cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"mlflow/{model}", "--env-manager",
                       "local", "-p", str(port), "-h", "127.0.0.1", "-w", "1"]
            proc = start(cmd, project, port)
            try:
                for name, rows, clients, bodies in cases:
                    if name != model:
                        continue
                    n = args.requests if rows == 1 else max(50, args.requests // 5)
                    results[(model, rows, clients, server)] = drive(port, bodies[server](rows), n, clients)
            finally:
                stop(proc)

    logged = sum(1 for _ in (project / "predictions").rglob("*.parquet"))
    print(f"\nblase serve (prediction log on: {logged} files written) vs mlflow models serve --env-manager local;"
          f" one worker each; {os.cpu_count()} CPUs")
    print(f"{'model':6} {'rows':>4} {'clients':>7} | {'blase req/s':>11} {'p50 ms':>7} {'p99 ms':>7} |"
          f" {'mlflow req/s':>12} {'p50 ms':>7} {'p99 ms':>7} | {'ratio':>5} | target: >= 2x, p99 no worse")
    for model, rows, clients, _ in cases:
        b, m = results[(model, rows, clients, "blase")], results[(model, rows, clients, "mlflow")]
        print(f"{model:6} {rows:>4} {clients:>7} | {b['rps']:>11.0f} {b['p50']:>7.1f} {b['p99']:>7.1f} |"
              f" {m['rps']:>12.0f} {m['p50']:>7.1f} {m['p99']:>7.1f} | {b['rps'] / m['rps']:>5.2f} |"
              f" {'PASS' if b['rps'] >= 2 * m['rps'] and b['p99'] <= m['p99'] else 'MISS'}"
              + (f"  (errors: blase {b['errors']}, mlflow {m['errors']})" if b["errors"] or m["errors"] else ""))


if __name__ == "__main__":
    main()
