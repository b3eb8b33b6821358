"""`blase.toml`: reading, validating and finding the project that a working directory belongs to."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase_tui.errors import ConfigError

CONFIG_NAME = "blase.toml"
DEFAULT_MEMORY_BUDGET = 2 * 1024**3
DEFAULT_KEEP_OUTPUTS = 2 * 1024**3  # an output dataset up to this size is kept by content (runs restore)

_SECTIONS = {
    "project": "name, entry, memory_budget, description, scripts, reuse, keep_outputs",
    "steps": "one [steps.NAME] table of params per step",
    "pipeline": "steps: the steps `blase run` runs, in order",
    "labelling": "the active-learning setup",
    "plugins": "enabled plugins",
    "monitor": "Monitor's settings and [monitor.triggers]",
    "executor": "where steps' data work runs (a plugin such as dask)",
    "agent": "the assistant's endpoint, model and autonomy (blase agent)",
}
_PROJECT_KEYS = {"name", "entry", "memory_budget", "description", "scripts", "reuse", "keep_outputs"}
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "t": 1000**4, "tb": 1000**4, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}


def parse_bytes(value: Any, *, what: str = "memory_budget") -> int:
    """Turn ``"2GiB"``, ``"512 MB"`` or ``1073741824`` into a number of bytes."""
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be a size such as \"2GiB\" or a number of bytes, not {value!r}.")
    if isinstance(value, int | float) and value > 0:
        return int(value)
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
    if match and match.group(2).lower() in _UNITS and float(match.group(1)) > 0:
        return int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    raise ConfigError(f"{what} must be a size such as \"2GiB\" or a number of bytes, not {value!r}.")


@dataclass(frozen=True)
class ProjectConfig:
    """The validated contents of a project's ``blase.toml``."""

    root: Path
    name: str
    entry: str = "main.py"
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    description: str = ""
    scripts: tuple[str, ...] = ()
    reuse: bool = True  # false: no step of the project is ever reused
    keep_outputs: int = DEFAULT_KEEP_OUTPUTS  # bytes of one output dataset kept by content; 0: none
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    labelling: dict[str, Any] = field(default_factory=dict)
    plugins: dict[str, Any] = field(default_factory=dict)
    monitor: dict[str, Any] = field(default_factory=dict)
    executor: dict[str, Any] = field(default_factory=dict)
    pipeline: tuple[str, ...] = ()  # [pipeline] steps; empty: the entry module's steps in definition order
    agent: dict[str, Any] = field(default_factory=dict)  # [agent], checked (docs/agent.md)

    @property
    def path(self) -> Path:
        return self.root / CONFIG_NAME

    def step_params(self, step: str) -> dict[str, Any]:
        return dict(self.steps.get(step, {}))


