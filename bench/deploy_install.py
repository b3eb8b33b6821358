"""A deployment installed where blase is not: a scikit-learn model deployed by `blase deploy` (its
requirements.txt with blase's wheel from the folder) against the same model as MLflow serves it (`mlflow` and
scikit-learn, what `mlflow models serve` needs), each `pip install`ed into a fresh virtual environment. Prints
the time and the size of each side by side; the package index (or its local mirror) must be reachable.

    python bench/deploy_install.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

MAKE = """
import joblib, numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
x = pd.DataFrame(np.random.default_rng(0).normal(size=(300, 3)), columns=["a", "b", "c"])
joblib.dump(LogisticRegression().fit(x, (x.a > 0).astype(int)), "lr.joblib")
"""


def _install(venv: Path, *args: str, cwd: Path) -> tuple[float, int, int]:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    started = time.perf_counter()
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    site = next((venv / "lib").glob("python*/site-packages"))
    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    return seconds, size, sum(1 for _ in site.iterdir())


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="blase-bench-") as tmp:
        root = Path(tmp) / "proj"
        root.mkdir()
        (root / "blase.toml").write_text('[project]\nname = "bench"\n')
        (root / "main.py").write_text("")
        subprocess.run([sys.executable, "-c", MAKE], cwd=root, check=True)
        subprocess.run([sys.executable, "-m", "blase_tui", "deploy", "lr.joblib", "deployments/lr", "--trust"],
                       cwd=root, check=True, stdout=subprocess.DEVNULL)
        ours = _install(Path(tmp) / "ours", "-r", "requirements.txt", cwd=root / "deployments" / "lr")
        peer = _install(Path(tmp) / "mlflow", f"mlflow=={metadata.version('mlflow')}",
                        f"scikit-learn=={metadata.version('scikit-learn')}", cwd=Path(tmp))
    print(f"{'fresh venv, pip install':32} {'blase deployment':>18} {'MLflow model':>14} {'ratio':>7}")
    print(f"{'seconds':32} {ours[0]:18.1f} {peer[0]:14.1f} {peer[0] / ours[0]:6.2f}x")
    print(f"{'site-packages MiB':32} {ours[1] / 2**20:18.0f} {peer[1] / 2**20:14.0f} {peer[1] / ours[1]:6.2f}x")
    print(f"{'site-packages entries':32} {ours[2]:18d} {peer[2]:14d}")


if __name__ == "__main__":
    main()
