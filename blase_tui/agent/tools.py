"""What the assistant may call: small typed functions over blase's own API, each with the docstring the model
sees. Reading tools never write. Actions (``run_step``, ``run_pipeline``) are ``blase`` commands run as child
processes, so they go through the engine exactly as a user's would (the step's lock, its records), and the
project's code is never imported into the assistant's process.

Arguments arrive as JSON from the model and are validated (pydantic) before anything runs: types, a step that
the project has, param names that could be ones, a run id the store knows. Nothing the model writes reaches a
shell: commands are argument lists.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blase_tui.core.project import Project
from blase_tui.errors import BlaseError

RESULT_LIMIT = 6000  # characters of a tool's answer the model gets (a log is cut to its end)
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,99}")


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoArgs(_Args):
    pass


class ListRuns(_Args):
    step: str | None = Field(None, description="Only runs that executed this step.")
    limit: int = Field(10, ge=1, le=200, description="How many runs, newest first.")


class BestRun(_Args):
    metric: str = Field(description="The metric, as logged (accuracy, val_loss) or as step/metric (train/loss).")
    mode: Literal["max", "min"] = Field("max", description="max for scores such as accuracy, min for losses.")
    step: str | None = Field(None, description="Only runs that executed this step.")


class RunRef(_Args):
    run_id: str = Field(description="A run id, or the unique start of one.")


class StepLog(_Args):
    run_id: str = Field(description="The run.")
    step: str = Field(description="The step whose log to read.")
    tail: int = Field(40, ge=1, le=400, description="How many of the last lines.")
    search: str | None = Field(None, description="Only lines holding this text (case-insensitive).")


class MetricHistory(_Args):
    run_id: str
    step: str
    metric: str


class TwoRuns(_Args):
    a: str = Field(description="The first run.")
    b: str = Field(description="The second run.")


class Lineage(_Args):
    run_id: str
    down: bool = Field(False, description="The runs it fed, instead of those that fed it.")


class DriftReport(_Args):
    run_id: str | None = Field(None, description="The monitor run; default: the newest run with a drift report.")


_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class SetAlias(_Args):
    model: str = Field(pattern=_NAME, description="The model's name.")
    version: int = Field(ge=1, description="The version to point the alias at.")
    alias: str = Field(pattern=_NAME, description="The alias, such as champion or production.")


class LabelRound(_Args):
    strategy: Literal["least_confidence", "margin", "entropy", "random", "diversity", "ordered"] | None = Field(
        None, description="How the round orders the records (default: [labelling] strategy).")
    n: int | None = Field(None, ge=1, le=100_000, description="How many records (default: [labelling] n).")


class RunStep(_Args):
    step: str = Field(description="The step to run.")
    params: dict[str, str | int | float | bool] = Field(default_factory=dict,
                                                        description="Params to set, as --set KEY=VALUE does.")


@dataclass
class Tool:
    name: str
    doc: str
    args: type[_Args]
    fn: Callable[..., Any]
    action: bool = False
    allow_name: str = ""  # what [agent] allowed_steps must list for autonomy auto to run it (run_step: the step)

    def schema(self) -> dict[str, Any]:
        parameters = self.args.model_json_schema()
        parameters.pop("title", None)
        return {"type": "function", "function": {"name": self.name, "description": self.doc,
                                                 "parameters": parameters}}


class Toolbox:
    """The tools over one project."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._steps: list[dict[str, Any]] | None = None
        self.tools = {t.name: t for t in (
            Tool("project_steps", "The project's steps, what each does and its params.", NoArgs, self.project_steps),
            Tool("list_runs", "The newest runs: id, name, status, steps and last metric values.", ListRuns,
                 self.list_runs),
            Tool("best_run", "The run with the best value of a metric (max or min), with its params.", BestRun,
                 self.best_run),
            Tool("show_run", "Everything recorded about one run: status, steps, params, metrics.", RunRef,
                 self.show_run),
            Tool("step_log", "The end of a step's log in a run, or its lines holding a text.", StepLog,
                 self.step_log),
            Tool("metric_history", "Every logged value of a metric of a step in a run (per epoch).", MetricHistory,
                 self.metric_history),
            Tool("pipeline_status", "Each step of the pipeline: whether `blase run` would run it, and why.", NoArgs,
                 self.pipeline_status),
            Tool("diff_runs", "What differs between two runs: params, metrics, code, environment, data.", TwoRuns,
                 self.diff_runs),
            Tool("lineage", "The runs that fed a run (or, with down, those it fed).", Lineage, self.lineage),
            Tool("drift_report", "The newest drift test of a monitor step: which features drifted, p-values, and"
                 " the triggers that fired (and the step they launched).",
                 DriftReport, self.drift_report),
            Tool("models", "Every saved model version with its aliases and metrics.", NoArgs, self.models),
            Tool("label_stats", "Labels per label, per round and per labeller.", NoArgs, self.label_stats),
            Tool("label_rounds", "Every label round: status, strategy, model, progress.", NoArgs, self.label_rounds),
            Tool("run_step", "Run one step of the project (tracked, as `blase step STEP --set KEY=VALUE`).", RunStep,
                 self.run_step, action=True),
            Tool("run_pipeline", "Run the pipeline (`blase run`): each step up to date is reused.", NoArgs,
                 self.run_pipeline, action=True, allow_name="run"),
            Tool("set_alias", "Point MODEL@ALIAS at a version (`blase models alias`).", SetAlias, self.set_alias,
                 action=True, allow_name="alias"),
            Tool("cancel_run", "Stop a running run's step and mark it interrupted (`blase runs cancel`).", RunRef,
                 self.cancel_run, action=True, allow_name="cancel"),
            Tool("start_label_round", "Start a labelling round (the model scores the pool, the records it is least"
                 " sure of first); the user labels it with `blase label` or L in the TUI.", LabelRound,
                 self.start_label_round, action=True, allow_name="label"),
        )}

    # ------------------------------------------------------------------------------------------ calling
    def parse(self, name: str, arguments: str | dict[str, Any] | None) -> tuple[Tool, _Args]:
        """The tool and its validated arguments; a BlaseError naming what is wrong otherwise (it goes back to the
        model as the tool's answer)."""
        tool = self.tools.get(name)
        if tool is None:
            raise BlaseError(f"there is no tool {name!r}; the tools are {', '.join(self.tools)}.")
        try:
            raw = json.loads(arguments) if isinstance(arguments, str) and arguments.strip() else (arguments or {})
            args = tool.args.model_validate(raw)
        except (ValueError, ValidationError) as exc:
            first = str(exc).splitlines()
            raise BlaseError(f"the arguments of {name} are not valid: {' '.join(first[:3])}") from None
        if isinstance(args, RunStep):
            self._check_step(args.step)
            bad = [k for k in args.params if not _PARAM_NAME.fullmatch(k)]
            if bad:
                raise BlaseError(f"{bad[0]!r} is not a param name.")
        return tool, args

    def command(self, tool: Tool, args: _Args) -> list[str]:
        """The ``blase`` command an action runs, as the user would type it."""
        return ["blase", *self._action_args(args)]

    @staticmethod
    def _action_args(args: _Args) -> list[str]:
        if isinstance(args, RunStep):
            return ["step", args.step, *[a for k, v in args.params.items() for a in ("--set", f"{k}={_text(v)}")]]
        if isinstance(args, SetAlias):
            return ["models", "alias", args.model, str(args.version), args.alias]
        if isinstance(args, RunRef):
            return ["runs", "cancel", args.run_id]
        if isinstance(args, LabelRound):
            return ["label", "--plain", *(["--strategy", args.strategy] if args.strategy else []),
                    *(["--n", str(args.n)] if args.n else [])]
        return ["run"]

    def call(self, tool: Tool, args: _Args) -> str:
        """The tool's answer as text for the model (JSON, cut to RESULT_LIMIT)."""
        try:
            result = tool.fn(**args.model_dump())
        except BlaseError as exc:
            result = {"error": str(exc)}
        text = result if isinstance(result, str) else json.dumps(result, default=str)
        return text if len(text) <= RESULT_LIMIT else "…" + text[-RESULT_LIMIT:]

    # ------------------------------------------------------------------------------------------ reading
    def _blase(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "blase_tui", "-C", str(self.project.root), *args],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def project_steps(self) -> list[dict[str, Any]]:
        if self._steps is None:
            self._steps = list(self._json("steps"))  # in a child: the project's code is never imported here
        return self._steps

    def _check_step(self, step: str) -> None:
        names = [s["step"] for s in self.project_steps()]
        if step not in names:
            raise BlaseError(f"the project has no step {step!r}; its steps are {', '.join(names)}.")

    def list_runs(self, step: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
        from blase_tui.store.query import list_runs

        return list_runs(self.project.store, step=step, limit=limit, metrics=8, check=True)

    def best_run(self, metric: str, mode: str = "max", step: str | None = None) -> dict[str, Any]:
        from blase_tui.store.query import run_rows

        best: tuple[float, dict[str, Any]] | None = None
        for row in run_rows(self.project.store):
            if row["status"] != "succeeded" or (step is not None and step not in row["steps"]):
                continue
            values = [v for (s, k), v in row["step_metrics"].items()
                      if (k == metric or f"{s}/{k}" == metric) and (step is None or s == step)]
            if values and isinstance(values[-1], int | float):
                value = float(values[-1])
                if best is None or (value > best[0] if mode == "max" else value < best[0]):
                    best = (value, row)
        if best is None:
            raise BlaseError(f"no succeeded run logged the metric {metric!r}"
                             f"{' in step ' + step if step else ''}.")
        row = best[1]
        return {"run_id": row["id"], "name": row["name"], metric: best[0], "steps": row["steps"],
                "params": row["params"]}

    def _run(self, run_id: str) -> Any:
        from blase_tui import runs

        return runs.get(run_id, project=self.project.root)

    def show_run(self, run_id: str) -> dict[str, Any]:
        return dict(self._run(run_id).as_dict())

    def _step_folder(self, run_id: str, step: str) -> tuple[Any, Path]:
        run = self._run(run_id)
        desc = self.project.store.describe_run(run.id)
        found = [s for s in desc.steps if s.step == step]
        if not found:
            raise BlaseError(f"run {run.id} has no step {step!r}; it ran {', '.join(s.step for s in desc.steps)}.")
        from blase_tui.store.safepath import inside

        return found[-1], inside(self.project.store.run_dir(run.id), found[-1].folder)

    def step_log(self, run_id: str, step: str, tail: int = 40, search: str | None = None) -> str:
        _, folder = self._step_folder(run_id, step)
        try:
            lines = (folder / "log.txt").read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        if search:
            lines = [line for line in lines if search.lower() in line.lower()]
        return "\n".join(lines[-tail:]) or "(nothing)"

    def metric_history(self, run_id: str, step: str, metric: str) -> list[dict[str, Any]]:
        execution, _ = self._step_folder(run_id, step)
        points = self.project.store.metric_series(self._run(run_id).id, execution.id, metric)
        if not points:
            raise BlaseError(f"step {step} of run {run_id} logged no metric {metric!r}.")
        return [{"iteration": p.iteration, "value": p.value} for p in points]

    def pipeline_status(self) -> Any:
        return self._json("status")

    def _json(self, *args: str) -> Any:
        proc = self._blase(*args, "--json")
        if proc.returncode not in (0, 1) or not proc.stdout.strip():
            said = proc.stderr.strip().splitlines()
            raise BlaseError(said[-1].removeprefix("blase: ") if said else f"`blase {' '.join(args)}` failed.")
        return json.loads(proc.stdout)

    def diff_runs(self, a: str, b: str) -> Any:
        return self._json("runs", "diff", a, b)

    def lineage(self, run_id: str, down: bool = False) -> Any:
        return self._json("runs", "lineage", run_id, *(["--down"] if down else []))

    def models(self) -> Any:
        return self._json("models", "list")

    def label_stats(self) -> Any:
        return self._json("label", "stats")

    def label_rounds(self) -> Any:
        return self._json("label", "rounds")

    def drift_report(self, run_id: str | None = None) -> dict[str, Any]:
        from blase_tui.store.query import run_rows

        store = self.project.store
        ids = [self._run(run_id).id] if run_id else [r["id"] for r in sorted(run_rows(store), key=lambda r: -(
            r["started"] or 0))[:50]]
        for rid in ids:
            reports = sorted(store.run_dir(rid).glob("*/artifacts/monitor/drift_*.json"))
            if reports:
                data = json.loads(reports[-1].read_text())
                features = [{k: f.get(k) for k in ("feature", "test", "p_value", "drifted")}
                            for f in data.get("features", [])[:30]]
                triggers = sorted(store.run_dir(rid).glob("*/artifacts/monitor/trigger_*.json"))
                fired = json.loads(triggers[-1].read_text()).get("why", []) if triggers else []
                tags = store.describe_run(rid).tags
                return {"run_id": rid, "report": reports[-1].name, "alpha": data.get("alpha"),
                        "drifted": data.get("drifted", []), "records": data.get("records"), "features": features,
                        "triggers_fired": fired, "launched": tags.get("monitor.launched")}
        raise BlaseError("no run holds a drift report (a monitor step's detect_feature_drift or drift_report).")

    # ------------------------------------------------------------------------------------------ actions
    def run_step(self, step: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._action(self._action_args(RunStep(step=step, params=params)))

    def run_pipeline(self) -> dict[str, Any]:
        return self._action(["run"])

    def set_alias(self, model: str, version: int, alias: str) -> dict[str, Any]:
        return self._action(self._action_args(SetAlias(model=model, version=version, alias=alias)))

    def cancel_run(self, run_id: str) -> dict[str, Any]:
        return self._action(["runs", "cancel", run_id])

    def start_label_round(self, strategy: str | None = None, n: int | None = None) -> dict[str, Any]:
        # `blase label --plain` with no input: the round is made (or the unfinished one found) and left for the
        # user, its first record shown; nothing is labelled
        return self._action(self._action_args(LabelRound(strategy=strategy, n=n)))

    def _action(self, args: list[str]) -> dict[str, Any]:
        proc = self._blase(*args, timeout=24 * 3600)
        said = [line for line in proc.stderr.splitlines() if line.startswith("blase:")]
        return {"exit_code": proc.returncode, "said": said[-5:], "output_tail": proc.stdout.splitlines()[-10:]}


def _text(value: Any) -> str:
    """A param value as ``--set`` takes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
