"""Project templates. `sample` is the repository's ``sample_project/``, shipped inside the wheel."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from blase_tui.errors import ConfigError

_IGNORE = shutil.ignore_patterns("runs", ".blase", "__pycache__", "*.pyc", "data", "models", ".pytest_cache")


def _sample_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "templates" / "sample", here.parent / "sample_project"):
        if (candidate / "blase.toml").is_file():
            return candidate
    raise ConfigError("the sample template is missing from this installation; reinstall blase-tui.")


def available() -> dict[str, tuple[Path, str]]:
    return {"sample": (_sample_dir(), "digit images: etl, inspect, clean, prepare, train (PyTorch CNN), evaluate")}


def create(template: str, target: Path) -> Path:
    """Copy ``template`` into the new folder ``target`` and name the project after it."""
    templates = available()
    if template not in templates:
        raise ConfigError(f"unknown template `{template}`; available: {', '.join(templates)}.")
    target = target.expanduser().resolve()
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target} already exists and is not empty; choose another name.")
    name = target.name
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise ConfigError(f"`{name}` is not a usable project name; use letters, digits, '.', '_' and '-'.")
    source, _ = templates[template]
    shutil.copytree(source, target, ignore=_IGNORE, dirs_exist_ok=True)
    config = target / "blase.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(re.sub(r'(?m)^name\s*=\s*".*"$', f'name = "{name}"', text, count=1), encoding="utf-8")
    return target
