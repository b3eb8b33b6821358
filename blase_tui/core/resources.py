"""Resource samples about twice a second: process RSS and CPU (with child processes), system memory and,
where NVML finds a GPU, its utilisation and memory."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

SAMPLE_INTERVAL = 0.5


class GpuProbe:
    """NVML through nvidia-ml-py; ``available`` is False when there is no driver or no GPU."""

    def __init__(self) -> None:
        self.available = False
        self._handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            self.available = bool(self._handles)
        except Exception:  # no library, no driver, no device: all mean "no GPU"
            self.available = False

    def sample(self) -> list[dict[str, Any]]:
        out = []
        for index, handle in enumerate(self._handles):
            try:
                util = self._nvml.nvmlDeviceGetUtilizationRates(handle)
                mem = self._nvml.nvmlDeviceGetMemoryInfo(handle)
                out.append({"index": index, "util": util.gpu, "mem_used": mem.used, "mem_total": mem.total})
            except Exception:
                continue
        return out


def _helper(child: Any) -> bool:
    """multiprocessing's resource tracker and the like: processes that are not doing the step's work."""
    try:
        return "resource_tracker" in " ".join(child.cmdline())
    except Exception:  # gone, or not ours to read
        return True


class ResourceSampler:
    """Calls ``emit(fields)`` every ``interval`` seconds from a daemon thread; keeps the peak RSS."""

    def __init__(self, emit: Callable[..., None], *, interval: float = SAMPLE_INTERVAL, pid: int | None = None) -> None:
        import psutil

        self._psutil = psutil
        self._proc = psutil.Process(pid or os.getpid())
        self._emit = emit
        self._interval = interval
        self._stop = threading.Event()
        self._gpu: GpuProbe | None = None
        self.peak_rss = 0
        self._proc.cpu_percent(None)
        self._cpu_since = time.monotonic()
        self._cores = psutil.cpu_count() or 1
        self._children: dict[int, Any] = {}  # pid -> psutil.Process of a worker (None: a helper, not counted)
        self._thread = threading.Thread(target=self._loop, name="blase-resources", daemon=True)

    def start(self) -> ResourceSampler:
        self._thread.start()
        return self

    def sample(self) -> dict[str, Any]:
        psutil = self._psutil
        rss = self._proc.memory_info().rss
        # psutil divides CPU time by the wall time since the last call: over a few milliseconds (a step that
        # ends at once) that ratio is noise, so a sample that short says nothing, and none exceeds all cores
        now = time.monotonic()
        cpu = 0.0
        measure_cpu = now - self._cpu_since >= 0.05
        if measure_cpu:
            cpu = self._proc.cpu_percent(None)
            self._cpu_since = now
        workers = []  # the processes the step started (an executor's workers, a Transform pool), each's memory
        try:
            children = self._proc.children(recursive=True)
        except psutil.Error:
            children = []
        for child in children:
            known = self._children.get(child.pid, 0)
            if known == 0:
                known = self._children[child.pid] = None if _helper(child) else child
                if known is not None:
                    known.cpu_percent(None)  # its CPU counts from the next sample
            if known is None:
                continue
            try:
                workers.append(known.memory_info().rss)
                if measure_cpu:
                    cpu += known.cpu_percent(None)
            except psutil.Error:
                continue
        cpu = min(cpu, 100.0 * self._cores)
        rss += sum(workers)
        self.peak_rss = max(self.peak_rss, rss)
        vm = psutil.virtual_memory()
        fields: dict[str, Any] = {
            "rss": rss, "cpu": cpu, "sys_mem_used": vm.total - vm.available, "sys_mem_total": vm.total,
        }
        if workers:
            fields["workers"] = workers
        if self._gpu is None:
            self._gpu = GpuProbe()
        fields["gpu"] = self._gpu.sample() if self._gpu.available else None
        return fields

    def _loop(self) -> None:
        while True:
            try:
                self._emit("resources", **self.sample())
            except Exception:  # a failed sample must never hurt the step
                pass
            if self._stop.wait(self._interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            self.peak_rss = max(self.peak_rss, self._proc.memory_info().rss)
        except self._psutil.Error:
            pass

    def cpu_seconds(self) -> float:
        times = self._proc.cpu_times()
        return float(times.user + times.system + times.children_user + times.children_system)
