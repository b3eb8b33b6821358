"""The user-level list of known projects (so the TUI can browse them), in the platform's data folder.
``BLASE_HOME`` moves it (tests point it at a temporary folder)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from blase_tui.errors import ConfigError


def home() -> Path:
    if os.environ.get("BLASE_HOME"):
        return Path(os.environ["BLASE_HOME"])
    import platformdirs

    return Path(platformdirs.user_data_dir("blase", appauthor=False))


def _path() -> Path:
    return home() / "projects.json"


def _read() -> list[dict[str, Any]]:
    try:
        data = json.loads(_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except ValueError:
        raise ConfigError(f"{_path()} is not valid JSON; fix or delete it (it only lists known projects).") from None
    return [p for p in data.get("projects", []) if isinstance(p, dict) and "path" in p]


def _write(projects: list[dict[str, Any]]) -> None:
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".projects.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"projects": projects}, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _locked():  # type: ignore[no-untyped-def]
    from filelock import FileLock

    _path().parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(_path()) + ".lock", timeout=10)


def list_projects() -> list[dict[str, Any]]:
    """Known projects: ``{"name", "path", "added", "exists"}``."""
    out = []
    for p in _read():
        out.append({**p, "exists": (Path(p["path"]) / "blase.toml").is_file()})
    return out


def add_project(path: Path) -> dict[str, Any]:
    from blase_tui.core.project import Project

    project = Project.discover(path.expanduser())
    entry = {"name": project.name, "path": str(project.root), "added": time.time()}
    with _locked():
        projects = [p for p in _read() if Path(p["path"]) != project.root]
        projects.append(entry)
        _write(projects)
    return entry


def remove_project(ref: str) -> dict[str, Any]:
    """Forget a project by name or path (its files stay where they are)."""
    with _locked():
        projects = _read()
        target = Path(ref).expanduser().resolve() if os.sep in ref or ref in (".", "..") else None
        matches = [p for p in projects if (target and Path(p["path"]) == target) or p["name"] == ref]
        if not matches:
            raise ConfigError(f"no known project named or at `{ref}`; `blase projects list` shows them.")
        if len(matches) > 1:
            raise ConfigError(f"several known projects are named `{ref}`; remove one by its path instead.")
        _write([p for p in projects if p is not matches[0]])
    return matches[0]


def find_by_name(name: str) -> Path | None:
    for p in _read():
        if p["name"] == name and (Path(p["path"]) / "blase.toml").is_file():
            return Path(p["path"])
    return None
