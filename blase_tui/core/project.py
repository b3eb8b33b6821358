"""A project: a folder with ``blase.toml``, its entry module of steps, and its run store."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from blase_tui.core import steps as steps_mod
from blase_tui.core.config import ProjectConfig, find_project_root, load_config
from blase_tui.errors import ConfigError

if TYPE_CHECKING:
    from blase_tui.store.runstore import RunStore


@dataclass
class Project:
    root: Path
    config: ProjectConfig

    @classmethod
    def at(cls, root: Path) -> Project:
        root = root.resolve()
        return cls(root=root, config=load_config(root))

    @classmethod
    def discover(cls, start: Path | None = None) -> Project:
        """The project holding ``start`` (default: the working directory), found by walking up like git."""
        start = (start or Path.cwd()).resolve()
        if not start.exists():
            raise ConfigError(f"{start} does not exist; give the path of a project folder.")
        root = find_project_root(start)
        if root is None:
            from blase_tui.core.registry import list_projects

            try:
                known = [p for p in list_projects() if p["exists"]][-3:]
            except ConfigError:
                known = []
            where = ("; known projects: " + ", ".join(f"{p['name']} (`blase -C {p['path']} ...`)" for p in known)
                     if known else "")
            raise ConfigError(
                f"no blase.toml in {start} or any folder above it; cd into a project or create one with"
                f" `blase create sample NAME`{where}."
            )
        return cls.at(root)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def locks_dir(self) -> Path:
        return self.root / ".blase" / "locks"

    @property
    def cache_dir(self) -> Path:
        return self.root / ".blase" / "cache"

    @cached_property
    def store(self) -> RunStore:
        from blase_tui.store.runstore import RunStore

        store = RunStore(self.root)
        store.keep_outputs = self.config.keep_outputs
        return store

    def load_steps(self) -> dict[str, steps_mod.StepInfo]:
        """Import the entry module (with the project folder on ``sys.path``) and return its steps."""
        path = self.root / self.config.entry
        if not path.is_file():
            raise ConfigError(
                f"the entry module {path} does not exist; create it or set [project] entry in blase.toml."
            )
        root = str(self.root)
        if root not in sys.path:
            sys.path.insert(0, root)
        module_name = path.stem
        steps_mod.clear_registry()
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except ConfigError:
            raise
        except Exception as exc:
            frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f" ({Path(frame.filename).name}, line {frame.lineno})" if frame else ""
            text = str(exc)
            if isinstance(exc, SyntaxError):
                where = f" ({Path(exc.filename or path).name}, line {exc.lineno})"
                text = exc.msg  # str() already ends with where it is
            raise ConfigError(
                f"could not import {self.config.entry}: {type(exc).__name__}: {text}{where}; fix it and run again."
            ) from exc
        found = steps_mod.registered()
        if not found:
            # Seed 000's main.py marks no step: its step functions are the entry module's own public
            # functions (`etl`, `train`, ...), which its main() maps from `--step NAME`.
            found = steps_mod.plain_functions(module)
        if not found:
            raise ConfigError(
                f"{self.config.entry} defines no steps; mark step functions with `@step` (from blase_tui import"
                " step): functions handed only to main(...) are seen by `python main.py`, not by `blase step`."
            )
        return found

    def get_step(self, name: str, steps: dict[str, steps_mod.StepInfo] | None = None) -> steps_mod.StepInfo:
        steps = steps if steps is not None else self.load_steps()
        if name not in steps:
            known = ", ".join(steps) or "none"
            if not name:
                raise ConfigError(f"which step? Give its name, as in `blase step {next(iter(steps), 'NAME')}`;"
                                  f" this project's steps are: {known}.")
            raise ConfigError(f"unknown step `{name}`; this project's steps are: {known}.")
        return steps[name]
