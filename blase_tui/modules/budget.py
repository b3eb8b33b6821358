"""The memory budget: which budget applies, and every share of it that a module may take.

The one default is ``DEFAULT_MEMORY_BUDGET`` in ``core/config.py`` (``blase.toml`` reads it there; it is
re-exported here as ``DEFAULT_BUDGET``). The budget that applies (``resolve_budget``): one given to the module,
else the running step's (``[steps.NAME]``, else ``[project]`` of ``blase.toml``), else, outside a step, the
project's that the working directory is in (a notebook batches as a step would), else the default.

The shares of it, defined here and nowhere else (docs/concepts.md#memory-budget):

- ``SHARE``: a streamed **batch** takes a quarter. A streaming step holds more than one batch at a time: the
  batch being read, its transformed copy, the writer's buffer and the reader's decode buffers, so that the
  step's peak stays under the whole budget. ``records_per_batch`` turns it into records.
- ``JOIN_SHARE``: Prepare's **joined sources** (every source but the first, held whole while the first one
  streams) take half.
- ``WHOLE_SHARE``: a **whole training split** (an estimator without ``partial_fit``) takes all of it; nothing
  streams meanwhile.
- an executor's **worker** holds one batch at a time from its own share, ``per_worker``: the budget split
  between the workers.
"""

from __future__ import annotations

from blase_tui.core.config import DEFAULT_MEMORY_BUDGET, parse_bytes
from blase_tui.modules import recording

DEFAULT_BUDGET = DEFAULT_MEMORY_BUDGET
SHARE = 4  # a streamed batch: a quarter of the budget
JOIN_SHARE = 2  # Prepare's joined sources, held whole: half
WHOLE_SHARE = 1  # a training split fitted whole: all of it


def resolve_budget(memory_budget: int | str | None = None) -> int:
    """An explicit budget, else the running step's, else the working directory's project's (``blase.toml``),
    else the default (``recording.memory_budget``)."""
    if memory_budget is not None:
        return parse_bytes(memory_budget, what="memory_budget")
    return recording.memory_budget()


def share_of(memory_budget: int, share: int = SHARE) -> int:
    """Bytes that ``1 / share`` of ``memory_budget`` is (``SHARE``: one batch; ``JOIN_SHARE``, ``WHOLE_SHARE``)."""
    return max(1, int(memory_budget) // max(1, int(share)))


def records_per_batch(bytes_per_record: float, memory_budget: int, *, share: int = SHARE,
                      min_rows: int = 1, max_rows: int | None = None) -> int:
    """How many records of ``bytes_per_record`` fit in one batch, ``1 / share`` of ``memory_budget``: at least
    ``min_rows`` (and 1), at most ``max_rows`` when given. Every reader, through ``Extract._size``, and every
    module that sizes batches from the budget calls this and nothing else."""
    rows = max(1, int(memory_budget / share / max(bytes_per_record, 1.0)), int(min_rows))
    return min(rows, int(max_rows)) if max_rows is not None else rows


def per_worker(memory_budget: int, workers: int | None) -> int:
    """One worker's share of ``memory_budget`` when ``workers`` processes split it (None or < 1: one)."""
    return max(1, int(memory_budget) // max(1, int(workers or 1)))


def read_block_bytes(memory_budget: int, *, least: int = 1 << 16, most: int = 1 << 28) -> int:
    """Bytes of text a streaming parser (CSV) reads at a time: half a batch's share, since the text turns into
    about as many bytes of Arrow data; within [``least``, ``most``] (a block must hold a whole row)."""
    return int(min(max(share_of(memory_budget) // 2, least), most))
