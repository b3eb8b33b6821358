"""How fast `blase tui` shows 10,000 runs, and how soon a status change written by another process shows.

    python bench/tui.py [--runs 10000] [--repeat 3] [--left-open 600] [--only left-open]

Targets (issue 5): from `blase tui` start to the runs table painted ≤ 1.5 s; a run's status change shows in
the table ≤ 1 s after it is written. Issue 16: with new runs arriving 10 a second while the user scrolls, the
highlighted run never changes without a key (the table driven in-process with Textual's Pilot, the runs
written by another thread through SQLite as cron would). The real command runs in a pseudo-terminal (120×40) and the bench reads
what it draws, so the figures include Python start-up, imports, the store query and Textual's first paint.

Issue 27: a TUI left open for 10 minutes at 80×24 while runs arrive at 1–10 a second (written through the store by
another thread, as `blase step` in cron writes them): every run appears; while the cursor is on the first row, the
top row is always the newest run shown; after the user moves down, the highlighted run keeps its line without a
key.

The peer is the obvious way to build the same table: Textual's own DataTable filled with the same 10,000 rows
(`add_rows`), started the same way; the bench prints both and the ratio.
"""

from __future__ import annotations

import argparse
import os
import pty
import random
import select
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = ["etl", "clean", "prepare", "train", "evaluate"]

PEER = r"""
import sqlite3, sys
from textual.app import App
from textual.widgets import DataTable
class Peer(App):
    def compose(self):
        yield DataTable()
    def on_mount(self):
        t = self.query_one(DataTable)
        t.add_columns("run", "status", "steps", "started", "duration", "loss", "accuracy")
        con = sqlite3.connect(sys.argv[1])
        rows = con.execute("SELECT id, status, started, ended FROM runs ORDER BY id DESC").fetchall()
        t.add_rows([(r[0], r[1], "train", str(r[2]), str((r[3] or r[2]) - r[2]), "0.1", "0.9") for r in rows])
Peer().run()
"""


def make_store(root: Path, n: int, seed: int = 0) -> str:
    """A project with ``n`` finished runs (each with steps and two metrics) written straight into SQLite, plus
    one running run whose id is returned (the bench flips its status)."""
    from blase_tui.store.runstore import RunStore

    (root / "blase.toml").write_text('[project]\nname = "bench-tui"\n')
    (root / "main.py").write_text("from blase_tui import step\n")
    store = RunStore(root)
    rng = random.Random(seed)
    t0 = time.time() - n * 60
    runs, steps, metrics, params = [], [], [], []
    step_id = 0
    for i in range(n):
        started = t0 + i * 60
        run_id = time.strftime("%Y%m%d-%H%M%S", time.localtime(started)) + f"{i % 1000:03d}-{rng.randrange(36**6):06x}"
        status = "succeeded" if rng.random() > 0.1 else "failed"
        runs.append((run_id, None, status, 0, started, started + 30))
        for s in rng.sample(STEPS, rng.randint(1, 3)):
            step_id += 1
            steps.append((step_id, run_id, s, s, status, started, started + 10))
        metrics.append((run_id, step_id, "loss", rng.random(), 0, started))
        metrics.append((run_id, step_id, "accuracy", rng.random(), 0, started))
        for key, value in (("learning_rate", rng.choice([0.002, 0.001, 0.0005])), ("epochs", rng.randint(4, 20)),
                           ("batch_size", 64), ("seed", i), ("optimizer", '"adam"')):
            params.append((run_id, key, step_id, str(value)))
    with store.db.write() as conn:
        conn.executemany("INSERT INTO runs (id, name, status, explicit, started, ended) VALUES (?, ?, ?, ?, ?, ?)", runs)
        conn.executemany("INSERT INTO step_runs (id, run_id, step, folder, status, started, ended)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?)", steps)
        conn.executemany("INSERT INTO metrics (run_id, step_run_id, key, value, iteration, ts) VALUES (?, ?, ?, ?, ?, ?)",
                         metrics)
        conn.executemany("INSERT INTO params (run_id, key, step_run_id, value) VALUES (?, ?, ?, ?)", params)
    # a running run owned by this (living) process, so recovery leaves it alone
    import psutil

    me = psutil.Process()
    live = store.create_run(owner_pid=os.getpid(), owner_started=me.create_time())
    store.close()
    return live


