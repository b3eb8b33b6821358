"""Batch sizes from a memory budget.

A streaming step holds more than one batch at a time: the batch being read, the transformed copy, the
writer's buffer and the reader's decode buffers. A batch is therefore sized to a quarter of the budget
(``SHARE``), so that the step's peak stays under the whole budget. Workers split the budget between them.
"""

from __future__ import annotations

from blase_tui.core.config import parse_bytes
from blase_tui.modules import recording

DEFAULT_BUDGET = recording.DEFAULT_BUDGET
SHARE = 4


def resolve_budget(memory_budget: int | str | None = None) -> int:
    """An explicit budget, else the running step's (``blase.toml``), else 512 MiB."""
    if memory_budget is not None:
        return parse_bytes(memory_budget, what="memory_budget")
    return recording.memory_budget()


def records_per_batch(bytes_per_record: float, memory_budget: int, *, share: int = SHARE) -> int:
    """How many records of ``bytes_per_record`` fit in one batch under ``memory_budget``."""
    return max(1, int(memory_budget / share / max(bytes_per_record, 1.0)))
