"""The project's pipeline: its steps in order, whether each is up to date and why not (`blase status`, `blase run
--dry-run`), and running them as one run in one process (`blase run`), each step reused when up to date.

The order is ``[pipeline] steps`` in blase.toml, else the entry module's steps as it defines them. Whether a step
is up to date is what `blase step` decides (same code, params, environment and inputs as an earlier execution,
its outputs still there); the plan adds one thing `blase step` cannot know beforehand: a step that reads what a
step before it writes is stale when that step runs first."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TextIO

from blase_tui.core.engine import StepOutcome, StepRequest, resolve_run_params, reuse_allowed, run_step
from blase_tui.core.execution import StepExecution, say
from blase_tui.core.project import Project
from blase_tui.core.signature import function_hash
from blase_tui.core.steps import StepInfo, as_sets, resolve_params
from blase_tui.errors import EXIT_OK, ConfigError
from blase_tui.store.runstore import RUNNING, SUCCEEDED

UP_TO_DATE, STALE, NEVER_RAN, ALWAYS = "up to date", "stale", "never ran", "always runs"
EVERY = 2**62  # previous_step_runs(step, EVERY): every execution of the step, newest first


@dataclass
class StepPlan:
    """One step of the pipeline: its state, the reasons (for all but up to date) and, when up to date, the run
    whose outputs it would reuse."""

    step: str
    state: str
    reasons: list[str] = field(default_factory=list)
    run_id: str | None = None
    reads: list[str] = field(default_factory=list)  # the steps whose outputs its last execution read (lineage)
    last: dict[str, Any] | None = None  # its latest execution: status (running, failed, …), run, started

    @property
    def runs(self) -> bool:
        return self.state != UP_TO_DATE

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "state": self.state, "runs": self.runs, "reasons": self.reasons,
                "run": self.run_id, "reads": self.reads, "last": self.last}


def pipeline_order(project: Project, steps: dict[str, StepInfo]) -> list[str]:
    """``[pipeline] steps``, else every step of the entry module in the order it defines them."""
    configured = list(project.config.pipeline)
    if not configured:
        return list(steps)
    unknown = [s for s in configured if s not in steps]
    if unknown:
        raise ConfigError(f"{project.config.path}: [pipeline] steps names `{unknown[0]}`, which"
                          f" {project.config.entry} does not define; its steps are {', '.join(steps)}.")
    return configured


def select(order: list[str], names: list[str], start: str | None, stop: str | None) -> list[str]:
    """The steps to run: ``names`` (in pipeline order) or the whole pipeline, cut to ``--from``/``--to``."""
    for name in [*names, *([start] if start else []), *([stop] if stop else [])]:
        if name not in order:
            raise ConfigError(f"`{name}` is not a step of the pipeline ({' → '.join(order)}); `blase status` lists"
                              " them, and [pipeline] steps in blase.toml sets them.")
    chosen = [s for s in order if s in names] if names else list(order)
    if start:
        chosen = [s for s in chosen if order.index(s) >= order.index(start)]
    if stop:
        chosen = [s for s in chosen if order.index(s) <= order.index(stop)]
    if not chosen:
        raise ConfigError(f"--from {start} --to {stop} leaves no step: {start} comes after {stop} in the pipeline"
                          f" ({' → '.join(order)}).")
    return chosen


def split_overrides(sets: list[str], chosen: list[str], steps: dict[str, StepInfo]) -> dict[str, list[str]]:
    """``--set train.epochs=3`` for one step; ``--set epochs=3`` for every chosen step that takes ``epochs``."""
    out: dict[str, list[str]] = {name: [] for name in chosen}
    for item in sets:
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--set {item}: write it as step.key=value, e.g. --set train.epochs=10.")
        step_name, dot, param = key.partition(".")
        if dot:
            if step_name not in out:
                raise ConfigError(f"--set {item}: `{step_name}` is not one of the steps this runs"
                                  f" ({', '.join(chosen)}).")
            out[step_name].append(f"{param}={value}")
            continue
        takers = [n for n in chosen if key in steps[n].defaults or steps[n].accepts_any]
        if not takers:
            raise ConfigError(f"--set {item}: no step this runs takes a param `{key}`; name the step, as"
                              f" --set STEP.{key}={value}.")
        for name in takers:
            out[name].append(item)
    return out


def _params(project: Project, info: StepInfo, overrides: list[str]) -> dict[str, Any]:
    try:
        params = as_sets(info, resolve_params(info, project.config.step_params(info.name), overrides))
    except ConfigError as exc:  # say the override as it was typed: `--set train.max_iter=abc`
        raise ConfigError(typed(str(exc), info.name, overrides)) from None
    return resolve_run_params(project.store, info.name, params)


def typed(message: str, step: str, overrides: list[str]) -> str:
    """``--set max_iter=abc: …`` (a step's override, as its param check words it) as ``--set train.max_iter=abc:
    …``, naming the step, as `blase run` takes it."""
    if any(message.startswith(f"--set {item.partition('=')[0]}") for item in overrides):
        return f"--set {step}.{message[len('--set '):]}"
    return message


def _why_stale(project: Project, info: StepInfo, execution: StepExecution) -> tuple[str, list[str]]:
    """Why no earlier execution of the step can be reused, compared with its latest successful one."""
    store = project.store
    sig = execution.signature()[0]
    done = store.previous_step_runs(info.name, EVERY, status=SUCCEEDED)
    if not done:
        tried = store.previous_step_runs(info.name, EVERY)
        if tried:
            return NEVER_RAN, [f"its only executions ended {tried[0].status} (last in run {tried[0].run_id})"]
        return NEVER_RAN, []
    last = done[0]
    reasons: list[str] = []
    if last.func_hash != sig.func_hash or last.code_hash != sig.code_hash:
        before, now = store.step_code(last.id), execution.code.parts
        changed = sorted(p for p in set(before) | set(now) if before.get(p) != now.get(p))
        reasons.append("code changed: " + (", ".join(changed[:4]) + (" …" if len(changed) > 4 else "")
                                           if changed else f"the function `{info.name}`"))
    # the step's own params against what that execution recorded (its params_hash also covers what its module
    # calls recorded, so it is not compared)
    before = store.step_run_params(last.id)
    diffs = [f"{k} {_short(before.get(k))} → {_short(v)}" for k, v in execution.params.items() if before.get(k) != v]
    if diffs:
        reasons.append("params changed: " + ", ".join(diffs))
    if last.env_hash != sig.env_hash:
        from blase_tui.store.diff import environment_changes, run_environment

        what = environment_changes(run_environment(store, last.run_id, last.env_hash), execution.signature()[1])
        reasons.append(f"the environment changed: {what}" if what else "the environment changed (Python or its"
                                                                       " packages)")
    if not reasons and last.signature != sig.digest:
        reasons.append("params changed: a run it names made other outputs")
    if not reasons:
        reasons = store.reuse_obstacles(last, need_inputs=info.reuse is not True) or ["no earlier execution matches"]
    return STALE, reasons


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 24 else text[:23] + "…"


def plan(project: Project, steps: dict[str, StepInfo], chosen: list[str], overrides: dict[str, list[str]],
         *, force: bool = False) -> list[StepPlan]:
    """For each chosen step, whether `blase run` would run it and why, computed without writing anything."""
    store = project.store
    plans: list[StepPlan] = []
    written: dict[str, str] = {}  # project paths the steps that run write (their last outputs) -> the step
    for name in chosen:
        info = steps[name]
        params = _params(project, info, overrides.get(name, []))
        execution = StepExecution(project, name, params=params, func_hash=function_hash(info.func), func=info.func)
        if force:
            step = StepPlan(name, STALE, ["--force"])
        elif not reuse_allowed(project, info):
            step = StepPlan(name, ALWAYS, ["reuse is off for it (@step(reuse=False) or [project] reuse = false)"])
        else:
            prev = store.find_reusable(execution.signature()[0].digest, need_inputs=info.reuse is not True)
            if prev is not None:
                producer = store.producer(prev)
                upstream = sorted(p for p in store.dataset_paths(producer.id, "input") if p in written)
                if upstream:
                    step = StepPlan(name, STALE, [f"it reads {upstream[0]}, which `{written[upstream[0]]}` writes"
                                                  " and runs first"])
                else:
                    step = StepPlan(name, UP_TO_DATE, run_id=producer.run_id)
            else:
                step = StepPlan(name, *_why_stale(project, info, execution))
        if step.runs:
            last = store.previous_step_runs(name, EVERY, status=SUCCEEDED)
            for path in store.dataset_paths(store.producer(last[0]).id, "output") if last else ():
                written.setdefault(path, name)
        plans.append(step)
    _add_lineage(project, plans)
    return plans


def _add_lineage(project: Project, plans: list[StepPlan]) -> None:
    """Each step's latest execution (running ones included) and the steps whose outputs its last successful one
    read: the edges of the pipeline's graph, as the records show them."""
    store = project.store
    outputs: dict[str, str] = {}  # path -> the step whose latest successful execution wrote it
    inputs: dict[str, set[str]] = {}
    for p in plans:
        done = store.previous_step_runs(p.step, EVERY, status=SUCCEEDED)
        if done:
            producer = store.producer(done[0])
            for path in store.dataset_paths(producer.id, "output"):
                outputs[path] = p.step
            inputs[p.step] = store.dataset_paths(producer.id, "input")
        latest = store.previous_step_runs(p.step, EVERY)
        if latest:
            p.last = {"status": latest[0].status, "run": latest[0].run_id, "started": latest[0].started}
    for p in plans:
        p.reads = sorted({outputs[path] for path in inputs.get(p.step, ()) if outputs.get(path) not in (None, p.step)},
                         key=[q.step for q in plans].index)


def print_plan(plans: list[StepPlan], out: TextIO) -> None:
    width = max(len(p.step) for p in plans)
    for p in plans:
        detail = f"outputs of run {p.run_id}" if p.state == UP_TO_DATE else "; ".join(p.reasons)
        say(out, f"  {p.step:<{width}}  {p.state:<10}  {detail}")


def run_pipeline(project: Project, steps: dict[str, StepInfo], chosen: list[str], overrides: dict[str, list[str]],
                 *, force: bool = False, run_name: str | None = None, quiet: bool = False,
                 out: TextIO) -> tuple[int, list[StepOutcome]]:
    """Run the chosen steps as one run in this process, in order, each reused when up to date; stop at the
    first step that does not succeed (the run is closed, failed or interrupted, as `blase step` would leave
    it). Returns the exit code of the last step that ran and every step's outcome."""
    outcomes: list[StepOutcome] = []
    try:
        for i, name in enumerate(chosen):
            last = i == len(chosen) - 1
            outcome = run_step(project, StepRequest(step=name, start_run=i == 0, end_run=last,
                                                    overrides=overrides.get(name, []), force=force,
                                                    run_name=run_name if i == 0 else None, quiet=quiet),
                               steps=steps, out=out)
            outcomes.append(outcome)
            if outcome.reused_from is not None and outcome.exit_code == EXIT_OK:  # the plan said why already
                producer = project.store.step_run(outcome.reused_from)
                whose = f" of run {producer.run_id}" if producer is not None else ""
                say(out, f"blase: `{name}` is up to date: reusing the outputs{whose}.")
            else:
                say(out, f"blase: {outcome.message}")
            if outcome.exit_code != EXIT_OK:
                left = chosen[i + 1:]
                if left:
                    say(out, f"blase: stopped at `{name}`; not run: {', '.join(left)}.")
                return outcome.exit_code, outcomes
        return EXIT_OK, outcomes
    finally:
        # a step that failed, a lock another process holds, ^C between steps: the run this opened is closed
        # (failed or interrupted, as its steps say), never left open for the next --start-run to trip on
        if outcomes:
            run = project.store.get_run(outcomes[-1].run_id)
            if run is not None and run.status == RUNNING:
                project.store.close_run(run.id)