def load_config(root: Path) -> ProjectConfig:
    """Read and validate ``root/blase.toml``; every problem is a :class:`ConfigError` naming the key."""
    path = root / CONFIG_NAME
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist; run `blase create sample NAME` to start a project.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix that line.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; save it as UTF-8.") from None

    for key, value in raw.items():
        if key not in _SECTIONS:
            expected = ", ".join(f"[{k}]" for k in _SECTIONS)
            raise ConfigError(f"{path}: unknown section [{key}]; expected one of {expected}.")
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: `{key}` must be a table ([{key}]), not a {type(value).__name__}.")

    project = raw.get("project", {})
    for key in project:
        if key not in _PROJECT_KEYS:
            raise ConfigError(
                f"{path}: unknown key `{key}` in [project]; expected one of {', '.join(sorted(_PROJECT_KEYS))}."
            )
    name = project.get("name", root.name)
    entry = project.get("entry", "main.py")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{path}: [project] name must be a non-empty string.")
    if not isinstance(entry, str) or not entry.endswith(".py"):
        raise ConfigError(f"{path}: [project] entry must name a .py file such as \"main.py\", not {entry!r}.")
    if Path(entry).is_absolute() or not (root / entry).resolve().is_relative_to(root.resolve()):
        raise ConfigError(f"{path}: [project] entry {entry!r} is outside the project; the entry module must be a"
                          " file inside the project folder, such as \"main.py\".")
    budget = parse_bytes(project.get("memory_budget", DEFAULT_MEMORY_BUDGET), what=f"{path}: [project] memory_budget")
    scripts = project.get("scripts", [])
    if isinstance(scripts, str):
        scripts = [scripts]
    if not isinstance(scripts, list) or not all(isinstance(s, str) for s in scripts):
        raise ConfigError(f"{path}: [project] scripts must be a list of folder names such as [\"scripts\"].")
    outside = [s for s in scripts if Path(s).is_absolute() or not (root / s).resolve().is_relative_to(root.resolve())]
    if outside:
        raise ConfigError(f"{path}: [project] scripts {outside[0]!r} is outside the project; list folders inside it.")

    reuse = project.get("reuse", True)
    if not isinstance(reuse, bool):
        raise ConfigError(f"{path}: [project] reuse must be true or false, not {reuse!r}.")

    keep = project.get("keep_outputs", DEFAULT_KEEP_OUTPUTS)
    if keep is False or keep == 0:
        keep_outputs = 0
    elif keep is True:
        keep_outputs = DEFAULT_KEEP_OUTPUTS
    else:
        keep_outputs = parse_bytes(keep, what=f"{path}: [project] keep_outputs (or false)")

    steps = raw.get("steps", {})
    for step_name, params in steps.items():
        if not isinstance(params, dict):
            raise ConfigError(
                f"{path}: `steps.{step_name}` must be a table of params ([steps.{step_name}]), not a value."
            )
    return ProjectConfig(
        root=root,
        name=name.strip(),
        entry=entry,
        memory_budget=budget,
        description=str(project.get("description", "")),
        scripts=tuple(scripts),
        reuse=reuse,
        keep_outputs=keep_outputs,
        steps={k: dict(v) for k, v in steps.items()},
        labelling=dict(raw.get("labelling", {})),
        plugins=_plugins(path, raw.get("plugins", {})),
        monitor=_monitor(path, raw.get("monitor", {})),
        executor=_executor(path, raw.get("executor", {})),
        pipeline=_pipeline(path, raw.get("pipeline", {})),
        agent=_agent(path, raw.get("agent", {})),
    )


AUTONOMY = ("manual", "semi", "auto")
_AGENT_KEYS = {"base_url": str, "model": str, "api_key_env": str, "autonomy": str, "allowed_steps": list,
               "max_runs": int, "time_budget": (int, float), "timeout": (int, float)}


def _agent(path: Path, section: dict[str, Any]) -> dict[str, Any]:
    """``[agent]`` (docs/agent.md): ``base_url`` and ``model`` of an OpenAI-compatible endpoint, ``api_key_env``
    (the name of the environment variable holding the key, never the key), ``autonomy`` (manual, semi, auto),
    and the limits of ``auto``: ``allowed_steps``, ``max_runs``, ``time_budget`` (seconds); ``timeout``."""
    for key, value in section.items():
        kind = _AGENT_KEYS.get(key)
        if kind is None:
            raise ConfigError(f"{path}: unknown key `{key}` in [agent]; expected {', '.join(sorted(_AGENT_KEYS))}.")
        if isinstance(value, bool) or not isinstance(value, kind):
            what = "a list of step names" if kind is list else "text" if kind is str else "a number"
            raise ConfigError(f"{path}: [agent] {key} = {value!r} must be {what}.")
    if section.get("autonomy", "manual") not in AUTONOMY:
        raise ConfigError(f"{path}: [agent] autonomy must be one of {', '.join(AUTONOMY)}, not"
                          f" {section['autonomy']!r}.")
    if "api_key" in section or any(str(v).startswith("sk-") for v in section.values()):
        raise ConfigError(f"{path}: [agent] holds what looks like a key; name the environment variable that holds"
                          " it instead: api_key_env = \"OPENAI_API_KEY\".")
    if not all(isinstance(v, str) for v in section.get("allowed_steps", [])):
        raise ConfigError(f"{path}: [agent] allowed_steps must be a list of step names.")
    return dict(section)


def _pipeline(path: Path, section: dict[str, Any]) -> tuple[str, ...]:
    """``[pipeline] steps = ["etl", "clean", ...]``: what `blase run` runs, in that order (whether each names a
    step of the entry module is checked when the steps are loaded)."""
    for key in section:
        if key != "steps":
            raise ConfigError(f"{path}: unknown key `{key}` in [pipeline]; expected steps = [\"etl\", \"train\", ...].")
    steps = section.get("steps", [])
    if not isinstance(steps, list) or not all(isinstance(v, str) and v.strip() for v in steps):
        raise ConfigError(f"{path}: [pipeline] steps must be a list of step names, such as [\"etl\", \"train\"],"
                          f" not {steps!r}.")
    twice = next((v for i, v in enumerate(steps) if v in steps[:i]), None)
    if twice is not None:
        raise ConfigError(f"{path}: [pipeline] steps names `{twice}` twice; a step runs once in a pipeline.")
    return tuple(v.strip() for v in steps)


