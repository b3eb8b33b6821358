"""`blase serve TARGET`: answer predictions over HTTP (FastAPI + uvicorn, the `serve` extra)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)


def serve_command(
    target: Annotated[str, typer.Argument(help="A deployment folder, an archive of one (.zip, .tar.gz), or a registered"
                                               " model: name, name:3, name@champion.")],
    host: Annotated[str, typer.Option(help="Address to listen on; loopback unless you say otherwise.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: a free one, printed).")] = 5000,
    workers: Annotated[int, typer.Option(help="Server processes sharing the port (each loads the model).")] = 1,
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not log predictions (Monitor reads that log).")] = False,
    log_dir: Annotated[Path | None, typer.Option(help="Where to log predictions (default: the project's"
                                                      " predictions/<model>/).")] = None,
    max_rows: Annotated[int, typer.Option(help="Most records one request may hold.")] = 10_000,
    max_body: Annotated[int, typer.Option(help="Largest request body, in bytes.")] = 16 * 1024 * 1024,
    device: Annotated[str | None, typer.Option(help="cpu (default) or cuda, for torch and Keras models.")] = None,
    threads: Annotated[int, typer.Option(help="Math threads per worker (OpenMP, BLAS, torch, TensorFlow).")] = 1,
    trust: Annotated[bool, typer.Option("--trust", help="Load the model even if that runs code from its file (a"
                                                        " pickle, a torch module, a Keras Lambda layer) and this"
                                                        " project did not produce it. Only for a source you trust.")]
    = False,
) -> None:
    """Serve a model over HTTP, logging every prediction.

    POST /invocations (MLflow's JSON formats and CSV), GET /ping, /health, /version, /metadata. Every prediction
    is logged (Parquet) for `Monitor`, unless --no-log. A model whose loading runs code from its file (a pickle)
    is served only when this project produced it or you trust it (--trust, or `blase deploy trust` once).
    Exit codes: 0 stopped, 2 bad target, untrusted model or port in use."""
    # Each request is small: handing it to a pool of math threads (OpenMP in scikit-learn's trees and torch, BLAS)
    # costs more than it saves (a 1-row request of a tree ensemble: 1.6 ms on one thread, ~13 ms handed to two
    # sleeping threads; bench/serve.py). A server scales with --workers; --threads gives each more.
    if threads < 1:
        from blase_tui.errors import ConfigError

        raise ConfigError("--threads must be at least 1.")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ[var] = str(threads)
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        from blase_tui.errors import ConfigError

        raise ConfigError("blase serve needs the serve extra: pip install 'blase-tui[serve]'.") from None
    from blase_tui.cli import common
    from blase_tui.serve.server import serve
    from blase_tui.serve.target import resolve

    shown_as = target
    if common.project_dir() is not None:
        target = str(Path(target).resolve()) if Path(target).exists() else target
        os.chdir(common.project_dir())
    folder, said = resolve(target)
    chosen_log: Path | None = None if no_log else (log_dir.resolve() if log_dir else Path("default"))
    serve(folder, host=host, port=port, workers=workers, log_dir=chosen_log, max_rows=max_rows, max_body=max_body,
          device=device, said=said, trust=trust, shown_as=shown_as)
