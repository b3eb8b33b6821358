"""`blase runs watch`: tail the event files of a run's step executions. On a terminal: live progress bars;
otherwise plain lines (no ANSI codes), suitable for logs."""

from __future__ import annotations

import time
from typing import Any

from blase_tui.cli.common import console
from blase_tui.core.fmt import progress_text, resources_text
from blase_tui.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from blase_tui.store.events import EventTail
from blase_tui.store.runstore import RunStore


class _Follower:
    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.tails: dict[int, tuple[str, EventTail]] = {}

    def poll(self) -> list[tuple[str, dict[str, Any]]]:
        for s in self.store.step_runs(self.run_id):
            if s.id not in self.tails:
                path = self.store.run_dir(self.run_id) / s.folder / "events.jsonl"
                self.tails[s.id] = (s.step, EventTail(path))
        out = []
        for step, tail in self.tails.values():
            out.extend((step, e) for e in tail.poll())
        return out

    def finished(self) -> tuple[bool, int]:
        run = self.store.get_run(self.run_id)
        steps = self.store.step_runs(self.run_id)
        if any(s.status == "running" for s in steps):
            return False, EXIT_OK
        if run.status == "running" and not steps:
            return False, EXIT_OK
        last = steps[-1].status if steps else run.status
        code = {"failed": EXIT_FAILED, "interrupted": EXIT_INTERRUPTED}.get(last, EXIT_OK)
        return True, code


def watch(store: RunStore, run_id: str, *, interval: float = 0.25, live: bool = False) -> int:
    follower = _Follower(store, run_id)
    if live:
        return _watch_live(follower, interval)
    return _watch_plain(follower, interval)


def _watch_plain(f: _Follower, interval: float) -> int:
    last_progress: dict[tuple[str, str], float] = {}
    ended: set[tuple[str, str]] = set()
    last_resources = 0.0
    print(f"watching run {f.run_id}", flush=True)
    while True:
        done, code = f.finished()
        for step, e in f.poll():
            kind = e.get("type")
            stamp = time.strftime("%H:%M:%S", time.localtime(e.get("t", time.time())))
            line = None
            if kind == "progress":
                key = (step, e["stage"])
                if key in ended:
                    continue  # a stage's end is printed once
                if e.get("finished") or e.get("t", 0) - last_progress.get(key, 0) >= 1.0:
                    last_progress[key] = e.get("t", 0)
                    line = progress_text(e)
                    if e.get("finished"):
                        ended.add(key)
            elif kind == "resources":
                if e.get("t", 0) - last_resources >= 5.0:
                    last_resources = e.get("t", 0)
                    line = resources_text(e)
            elif kind == "log":
                line = f"[{e.get('level')}] {e.get('message')}"
            elif kind == "metric":
                it = f" @{e['iteration']}" if e.get("iteration") is not None else ""
                line = f"metric {e['key']}={e['value']:.6g}{it}"
            elif kind == "status":
                line = f"status {e['status']}"
            if line is not None:  # `train epoch 1/8 …` names its step already: not `train train epoch 1/8`
                print(f"{stamp} {line}" if line.startswith(step + " ") else f"{stamp} {step} {line}", flush=True)
        if done:
            return code
        time.sleep(interval)


def _watch_live(f: _Follower, interval: float) -> int:
    from rich.console import Group
    from rich.live import Live
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    bars = Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
    )
    tasks: dict[tuple[str, str], Any] = {}
    resources = Text("waiting for resource samples...")
    logs: list[str] = []
    header = Text(f"run {f.run_id}", style="bold")
    with Live(Group(header, bars, resources, Text("")), console=console, refresh_per_second=8) as live:
        while True:
            done, code = f.finished()
            for step, e in f.poll():
                kind = e.get("type")
                if kind == "progress":
                    key = (step, e["stage"])
                    rate = f"{e.get('rate') or 0:.1f} {e.get('unit', 'items')}/s"
                    if key not in tasks:
                        tasks[key] = bars.add_task(f"{step}: {e['stage']}", total=e.get("total"), rate=rate)
                    bars.update(tasks[key], completed=e.get("done", 0), total=e.get("total"), rate=rate)
                elif kind == "resources":
                    resources = Text(resources_text(e), style="dim")
                elif kind == "log":
                    logs.append(f"{step}: {e.get('message')}")
                elif kind == "metric":
                    logs.append(f"{step}: {e['key']} = {e['value']:.6g}")
                elif kind == "status" and e["status"] != "running":
                    logs.append(f"{step}: {e['status']}")
            logs = logs[-8:]
            live.update(Group(header, bars, resources, Text("\n".join(logs))))
            if done:
                return code
            time.sleep(interval)
