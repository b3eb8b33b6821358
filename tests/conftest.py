"""Shared fixtures: every test gets its own user registry (BLASE_HOME), a project in a temp folder, and a
`blase` runner that starts the real command in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# one OpenMP thread per process, for every test and fixture (module-scoped ones too, so a run and its reproduction
# use the same count): the suite runs a worker per core, and PyTorch's (and scikit-learn's) default of a thread per
# core beside another busy worker spins, training the sample's CNN 4x slower (25 s, not 7)
os.environ["OMP_NUM_THREADS"] = "1"

STEPS_MAIN = '''
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from blase_tui import main, step


@step
def a(ctx, n: int = 3, lr: float = 0.1, name: str = "x"):
    """Log a few metrics and write an artifact."""
    for i in range(n):
        ctx.log_metric("loss", 1.0 / (i + 1), iteration=i)
    (ctx.artifact_dir / "a.txt").write_text(f"n={n}")


@step
def b(ctx):
    """Second step."""
    ctx.log_metric("b_metric", 2.0)


@step
def c(ctx):
    """Third step."""
    ctx.log_metric("c_metric", 3.0)


@step
def slow(ctx):
    """Wait until the file `release` exists; reports progress meanwhile."""
    Path("started").write_text(str(os.getpid()))
    deadline = time.time() + 60
    with ctx.progress("wait", total=None) as bar:
        while not Path("release").exists():
            if time.time() > deadline:
                raise TimeoutError("nobody released the slow step")
            time.sleep(0.05)
            bar.update(1)


@step
def boom(ctx):
    """Always fails."""
    raise ValueError("bad thing happened")


@step
def counted(ctx, total: int = 20):
    """Progress with a known total."""
    with ctx.progress("count", total=total) as bar:
        for _ in range(total):
            time.sleep(0.05)
            bar.update(1)
    ctx.log.info("counted to %d", total)


if __name__ == "__main__":
    main()
'''

TOML = '''
[project]
name = "testproj"
memory_budget = "256MiB"

[steps.a]
n = 3
lr = 0.1
'''


@pytest.fixture(autouse=True)
def _isolate(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("blase-home")
    monkeypatch.setenv("BLASE_HOME", str(home))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("BLASE_PROJECT", raising=False)
    # temporary files (a checkpoint folder of Train used outside any run, a server's scratch) stay under
    # pytest's own folder, which it prunes, instead of piling up in the machine's /tmp
    scratch = tmp_path_factory.getbasetemp() / "tmp"
    scratch.mkdir(exist_ok=True)
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))


def make_project(root: Path, main_src: str = STEPS_MAIN, toml: str = TOML) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "blase.toml").write_text(textwrap.dedent(toml))
    (root / "main.py").write_text(main_src)
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


BlaseRunner = Callable[..., subprocess.CompletedProcess]


def run_blase(*args: str, cwd: Path, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
    """``blase ARGS`` in a subprocess (the package from this checkout), output captured."""
    proc = subprocess.run(
        [sys.executable, "-m", "blase_tui", *args], cwd=cwd, env=_env(), capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"blase {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def blase() -> BlaseRunner:
    return run_blase


@pytest.fixture
def spawn() -> Callable[..., subprocess.Popen]:
    procs: list[subprocess.Popen] = []

    def start(*args: str, cwd: Path) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "blase_tui", *args], cwd=cwd, env=_env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        )
        procs.append(proc)
        return proc

    yield start
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()


def wait_for(condition: Callable[[], object], timeout: float = 30, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def runs_json(blase: BlaseRunner, cwd: Path, *extra: str) -> list[dict]:
    proc = blase("runs", "list", "--json", "--limit", "0", *extra, cwd=cwd, check=True)
    return json.loads(proc.stdout)


def show_json(blase: BlaseRunner, cwd: Path, run: str) -> dict:
    return json.loads(blase("runs", "show", run, "--json", cwd=cwd, check=True).stdout)


# ------------------------------------------------------------------------------- `blase serve` on a real port
def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, body: bytes | None = None, content_type: str = "application/json") -> tuple[int, dict | str]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": content_type} if body is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


class Server:
    def __init__(self, cwd: Path, *args: str, command: list[str] | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        cmd = command or [sys.executable, "-m", "blase_tui", "serve", *args, "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited {self.proc.returncode}: {self.proc.stderr.read()}")
            try:
                if request(self.url + "/ping")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("the server did not answer /ping in time")

    def post(self, payload: dict | str, path: str = "/invocations", content_type: str = "application/json"):
        body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        return request(self.url + path, body, content_type)

    def stop(self, sig: int = signal.SIGTERM) -> str:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        _, err = self.proc.communicate(timeout=30)
        return err


async def until(pilot, condition: Callable[[], object], timeout: float = 30, what: str = "condition",
                every: float = 0.05) -> object:
    """Wait (a Textual Pilot's pauses) until ``condition()`` is truthy and return it; an exception in it counts
    as not yet (a widget not mounted yet). Fails naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception:  # noqa: BLE001 - a widget not mounted yet
            value = None
        if value:
            return value
        await pilot.pause(every)
    raise AssertionError(f"timed out waiting for {what}")
