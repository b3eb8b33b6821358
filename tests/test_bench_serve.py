"""bench/serve.py stopped half-way (`timeout` sends SIGTERM, a user presses Ctrl-C) stops every server it
started: nothing is left listening or computing after it (issue 30)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, _env, wait_for


def _gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)  # each server leads a process group of its own
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_serving_bench_leaves_no_server_behind_when_interrupted(tmp_path: Path, sig: int) -> None:
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "serve.py"), "--sides", "blase,bare", "--models",
                             "table", "--requests", "1000000", "--rounds", "1"],
                            cwd=tmp_path, env={**_env(), "TMPDIR": str(tmp_path)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while len(pids) < 2 and time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line or proc.poll() is None, "the bench ended before starting its servers"
            if line.startswith("server "):
                pids.append(int(line.split()[-1]))
        assert len(pids) == 2, "the bench did not start both servers"
        wait_for(lambda: all(not _gone(p) for p in pids), what="both servers running")
        time.sleep(1.0)  # into the first case: requests in flight
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 128 + sig
        wait_for(lambda: all(_gone(p) for p in pids), timeout=30, what="every server stopped")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in pids:
            if not _gone(pid):
                os.killpg(pid, signal.SIGKILL)
