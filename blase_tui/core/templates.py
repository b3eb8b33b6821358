"""Project templates (``blase create --list``). ``images`` (also ``sample``) is the repository's ``sample_project/``,
shipped inside the wheel; the others are folders beside this module's package (``blase_tui/templates/``). A
template's one-line summary is its ``blase.toml`` description."""

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


# Files a template takes from the sample rather than keeping a second copy: (template, source, destination).
_FROM_SAMPLE = {"alerts": [("scripts/alerts.py", "scripts/alerts.py"), ("scripts/__init__.py", "scripts/__init__.py")]}
ORDER = ("blank", "images", "tabular", "json", "audio", "alerts", "rl")


def _template_dir(name: str) -> Path:
    return Path(__file__).resolve().parent.parent / "templates" / name


def _summary(folder: Path) -> str:
    import tomllib

    try:
        return str(tomllib.loads((folder / "blase.toml").read_text())["project"].get("description", ""))
    except (OSError, ValueError, KeyError):
        return ""


def available() -> dict[str, tuple[Path, str]]:
    """Template name -> (folder, one-line summary), in the order ``blase create --list`` shows them."""
    found: dict[str, tuple[Path, str]] = {}
    for name in ORDER:
        folder = _sample_dir() if name == "images" else _template_dir(name)
        if (folder / "blase.toml").is_file():
            found[name] = (folder, _summary(folder) if name != "images" else
                           "Digit images (PNG): etl, inspect, clean, prepare, train (PyTorch CNN), evaluate; and an alert"
                           " pool for active learning")
    found["sample"] = found["images"]  # the name `blase demo` and older docs use
    return found


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
    for src, dest in _FROM_SAMPLE.get(template, []):
        (target / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_sample_dir() / src, target / dest)
    config = target / "blase.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(re.sub(r'(?m)^name\s*=\s*".*"$', f'name = "{name}"', text, count=1), encoding="utf-8")
    return target
