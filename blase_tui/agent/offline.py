"""Recommendations without a model (`blase agent --offline`, and what `blase agent` says when no endpoint
answers): rules over the same records the assistant's tools read.

- a training whose validation loss rose for the last few epochs: overfitting;
- a step whose newest execution failed: its last error and where its log is;
- steps `blase run` would run, and why (stale code, params, inputs, environment);
- drift flagged by a monitor step with no step run since to act on it;
- a label round drawn at random because the model scored every record alike;
- a step that ran with a GPU present but left it idle.
"""

from __future__ import annotations

from typing import Any

from blase_tui.agent.tools import Toolbox
from blase_tui.core.project import Project
from blase_tui.errors import BlaseError

RISING = 3  # epochs in a row a validation loss must rise to be called overfitting
LOSS_KEYS = ("val_loss", "validation_loss", "val/loss")


def recommendations(project: Project, toolbox: Toolbox | None = None) -> list[str]:
    """One line per finding, the most pressing first; empty when nothing calls for attention."""
    toolbox = toolbox or Toolbox(project)
    out: list[str] = []
    out += _failures(project)
    out += _overfitting(project)
    out += _drift(project)
    out += _flat_rounds(toolbox)
    out += _idle_gpu(project)
    out += _stale(toolbox)
    return out


def _latest_executions(project: Project) -> dict[str, tuple[str, Any]]:
    """Each step's newest execution: ``{step: (run id, StepRun)}``."""
    return {e.step: (e.run_id, e) for e in project.store.newest_step_runs()}


def _failures(project: Project) -> list[str]:
    out = []
    for step, (run_id, execution) in _latest_executions(project).items():
        if execution.status == "failed":
            error = (execution.error or "no error recorded").strip().splitlines()[-1][:200]
            out.append(f"step {step} failed in its newest run {run_id}: {error}. Its log: `blase runs show {run_id}`"
                       f" (logs tab in `blase tui`); fix it and run `blase step {step}` again.")
    return out


def _overfitting(project: Project) -> list[str]:
    out = []
    store = project.store
    for step, (run_id, execution) in _latest_executions(project).items():
        if execution.status != "succeeded":
            continue
        for key in LOSS_KEYS:
            values = [p.value for p in store.metric_series(run_id, execution.id, key)]
            if len(values) < RISING + 1:
                continue
            best = min(range(len(values)), key=values.__getitem__)
            rising = len(values) - 1 - best
            if rising >= RISING and all(b > a for a, b in zip(values[best:], values[best + 1:], strict=False)):
                out.append(f"step {step} of run {run_id}: {key} rose for the last {rising} epochs after its"
                           f" lowest, {values[best]:.4g} at epoch {best + 1}: the model overfits. Keep that epoch's"
                           f" weights (Train keeps the best epoch when it has validation data) or train for"
                           f" {best + 1} epochs (`blase step {step} --set epochs={best + 1}`).")
                break
    return out


def _drift(project: Project) -> list[str]:
    out = []
    store = project.store
    newest = _latest_executions(project)
    for step, (run_id, execution) in newest.items():
        if execution.status != "succeeded":
            continue
        flagged = store.step_metrics(execution.id, ["drift/features"]).get("drift/features", 0.0)
        if flagged and flagged > 0:
            later = [s for s, (_, e) in newest.items() if s != step and (e.started or 0) > (execution.started or 0)]
            if not later:
                out.append(f"step {step} flagged drift in {int(flagged)} feature(s) in run {run_id}, and no step"
                           " has run since: retrain (your update step, `blase run`) or look at the drift report"
                           f" (`blase runs show {run_id}`).")
    return out


IDLE_UTIL = 10.0  # percent: below this on average, a GPU is idle
IDLE_SAMPLES = 10  # resource samples (~5 s) a step must have run with a GPU before it is judged


def gpu_idle(samples: list[dict[str, Any]]) -> tuple[float, int] | None:
    """``(mean utilisation %, samples)`` of the GPUs in a step's ``resources`` events when it ran long enough with
    one present and left it idle; None otherwise (no GPU, too short, or busy)."""
    utils = [sum(g.get("util", 0) for g in s["gpu"]) / len(s["gpu"]) for s in samples if s.get("gpu")]
    if len(utils) < IDLE_SAMPLES:
        return None
    mean = sum(utils) / len(utils)
    return (mean, len(utils)) if mean < IDLE_UTIL else None


def _idle_gpu(project: Project) -> list[str]:
    from blase_tui.store.events import json_objects

    out = []
    store = project.store
    for step, (run_id, execution) in _latest_executions(project).items():
        events = store.run_dir(run_id) / execution.folder / "events.jsonl"
        if not events.is_file():
            continue
        samples = [e for _, e in json_objects(events, marks=[b'"resources"']) if e.get("type") == "resources"]
        found = gpu_idle(samples)
        if found is not None:
            mean, n = found
            out.append(f"step {step} of run {run_id} ran with a GPU that stayed idle ({mean:.0f}% busy on average over"
                       f" {n} samples): the model may be on the CPU (Train(device=\"cuda\"), or check"
                       " torch.cuda.is_available()), or the data feed is the bottleneck (larger batches, more"
                       " loader workers).")
    return out


def _flat_rounds(toolbox: Toolbox) -> list[str]:
    """The newest label round, when its model scored every record alike (so the round is a random draw)."""
    try:
        rounds = toolbox.label_rounds()
    except BlaseError:
        return []
    if not isinstance(rounds, list) or not rounds:
        return []
    newest = max(rounds, key=lambda r: r.get("number", 0))
    if not str(newest.get("order", "")).endswith("random order"):
        return []
    model = newest.get("model") or "the model"
    return [f"label round {newest.get('number')}: {model} scores every record alike, so the round is a random draw,"
            " not the records it is least sure of: label this round, retrain with the new labels (your training"
            " step), and the next round ranks by uncertainty."]


def _stale(toolbox: Toolbox) -> list[str]:
    try:
        status = toolbox.pipeline_status()
    except BlaseError:
        return []
    rows = status.get("steps", []) if isinstance(status, dict) else []
    stale = [r for r in rows if r.get("runs")]
    if not stale:
        return []
    why = "; ".join(f"{r['step']}: {', '.join(map(str, r.get('reasons') or [])) or r.get('state', '')}"
                    for r in stale[:6])
    return [f"`blase run` would run {len(stale)} step(s): {why}."]
