"""What this machine is doing for blase: every running step of every known project (the registry), with its
process's memory and CPU, and the host's CPU, memory and GPUs (the TUI's system view)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def running_steps() -> list[dict[str, Any]]:
    """The running step executions of the registry's projects, oldest first: project, run, step, started, pid,
    host, and (on this host) the process's resident memory and whether it is alive."""
    import psutil

    from blase_tui.core import registry
    from blase_tui.store import procs
    from blase_tui.store.runstore import RunStore

    here = procs.hostname()
    out = []
    for p in registry.list_projects():
        root = Path(p["path"])
        if not p["exists"] or not (root / "runs" / "blase.db").exists():
            continue
        try:
            store = RunStore(root)
        except Exception:  # a damaged store must not hide the others
            continue
        try:
            for r in store.running_step_runs():
                row = {"project": p["name"], "root": str(root), "run_id": r.run_id, "step": r.step,
                       "started": r.started, "pid": r.pid, "host": r.host, "rss": None, "cpu": None}
                if r.host in (None, here) and procs.is_alive(r.pid, r.pid_started, r.host):
                    try:
                        proc = psutil.Process(r.pid)
                        row["rss"] = proc.memory_info().rss + sum(
                            c.memory_info().rss for c in proc.children(recursive=True))
                        row["cpu"] = proc.cpu_times().user + proc.cpu_times().system
                    except psutil.Error:
                        pass
                out.append(row)
        finally:
            store.close()
    return sorted(out, key=lambda r: r["started"] or 0)


_GPU: list[Any] = []  # one NVML probe per process: initialising NVML on every read is slow


def host() -> dict[str, Any]:
    """The machine: CPU use (percent of all cores since the last call), memory, each GPU (NVML)."""
    import psutil

    from blase_tui.core.resources import GpuProbe

    vm = psutil.virtual_memory()
    if not _GPU:
        _GPU.append(GpuProbe())
    gpu = _GPU[0]
    return {"cpu": psutil.cpu_percent(None), "cores": psutil.cpu_count() or 1, "mem_used": vm.total - vm.available,
            "mem_total": vm.total, "gpus": gpu.sample() if gpu.available else [], "at": time.time()}
