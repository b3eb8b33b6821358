"""Param values written as text (``--set epochs=4``, ``--param lr=0.01``) read as the values they name."""

from __future__ import annotations

import json
from typing import Any

# the statuses of runs and step executions (here, not in runstore, so that light modules can name them)
RUNNING, SUCCEEDED, FAILED, INTERRUPTED, SKIPPED = "running", "succeeded", "failed", "interrupted", "skipped"
STATUSES = (RUNNING, SUCCEEDED, FAILED, INTERRUPTED)


def parse_literal(text: str) -> Any:
    """``--set`` values without a known type: JSON (numbers, true/false, lists) or else the plain string."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    for number in (int, float):  # ".5", "1e-3", "+2": numbers JSON would not accept
        try:
            return number(text)
        except ValueError:
            continue
    try:
        return json.loads(text)
    except ValueError:
        return text


def malformed_json(text: str) -> str | None:
    """Why ``text``, which starts like JSON (``[``, ``{`` or ``"``), does not parse as JSON; None when it parses
    or does not start like JSON (a plain string)."""
    if not text.strip().startswith(("[", "{", '"')):
        return None
    try:
        json.loads(text)
    except ValueError as exc:
        return f"{exc.msg} at character {exc.pos + 1}" if isinstance(exc, json.JSONDecodeError) else str(exc)
    return None


def is_run_param(key: str) -> bool:
    """Params that name a run (``run``, ``cutouts_run``, ``source_run_id``): their values may be given as a
    unique prefix or random tail of a run id, are recorded as the whole id, and link runs in the lineage."""
    return key in ("run", "run_id") or key.endswith(("_run", "_run_id"))


def canonical_set(values: Any) -> list[Any]:
    """A list param declared a set, in one form: sorted (by JSON text when the items are of mixed types),
    without repeats."""
    from blase_tui.store.hashing import canonical_json

    unique = {canonical_json(v): v for v in values}
    try:
        return sorted(unique.values())
    except TypeError:
        return [unique[k] for k in sorted(unique)]


SETS_TAG = "blase.sets."  # + step: the params that step declared sets, comma-separated (for `runs find`)


# keys of metrics and JSON outputs that say when, how long, or in which run: two executions that computed the
# same thing still differ in them
_VOLATILE = {"seconds", "created", "started", "ended", "elapsed", "duration", "time", "timestamp", "run_id",
             "training_run", "training_step_run", "step_run", "host", "pid"}


def is_timing(key: str) -> bool:
    """A metric or JSON key that measures time or names a run (``seconds``, ``epoch_seconds``, ``elapsed``...)."""
    last = key.rsplit("/", 1)[-1].rsplit(".", 1)[-1].lower()
    return last in _VOLATILE or last.endswith(("_seconds", "_time", "_elapsed", "_duration", "_per_s", "_ms"))