def _executor(path: Path, section: dict[str, Any]) -> dict[str, Any]:
    """``[executor]``: ``name`` (an executor a plugin adds: dask), ``workers``, ``address`` (an existing
    scheduler), and the executor's own settings (docs/scaling.md)."""
    name = section.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ConfigError(f"{path}: [executor] name must be the name of an executor, such as \"dask\", not {name!r}.")
    workers = section.get("workers")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ConfigError(f"{path}: [executor] workers must be a whole number, 1 or more, not {workers!r}.")
    address = section.get("address")
    if address is not None and not isinstance(address, str):
        raise ConfigError(f"{path}: [executor] address must be a scheduler address such as \"tcp://10.0.0.5:8786\","
                          f" not {address!r}.")
    return dict(section)


def _plugins(path: Path, section: dict[str, Any]) -> dict[str, Any]:
    """``[plugins]``: ``enabled`` (the plugins the project uses, by name) and a ``[plugins.NAME]`` table of
    settings per plugin (docs/plugins.md)."""
    enabled = section.get("enabled", [])
    if not isinstance(enabled, list) or not all(isinstance(v, str) and v.strip() for v in enabled):
        raise ConfigError(f"{path}: [plugins] enabled must be a list of plugin names, such as [\"fits\"], not"
                          f" {enabled!r}.")
    for key, value in section.items():
        if key != "enabled" and not isinstance(value, dict):
            raise ConfigError(f"{path}: [plugins] {key} must be a table of that plugin's settings"
                              f" ([plugins.{key}]), or use enabled = [...] to list the plugins.")
    return dict(section)


_TRIGGER_KEYS = {"drift_share": float, "features": list, "metric_drop": float, "min_samples": int}


def _monitor(path: Path, section: dict[str, Any]) -> dict[str, Any]:
    """``[monitor]``: ``alpha``, ``on_trigger`` (a step to launch when a trigger fires), ``tests`` (drift tests
    from plugins) and ``[monitor.triggers]`` (drift_share, features, metric_drop, min_samples)."""
    for key in section:
        if key not in ("alpha", "on_trigger", "tests", "triggers"):
            raise ConfigError(f"{path}: unknown key `{key}` in [monitor]; expected alpha, on_trigger, tests or"
                              " [monitor.triggers].")
    tests = section.get("tests", [])
    if not isinstance(tests, list) or not all(isinstance(t, str) and t.strip() for t in tests):
        raise ConfigError(f"{path}: [monitor] tests must be a list of drift test names from plugins, such as"
                          f" [\"energy\"], not {tests!r}.")
    alpha = section.get("alpha", 0.05)
    if not isinstance(alpha, float | int) or isinstance(alpha, bool) or not 0 < alpha < 1:
        raise ConfigError(f"{path}: [monitor] alpha must be a number between 0 and 1, not {alpha!r}.")
    on_trigger = section.get("on_trigger")
    if on_trigger is not None and (not isinstance(on_trigger, str) or not on_trigger.strip()):
        raise ConfigError(f"{path}: [monitor] on_trigger must be the name of a step, such as \"update\", not"
                          f" {on_trigger!r}.")
    triggers = section.get("triggers", {})
    if not isinstance(triggers, dict):
        raise ConfigError(f"{path}: [monitor.triggers] must be a table.")
    check_triggers(triggers, f"{path}: [monitor.triggers]")
    return dict(section)


def check_triggers(triggers: dict[str, Any], where: str) -> dict[str, Any]:
    """The monitor's trigger rules, checked (blase.toml's ``[monitor.triggers]`` and ``Monitor(triggers=...)``
    alike): known keys, and values of their kind; ``where`` names them in the error."""
    for key, value in triggers.items():
        kind = _TRIGGER_KEYS.get(key)
        if kind is None:
            raise ConfigError(f"{where}: unknown key `{key}`; expected one of {', '.join(sorted(_TRIGGER_KEYS))}.")
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value) if kind is list else (
            isinstance(value, int | float) and not isinstance(value, bool) and value >= 0)
        if not ok:
            what = "a list of feature names" if kind is list else "a number, 0 or more"
            raise ConfigError(f"{where} {key} must be {what}, not {value!r}.")
    return triggers


def find_project_root(start: Path | None = None) -> Path | None:
    """Walk up from ``start`` (default: the working directory) to the first folder holding ``blase.toml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    return None
