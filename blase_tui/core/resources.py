"""Resource samples about twice a second: process RSS and CPU (with child processes), system memory and,
where NVML finds a GPU, its utilisation and memory."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

SAMPLE_INTERVAL = 0.5
FIRST_SAMPLE_AFTER = 0.2


def peak_rss_of_process() -> int:
    """This process's peak resident memory since it started its program, in bytes: Linux's ``VmHWM``; 0 where the
    system does not say (then psutil's current figure is taken). Not ``getrusage``'s ``ru_maxrss``, which a
    process started by a large one (a step launched from the TUI, from pytest) inherits from its parent."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def nvidia_driver_absent() -> bool:
    """True where NVML surely finds nothing: a Linux machine with no NVIDIA driver loaded (no
    ``/proc/driver/nvidia``, ``/dev/nvidiactl`` or WSL's ``/dev/dxg``). Importing and starting NVML there costs
    ~10-20 ms of every step's start for nothing; elsewhere NVML itself is asked."""
    if not sys.platform.startswith("linux"):
        return False
    return not any(os.path.exists(p) for p in ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/dxg"))


class GpuProbe:
    """NVML through nvidia-ml-py; ``available`` is False when there is no driver or no GPU."""

    def __init__(self) -> None:
        self.available = False
        self._handles: list[Any] = []
        if nvidia_driver_absent():
            return
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
        self._pid = pid or os.getpid()
        self._psutil: Any = None
        self._proc: Any = None  # psutil is imported by the sampling thread (~8 ms the step's start does not wait)
        self._emit = emit
        self._interval = interval
        self._stop = threading.Event()
        self._gpu: GpuProbe | None = None
        self.peak_rss = 0
        self._cpu_since = time.monotonic()
        self._cores = 1
        self._children: dict[int, Any] = {}  # pid -> psutil.Process of a worker (None: a helper, not counted)
        self._setup_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="blase-resources", daemon=True)

    def _setup(self) -> Any:
        with self._setup_lock:
            if self._proc is None:
                import psutil

                proc = psutil.Process(self._pid)
                proc.cpu_percent(None)
                self._cpu_since = time.monotonic()
                self._cores = psutil.cpu_count() or 1
                self._psutil, self._proc = psutil, proc
        return self._proc

    def start(self) -> ResourceSampler:
        self._thread.start()
        return self

    def sample(self) -> dict[str, Any]:
        self._setup()
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
        # the first sample after FIRST_SAMPLE_AFTER: a step that ends sooner never imports psutil (its peak memory
        # and CPU time then come from the kernel's own counts, in stop() and cpu_seconds())
        if self._stop.wait(FIRST_SAMPLE_AFTER):
            return
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
        own = self._pid == os.getpid()
        if own:
            self.peak_rss = max(self.peak_rss, peak_rss_of_process())
        if self._proc is not None or not own or not self.peak_rss:
            try:
                self.peak_rss = max(self.peak_rss, self._setup().memory_info().rss)
            except self._psutil.Error:
                pass

    def cpu_seconds(self) -> float:
        if self._pid == os.getpid():  # the kernel's count for this process and its waited-for children
            times = os.times()
            return float(times.user + times.system + times.children_user + times.children_system)
        times = self._setup().cpu_times()
        return float(times.user + times.system + times.children_user + times.children_system)