class Screen:
    """A command in a pseudo-terminal; ``wait_for`` reads its output until a text shows."""

    def __init__(self, cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.start = time.perf_counter()
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            os.chdir(cwd)
            os.execvpe(cmd[0], cmd, {**env, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"})
        import fcntl
        import struct
        import termios

        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.buffer = b""

    def wait_for(self, text: str, timeout: float = 60.0, *, after: int = 0) -> float:
        """Seconds since start when ``text`` first appears in the output past byte ``after``."""
        needle = text.encode()
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if needle in self.buffer[after:]:
                return time.perf_counter() - self.start
            ready, _, _ = select.select([self.fd], [], [], 0.02)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    break
                self.buffer += chunk
                # answer the terminal queries Textual sends at start (cursor position, device attributes)
                if b"\x1b[6n" in chunk:
                    os.write(self.fd, b"\x1b[1;1R")
        raise TimeoutError(f"{text!r} did not show within {timeout} s")

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


def newest_id(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT id FROM runs WHERE status != 'running' ORDER BY id DESC LIMIT 1").fetchone()[0]
    finally:
        con.close()


def scroll_while_runs_arrive(root: Path, seconds: float = 6.0, per_second: float = 10.0) -> dict[str, float]:
    """The runs table in-process (Pilot, 120x40): the user moves down a row every half second while another
    thread writes ``per_second`` new runs a second. Counts the checks (every 50 ms) at which the highlighted run
    is not the one the user's keys chose, and how long a new run takes to show."""
    import asyncio
    import threading

    from blase_tui.tui.app import make_app
    from blase_tui.tui.screens.runs import RunsScreen
    from blase_tui.tui.widgets.runs_table import RunsTable

    db = root / "runs" / "blase.db"
    written: dict[str, float] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer() -> None:
        con = sqlite3.connect(db, timeout=30)
        i = 0
        while not stop.is_set():
            now = time.time()
            run_id = time.strftime("%Y%m%d-%H%M%S", time.localtime(now + 86400)) + f"{i % 1000:03d}-new{i:03d}"
            with con:
                con.execute("INSERT INTO runs (id, name, status, explicit, started, ended) VALUES (?, NULL,"
                            " 'succeeded', 0, ?, ?)", (run_id, now, now + 1))
            with lock:
                written[run_id] = time.perf_counter()
            i += 1
            stop.wait(1 / per_second)
        con.close()

    async def drive() -> dict[str, float]:
        app = make_app(root)
        async with app.run_test(size=(120, 40)) as pilot:
            while not (isinstance(app.screen, RunsScreen) and app.screen.loaded):
                await pilot.pause(0.05)
            table = app.screen.query_one(RunsTable)
            for _ in range(15):
                await pilot.press("down")
            chosen = table.current_id
            thread = threading.Thread(target=writer, daemon=True)
            thread.start()
            checks = moved = 0
            shown: dict[str, float] = {}
            end = time.perf_counter() + seconds
            next_key = time.perf_counter() + 0.5
            while time.perf_counter() < end:
                await pilot.pause(0.05)
                if time.perf_counter() >= next_key:
                    await pilot.press("down")
                    chosen = table.current_id
                    next_key += 0.5
                checks += 1
                moved += table.current_id != chosen
                with lock:
                    arrived = list(written.items())
                for run_id, at in arrived:
                    if run_id not in shown and run_id in table.rows:
                        shown[run_id] = time.perf_counter() - at
            stop.set()
            thread.join()
            lags = sorted(shown.values())
            return {"checks": checks, "moved": moved, "arrived": len(written), "shown": len(shown),
                    "lag_median": statistics.median(lags) if lags else float("nan"),
                    "lag_max": lags[-1] if lags else float("nan")}

    return asyncio.run(drive())


def left_open(root: Path, seconds: float = 600.0, seed: int = 0) -> dict[str, float]:
    """The runs table in-process (Pilot, 80×24), untouched after Home for the first half, three rows down for the
    second, while another thread adds finished runs at a rate drawn from 1–10 a second every 5 s. Checked every
    100 ms: the top row is the newest run the table holds (first half); the highlighted run and its screen line
    are the ones the keys chose (second half). At the end every run written must be in the table."""
    import asyncio
    import threading

    from blase_tui.core.fmt import fmt_run_tail
    from blase_tui.store.runstore import RunStore
    from blase_tui.tui.app import make_app
    from blase_tui.tui.screens.runs import RunsScreen
    from blase_tui.tui.widgets.runs_table import RunsTable

    written: dict[str, float] = {}
    lock = threading.Lock()  # the writer adds while the checks read
    stop = threading.Event()

    def writer() -> None:
        rng = random.Random(seed)
        store = RunStore(root)
        rate, change = 1.0, 0.0
        while not stop.is_set():
            if time.perf_counter() >= change:
                rate, change = rng.uniform(1, 10), time.perf_counter() + 5
            run_id = store.create_run()
            sid, _ = store.begin_step(run_id, "tick", pid=os.getpid(), pid_started=None)
            store.log_metrics([(run_id, sid, "loss", rng.random(), None, time.time())])
            store.finish_step(sid, "succeeded", exit_code=0)
            store.close_run(run_id)
            with lock:
                written[run_id] = time.perf_counter()
            stop.wait(1 / rate)
        store.close()

    async def drive() -> dict[str, float]:
        app = make_app(root)
        async with app.run_test(size=(80, 24)) as pilot:
            while not (isinstance(app.screen, RunsScreen) and app.screen.loaded):
                await pilot.pause(0.05)
            table = app.screen.query_one(RunsTable)
            await pilot.press("home")
            thread = threading.Thread(target=writer, daemon=True)
            thread.start()
            checks = [0, 0]
            wrong = [0, 0]
            shown: dict[str, float] = {}
            start = time.perf_counter()
            half = start + seconds / 2
            anchored: tuple[str | None, int] | None = None
            while time.perf_counter() < start + seconds:
                await pilot.pause(0.1)
                with lock:
                    arrived = list(written.items())
                for run_id, at in arrived:
                    if run_id not in shown and run_id in table.rows:
                        shown[run_id] = time.perf_counter() - at
                if time.perf_counter() < half:
                    checks[0] += 1
                    newest = max(table.rows)
                    top_line = table.render_line(1).text
                    wrong[0] += not (table.cursor == 0 and table.order[0] == newest and fmt_run_tail(newest) in top_line)
                    continue
                if anchored is None:
                    for _ in range(3):
                        await pilot.press("down")
                    anchored = (table.current_id, table.cursor - int(table.scroll_offset.y))
                checks[1] += 1
                line = table.cursor - int(table.scroll_offset.y)
                wrong[1] += (table.current_id, line) != anchored or fmt_run_tail(anchored[0] or "?") not in \
                    table.render_line(1 + line).text
            stop.set()
            thread.join()
            deadline = time.perf_counter() + 10
            while time.perf_counter() < deadline and not set(written) <= set(table.rows):
                await pilot.pause(0.1)
            for run_id, at in written.items():
                if run_id not in shown and run_id in table.rows:
                    shown[run_id] = time.perf_counter() - at
            lags = sorted(shown.values())
            return {"arrived": len(written), "shown": len(shown), "top_checks": checks[0], "top_wrong": wrong[0],
                    "line_checks": checks[1], "line_wrong": wrong[1],
                    "lag_median": statistics.median(lags) if lags else float("nan"),
                    "lag_max": lags[-1] if lags else float("nan")}

    return asyncio.run(drive())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--left-open", type=float, default=600.0, metavar="SECONDS",
                        help="how long the left-open check runs (issue 27: 10 minutes)")
    parser.add_argument("--only", choices=["left-open"], help="run only this check")
    args = parser.parse_args()
    if args.only == "left-open":
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "proj"
            root.mkdir()
            os.environ["BLASE_HOME"] = str(Path(tmp) / "home")
            make_store(root, args.runs)
            report_left_open(left_open(root, args.left_open), args.left_open)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        root.mkdir()
        # the user's registry of projects is left alone: the TUI started here (and the one driven in this process
        # by the scrolling check) registers the bench's project in a registry of its own
        os.environ["BLASE_HOME"] = str(Path(tmp) / "home")
        env = dict(os.environ)
        live = make_store(root, args.runs)
        db = root / "runs" / "blase.db"
        newest = newest_id(db)
        print(f"{args.runs:,} runs in the store; {args.repeat} starts each")
        paint, peer_paint, change = [], [], []
        for _ in range(args.repeat):
            # the running run is the newest, so it sits in the first row of the table
            screen = Screen([sys.executable, "-m", "blase_tui", "tui", str(root)], root, env)
            try:
                paint.append(screen.wait_for(live[-6:], timeout=60))
                screen.wait_for("running")
                mark = len(screen.buffer)
                con = sqlite3.connect(db)
                written = time.perf_counter()
                with con:
                    con.execute("UPDATE runs SET status = 'interrupted', ended = ? WHERE id = ?", (time.time(), live))
                con.close()
                screen.wait_for("interrupted", after=mark, timeout=10)
                change.append(time.perf_counter() - written)
                con = sqlite3.connect(db)
                with con:
                    con.execute("UPDATE runs SET status = 'running', ended = NULL WHERE id = ?", (live,))
                con.close()
            finally:
                screen.close()
            peer = Screen([sys.executable, "-c", PEER, str(db)], root, env)
            try:
                peer_paint.append(peer.wait_for(newest[-6:], timeout=120))
            finally:
                peer.close()
        ours, theirs, flip = statistics.median(paint), statistics.median(peer_paint), statistics.median(change)
        print(f"{'measure':<44}{'blase':>10}{'DataTable':>12}{'ratio':>8}   target")
        print(f"{'start to runs table painted (s)':<44}{ours:>10.2f}{theirs:>12.2f}{theirs / ours:>7.1f}x   ≤ 1.5 s")
        print(f"{'status change written to shown (s)':<44}{flip:>10.2f}{'-':>12}{'':>8}   ≤ 1 s")
        print(f"all starts: blase {[round(x, 2) for x in paint]}, DataTable {[round(x, 2) for x in peer_paint]}, "
              f"changes {[round(x, 3) for x in change]}")
        r = scroll_while_runs_arrive(root)
        print(f"\nscrolling while {r['arrived']} new runs arrived (10 a second): the highlighted run changed without"
              f" a key at {r['moved']} of {r['checks']} checks (target 0: {'PASS' if r['moved'] == 0 else 'MISS'});"
              f" {r['shown']} shown, {r['lag_median']:.2f} s after written (median; longest {r['lag_max']:.2f} s)")
        report_left_open(left_open(root, args.left_open), args.left_open)
    subprocess.run(["stty", "sane"], check=False, stderr=subprocess.DEVNULL)


def report_left_open(r: dict[str, float], seconds: float) -> None:
    ok = r["shown"] == r["arrived"] and r["top_wrong"] == 0 and r["line_wrong"] == 0
    print(f"\nleft open {seconds:.0f} s at 80×24 while {r['arrived']} runs arrived (1–10 a second): {r['shown']} shown"
          f" ({r['lag_median']:.2f} s after written, median; longest {r['lag_max']:.2f} s); cursor on the first row:"
          f" the top row was not the newest at {r['top_wrong']} of {r['top_checks']} checks; three rows down: the"
          f" highlighted run left its line at {r['line_wrong']} of {r['line_checks']} checks"
          f" — {'PASS' if ok else 'MISS'}")


if __name__ == "__main__":
    main()
