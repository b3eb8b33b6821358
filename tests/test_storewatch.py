"""The store watcher the TUI relies on for live tables: a commit by another process is reported within a
fraction of a second, and a burst of commits is coalesced."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import make_project

from blase_tui.core.storewatch import StoreWatcher
from blase_tui.store.runstore import RunStore


def test_a_commit_from_another_process_is_reported_quickly(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    RunStore(root).close()  # the database exists before watching
    calls: list[float] = []
    seen = threading.Event()

    def changed() -> None:
        calls.append(time.monotonic())
        seen.set()

    watcher = StoreWatcher(root / "runs", changed, debounce=0.05).start()
    try:
        time.sleep(0.2)
        calls.clear()
        seen.clear()
        code = (f"from pathlib import Path\nfrom blase_tui.store.runstore import RunStore\n"
                f"s = RunStore(Path({str(root)!r}))\n"
                "for i in range(20):\n    s.create_run(name=f'r{i}')\n")
        written = time.monotonic()
        subprocess.run([sys.executable, "-c", code], check=True)
        assert seen.wait(2.0), "no change reported within 2 s"
        # the first report comes well before the 3 s poll the TUI falls back on
        assert calls[0] - written < 2.0
        time.sleep(0.5)
        # 20 commits in a burst: a few coalesced calls, not one per commit
        assert 1 <= len(calls) < 20
    finally:
        watcher.stop()


def test_files_other_than_the_database_are_ignored(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    seen = threading.Event()
    watcher = StoreWatcher(runs, seen.set, debounce=0.01).start()
    try:
        time.sleep(0.2)
        (runs / "notes.txt").write_text("hello")
        (runs / "20260101-000000000-abcdef").mkdir()
        assert not seen.wait(0.5)
        (runs / "blase.db-wal").write_bytes(b"x")
        assert seen.wait(2.0)
    finally:
        watcher.stop()
