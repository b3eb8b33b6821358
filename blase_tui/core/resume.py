"""``blase step NAME --resume``: which earlier execution's checkpoint a resume continues, and whether this
execution's params are those the checkpoint was made with.

The rule (docs/training.md#checkpoints-and-resume): a resume continues the checkpoint of the newest earlier
execution of the step that left one. Every param of the step that both that execution and this one recorded
must be equal, except those in :data:`FREE` (``epochs``: a resume may raise it to train further;
``memory_budget``: it sizes the batches data is read in, not the model). A difference is refused (a
``ConfigError``, before anything is recorded) unless ``--resume-any`` is given: then this execution takes the
checkpoint's values, so what it records is what the model was trained with.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from blase_tui.errors import ConfigError
from blase_tui.store.hashing import canonical_json

if TYPE_CHECKING:
    from blase_tui.store.runstore import RunStore

CHECKPOINTS = "checkpoints"  # the folder of a step execution a checkpoint is written to (Train's)
FREE = ("epochs", "memory_budget")  # params a resume may change


@dataclass(frozen=True)
class Checkpointed:
    """The earlier execution whose checkpoint a resume continues."""

    run_id: str
    step_run_id: int
    step_folder: str  # its folder in the run
    folder: Path  # its ``checkpoints`` folder


def checkpointed(store: RunStore, step: str, before: int | None = None) -> Checkpointed | None:
    """The newest execution of ``step`` (with an id below ``before``) that left a file in its checkpoints
    folder: the one ``--resume`` continues, for the engine's check and for ``Train`` alike."""
    for row in store.previous_step_runs(step, sys.maxsize if before is None else before):
        folder = store.run_dir(row.run_id) / row.folder / CHECKPOINTS
        try:
            if folder.is_dir() and any(p.is_file() for p in folder.iterdir()):
                return Checkpointed(row.run_id, int(row.id), row.folder, folder)
        except OSError:
            continue
    return None


def recorded_params(store: RunStore, source: Checkpointed) -> dict[str, Any]:
    """The step params that execution ran with: those of its ``command.json`` (exactly the step's own), else
    the params it recorded."""
    command = store.step_command(source.run_id, source.step_folder)
    if isinstance(command, dict) and isinstance(command.get("params"), dict):
        return dict(command["params"])
    return store.step_run_params(source.step_run_id)


def _same(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    return canonical_json(a) == canonical_json(b)


def _text(value: Any) -> str:
    """A value as ``--set`` takes it."""
    return value if isinstance(value, str) else canonical_json(value)


def check_params(store: RunStore, step: str, params: dict[str, Any], *, any_params: bool,
                 out: TextIO | None = None) -> dict[str, Any]:
    """The params a resumed execution of ``step`` runs with: ``params`` when they agree with those of the
    checkpoint it continues (or there is none); with ``any_params`` (``--resume-any``) the checkpoint's values
    where they differ, said in one line on ``out``; else a ``ConfigError`` naming both and the fix."""
    source = checkpointed(store, step)
    if source is None:
        return params
    made = recorded_params(store, source)
    differ = [k for k in params if k not in FREE and k in made and not _same(params[k], made[k])]
    if not differ:
        return params
    theirs = ", ".join(f"{k}={_text(made[k])}" for k in differ)
    ours = ", ".join(f"{k}={_text(params[k])}" for k in differ)
    if not any_params:
        sets = " ".join(f"--set {k}={_text(made[k])}" for k in differ)
        raise ConfigError(
            f"--resume: the checkpoint in run {source.run_id} was made with {theirs}, this execution has {ours};"
            f" run with {sets}, or --resume-any to continue it with the checkpoint's params.")
    if out is not None:
        out.write(f"blase: --resume-any: continuing the checkpoint in run {source.run_id} with the params it was"
                  f" made with, {theirs} (not {ours}); those are what this execution records.\n")
        out.flush()
    return {**params, **{k: made[k] for k in differ}}
