"""Plugins: other distributions that add to blase through entry points (docs/plugins.md).

Groups (an entry point's name is what the user types; its value ``module:attribute``; the contracts, and the
helpers a plugin may use, are in ``blase_tui.plugin``):

- ``blase.cli``: a CLI noun, ``blase NAME ...``; the attribute is a Typer app;
- ``blase.readers``: ``Extract.load_NAME(path, **options)``; the attribute is ``load(extract, path, **options)``
  yielding batches, as the built-in readers in ``modules/readers/`` do;
- ``blase.transforms``: ``Transform().apply_NAME(batch, **options)``; the attribute is ``fn(batch, **options)``
  returning what a function given to ``apply_function`` returns;
- ``blase.executors``: ``blase step S --executor NAME``; the attribute is an executor factory;
- ``blase.frameworks``: a framework adapter for ``Train``/``Evaluate``;
- ``blase.previews``: a TUI artifact preview; the name is a file suffix (``.fits``), the attribute
  ``render(path, width, max_rows)`` returning a Rich renderable;
- ``blase.run_closed``: called after a run of a project that enables the plugin closes, in a process of its own
  (so it never delays or fails the step); the name is the plugin's, the attribute
  ``run_closed(project_root, run_id, settings)`` (``settings``: its ``[plugins.NAME]``).

Nothing here imports a plugin until it is used: listing reads the installed distributions' metadata only, so
``blase --help`` stays fast whatever is installed. A plugin that fails to load is one line naming it, its
distribution and the fix, raised only where it is used. ``[plugins] enabled = ["fits", ...]`` in blase.toml
lists the plugins a project uses; per-plugin settings go in ``[plugins.NAME]``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from blase_tui.errors import BlaseError

GROUPS = {
    "cli": "blase.cli",
    "readers": "blase.readers",
    "transforms": "blase.transforms",
    "monitors": "blase.monitors",
    "executors": "blase.executors",
    "frameworks": "blase.frameworks",
    "previews": "blase.previews",
    "run_closed": "blase.run_closed",
}


class PluginError(BlaseError):
    """A plugin that is missing or does not load."""


@dataclass(frozen=True)
class Plugin:
    kind: str  # a key of GROUPS
    name: str  # what the user types: `blase NAME`, `Extract.load_NAME`, `--executor NAME`
    value: str  # module:attribute
    distribution: str  # the distribution that provides it ("blase-fits")
    version: str

    @property
    def plugin(self) -> str:
        """The plugin's short name: its distribution's without ``blase-`` (``fits``), as ``[plugins]`` lists it."""
        return self.distribution.removeprefix("blase-").removeprefix("blase_")


def installed(kind: str | None = None) -> list[Plugin]:
    """Every entry point of the blase groups in the installed distributions, sorted by kind and name. Only the
    ``entry_points.txt`` of the site folders' metadata is read (a scan of ~10 ms, where
    ``importlib.metadata`` parses every distribution in ~100 ms); nothing is imported."""
    wanted = {group: k for k, group in GROUPS.items() if kind is None or k == kind}
    found: dict[tuple[str, str], Plugin] = {}
    for folder, text in _candidates():
        stem = os.path.basename(folder).rsplit(".", 1)[0]  # blase_fits-0.1.0
        name, _, version = stem.partition("-")
        distribution = name.replace("_", "-").lower()
        group = None
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("[") and line.endswith("]"):
                group = line[1:-1].strip()
                continue
            k = wanted.get(group or "")
            if k is not None and "=" in line:
                ep_name, _, value = line.partition("=")
                found.setdefault((k, ep_name.strip()), Plugin(k, ep_name.strip(), value.strip(), distribution,
                                                             version or "?"))
    return sorted(found.values(), key=lambda p: (p.kind, p.name))


def _candidates() -> list[tuple[str, str]]:
    """``(folder, entry_points.txt text)`` of the metadata folders on ``sys.path`` that name a blase group
    (the first on the path wins)."""
    out, seen = [], set()
    for base in sys.path:
        try:
            entries = os.scandir(base or ".")
        except OSError:
            continue
        with entries:
            for entry in entries:
                if not entry.name.endswith((".dist-info", ".egg-info")):
                    continue
                try:
                    with open(os.path.join(entry.path, "entry_points.txt"), encoding="utf-8") as fh:
                        text = fh.read()
                except OSError:
                    continue
                project = entry.name.split("-")[0].lower().replace("_", "-")
                if "[blase." in text and project not in seen:
                    seen.add(project)
                    out.append((entry.path, text))
    return out


def find(kind: str, name: str) -> Plugin | None:
    return next((p for p in installed(kind) if p.name == name), None)


def load(kind: str, name: str, *, what: str | None = None) -> Any:
    """The object a plugin provides for ``name`` in ``kind``; a missing or broken plugin is a PluginError
    naming it and the fix."""
    import importlib

    plugin = find(kind, name)
    label = what or f"{kind[:-1] if kind.endswith('s') else kind} {name!r}"
    if plugin is None:
        hint = _KNOWN.get((kind, name))
        fix = f"install it: pip install {hint}" if hint else "no installed plugin provides it (`blase plugins list`)"
        raise PluginError(f"{label} comes from a plugin that is not installed; {fix}.")
    if kind in PROJECT_KINDS:
        listed = _project_enabled()
        if listed is not None and plugin.plugin not in listed:
            raise PluginError(f"{label} comes from the plugin {plugin.plugin} ({plugin.distribution}), which this"
                              f" project does not enable: add \"{plugin.plugin}\" to [plugins] enabled in blase.toml"
                              f" (enabled now: {', '.join(listed) or 'none'}).")
    module_name, _, attribute = plugin.value.partition(":")
    try:
        obj: Any = importlib.import_module(module_name.strip())
        for part in filter(None, attribute.strip().split(".")):
            obj = getattr(obj, part)
    except Exception as exc:  # ImportError, a syntax error in the plugin, a missing dependency ...
        first = first_line(exc)
        raise PluginError(f"the plugin {plugin.distribution} {plugin.version} ({label}) does not load:"
                          f" {type(exc).__name__}: {first}; reinstall it (pip install --force-reinstall"
                          f" {plugin.distribution}) or uninstall it.") from exc
    return obj


# what a step uses: gated by the project's [plugins] enabled when the project lists any
PROJECT_KINDS = ("readers", "transforms", "monitors", "executors", "frameworks")


def _project_enabled() -> list[str] | None:
    """``[plugins] enabled`` of the project the working directory belongs to (a step runs in its project's
    folder), or None when there is no project or it lists no plugin: then every installed plugin may load."""
    from blase_tui.core.config import find_project_root, load_config

    root = find_project_root()
    if root is None:
        return None
    try:
        listed = enabled(load_config(root).plugins)
    except BlaseError:
        return None
    return listed or None


def after_run_closed(project_root: Any, run_id: str, config_plugins: dict[str, Any]) -> int | None:
    """Start the ``run_closed`` hooks of the project's enabled plugins in a detached process
    (``python -m blase_tui.core.hooks``), its output appended to ``.blase/plugins.log``; the pid, or None when
    no enabled plugin has such a hook."""
    names = enabled(config_plugins)
    if not names or not any(p.name in names for p in installed("run_closed")):
        return None
    import subprocess
    from pathlib import Path

    log = Path(project_root) / ".blase" / "plugins.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "blase_tui.core.hooks", str(project_root), run_id],
                                cwd=str(project_root), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True)
    return proc.pid


def first_line(exc: BaseException) -> str:
    """An exception in one line: its message's first line, else its type's name."""
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def enabled(config_plugins: dict[str, Any]) -> list[str]:
    """The plugins ``[plugins] enabled`` lists."""
    return list(config_plugins.get("enabled", []))


def settings(config_plugins: dict[str, Any], plugin: str) -> dict[str, Any]:
    """``[plugins.NAME]``: a plugin's settings."""
    value = config_plugins.get(plugin, {})
    return dict(value) if isinstance(value, dict) else {}


# first-party plugins, for the "pip install" hint when one is missing
_KNOWN = {
    ("cli", "mlflow"): "blase-mlflow (plugins/blase-mlflow)",
    ("readers", "fits"): "blase-fits (plugins/blase-fits)",
    ("executors", "dask"): "blase-dask (plugins/blase-dask)",
    ("previews", ".fits"): "blase-fits (plugins/blase-fits)",
}
