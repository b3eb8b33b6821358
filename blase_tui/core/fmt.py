"""Human formats shared by the CLI and the TUI: times, durations, sizes, values, status colours, and one-line
summaries of progress and resource events. Plain strings only, so any front end can use them."""

from __future__ import annotations

import json
import time
from typing import Any

STATUS_STYLE = {"succeeded": "green", "failed": "red", "interrupted": "yellow", "running": "cyan"}


def fmt_time(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def fmt_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def fmt_duration(start: float | None, end: float | None, now: float | None = None) -> str:
    if not start:
        return "-"
    return fmt_seconds((end or (now if now is not None else time.time())) - start)


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if v is None:
        return "-"
    return v if isinstance(v, str) else json.dumps(v)


def gpu_text(e: dict[str, Any]) -> str:
    """The GPU part of a resource sample, or plainly "no GPU"."""
    gpus = e.get("gpu")
    if not gpus:
        return "no GPU"
    return "  ".join(
        f"gpu{i} {g.get('util', 0)}% {fmt_bytes(g.get('mem_used'))}/{fmt_bytes(g.get('mem_total'))}"
        for i, g in enumerate(gpus)
    )


def resources_text(e: dict[str, Any]) -> str:
    """One line for a ``resources`` event."""
    workers = f"  ({workers_text(e['workers'])})" if e.get("workers") else ""
    return (f"rss {fmt_bytes(e.get('rss'))}{workers}  cpu {e.get('cpu', 0):.0f}%  "
            f"system memory {fmt_bytes(e.get('sys_mem_used'))}/{fmt_bytes(e.get('sys_mem_total'))}  {gpu_text(e)}")


def workers_text(workers: list[int]) -> str:
    """The memory of the processes a step started: each one's up to four, else the largest and the total."""
    if len(workers) <= 4:
        return f"{len(workers)} worker{'s' if len(workers) > 1 else ''}: " + ", ".join(fmt_bytes(w) for w in workers)
    return f"{len(workers)} workers: largest {fmt_bytes(max(workers))}, all {fmt_bytes(sum(workers))}"


def eta_seconds(e: dict[str, Any]) -> float | None:
    """Seconds left for a ``progress`` event with a total, at its average rate (counting the part of the unit
    under way, ``within``)."""
    total, rate = e.get("total"), e.get("rate") or 0
    done = e.get("done", 0) + (e.get("within") or 0)
    if total and rate > 0 and done < total:
        return (total - done) / rate
    return None


def progress_text(e: dict[str, Any]) -> str:
    """One line for a ``progress`` event: stage, done/total, percent, rate and ETA."""
    total = e.get("total")
    done = e.get("done", 0)
    pct = f" ({100 * done / total:.0f}%)" if total else ""
    eta = eta_seconds(e)
    eta_s = f", eta {eta:.0f} s" if eta is not None else ""
    rate = rate_text(e.get("rate") or 0, e.get("unit", "items"))
    return f"{e['stage']} {done}/{total if total is not None else '?'}{pct} {rate}{eta_s}"


def rate_text(rate: float, unit: str) -> str:
    """A rate that never reads 0 while work is done: ``1,234 records/s``, ``2.5 epochs/s``, ``4.2 s/epoch``."""
    if rate <= 0:
        return f"0 {unit}/s"
    if rate >= 100:
        return f"{rate:,.0f} {unit}/s"
    if rate >= 1:
        return f"{rate:.3g} {unit}/s"
    return f"{1 / rate:.3g} s/{singular(unit)}"


def singular(unit: str) -> str:
    """One of ``unit``: ``epochs`` → ``epoch``, ``batches`` → ``batch``, ``files`` → ``file``; a unit that is
    not an English plural stays as it is (``MiB``, ``data``)."""
    if len(unit) > 3 and unit.endswith(("ches", "shes", "sses", "xes", "zzes")):
        return unit[:-2]
    if len(unit) > 3 and unit.endswith("ies"):
        return unit[:-3] + "y"
    if len(unit) > 1 and unit.endswith("s") and not unit.endswith("ss"):
        return unit[:-1]
    return unit


def fmt_path(path: Any) -> str:
    """A folder as people write it: under the home folder as ``~/projects/digits``, elsewhere absolute."""
    import os

    text = str(path)
    home = os.path.expanduser("~")
    if home not in ("", "/", "~") and (text == home or text.startswith(home.rstrip(os.sep) + os.sep)):
        return "~" + text[len(home.rstrip(os.sep)):]
    return text


def fmt_run_tail(run_id: str) -> str:
    """A run id's random tail (``20261118-130640000-g7h8i9`` → ``g7h8i9``): short, and every command takes it
    (``blase runs show g7h8i9``)."""
    return run_id.rsplit("-", 1)[-1]


def fmt_hash(digest: Any) -> str:
    """A content hash as everywhere in blase: its first 12 hex digits, without the algorithm's name (all are
    xxh3): ``xxh3:41fdb51ba2a9746d...`` and ``41fdb51ba2a9746d...`` both read ``41fdb51ba2a9``."""
    if not digest:
        return "-"
    return str(digest).rpartition(":")[2][:12]


def cell(section: str, value: Any) -> str | None:
    """A diff value as short text: hashes cut to 12 hex digits; None for a value one run does not have."""
    if value is None:
        return None
    if section in ("code", "data", "git") and isinstance(value, str) and len(value) > 20:
        return fmt_hash(value)
    return fmt_value(value)


LOWER_IS_BETTER = ("loss", "error", "rmse", "mae", "mse", "seconds", "time")


def lower_is_better(metric: str) -> bool:
    """Whether less of ``metric`` is better (losses, errors, times), as the runs table sorts and compare marks;
    a step's name (``train_time/accuracy``) plays no part."""
    name = metric.rsplit("/", 1)[-1].lower()
    return any(word in name for word in LOWER_IS_BETTER)


def delta_text(metric: str, a: Any, b: Any) -> tuple[str, str] | None:
    """``b - a`` for two numbers, with whether B is better than A for ``metric``: (text, "better" | "worse" |
    "same"); None when either is not a number."""
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, int | float) or not isinstance(b, int | float):
        return None
    d = float(b) - float(a)
    if d == 0:
        return "0", "same"
    better = d < 0 if lower_is_better(metric) else d > 0
    return f"{d:+.3g}", "better" if better else "worse"
