"""Run the app with uvicorn: one process, or ``workers`` processes sharing the port."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from blase_tui.errors import ConfigError

_CONFIG_ENV = "BLASE_SERVE_CONFIG"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_port(host: str, port: int) -> int:
    """The port to listen on: ``port`` when it is free, a free one the system picks for 0."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another port with --port.") from None
        return int(s.getsockname()[1])


def _factory() -> Any:
    """The app of one worker process (``--workers N``), from the settings the parent left in the environment."""
    from blase_tui.serve.app import create_app

    config = json.loads(os.environ[_CONFIG_ENV])
    log_dir = config["log_dir"]
    return create_app(Path(config["folder"]), log_dir=Path(log_dir) if log_dir else False,
                      max_rows=config["max_rows"], max_body=config["max_body"], device=config["device"],
                      trust=config["trust"])


def serve(folder: Path, *, host: str = "127.0.0.1", port: int = 5000, workers: int = 1, log_dir: Path | None,
          max_rows: int, max_body: int, device: str | None, said: str, out: Any = None, trust: bool = False,
          shown_as: str | None = None) -> None:
    """Load the deployment, say what is served where, and answer until interrupted. ``trust``: load the model
    even where that runs code from its file (``--trust``); ``shown_as``: the target as the user named it."""
    import uvicorn

    from blase_tui.serve.app import create_app, default_log_dir
    from blase_tui.serve.model import ServedModel

    out = out or sys.stderr
    if workers < 1:
        raise ConfigError("--workers must be at least 1.")
    port = _check_port(host, port)  # --port 0: the port picked is the one printed below
    served = ServedModel(folder, device=device, trust=trust, shown_as=shown_as)
    if log_dir is not None and str(log_dir) == "default":
        log_dir = default_log_dir(served.folder, served.name)
    made = f"trained in run {served.training_run}" if served.training_run else "no training run recorded"
    print(f"blase: serving {served.label} ({served.framework}, {made}), from {said}, at"
          f" http://{host}:{port}/invocations", file=out)
    print(f"blase: predictions logged to {log_dir}" if log_dir else "blase: prediction log off (--no-log)", file=out)
    if served.trusted_because is not None:
        because = "--trust says so" if served.trusted_because == "--trust" else f"it is {served.trusted_because}"
        print(f"blase: {served.manifest['model_file']} is a {served.format.name} file, whose loading runs code from"
              f" it: loaded, as {because}", file=out)
    if not is_loopback(host):
        print(f"blase: listening on {host}: other machines can reach this server, and it asks no one for a"
              " password; put it behind your own access control.", file=out)
    out.flush()
    if workers == 1:
        app = create_app(served, log_dir=log_dir or False, max_rows=max_rows, max_body=max_body, device=device)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
        return
    os.environ[_CONFIG_ENV] = json.dumps({"folder": str(served.folder), "log_dir": str(log_dir) if log_dir else None,
                                          "max_rows": max_rows, "max_body": max_body, "device": device,
                                          # each worker loads the model again: it may where this process could
                                          "trust": served.trusted_because is not None})
    uvicorn.run("blase_tui.serve.server:_factory", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False, timeout_graceful_shutdown=5)
