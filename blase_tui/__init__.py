"""blase: local-first ML pipelines with tracked steps.

The public API (seed ``000``): ``step``, ``Track``, ``main`` and, as later issues land them, the data and model
modules. Names resolve lazily so ``import blase_tui`` stays cheap for the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "step": "blase_tui.core.steps",
    "StepContext": "blase_tui.core.context",
    "Track": "blase_tui.modules.track",
    "Batch": "blase_tui.modules.batch",
    "Extract": "blase_tui.modules.extract",
    "Transform": "blase_tui.modules.transform",
    "Load": "blase_tui.modules.load",
    "Examine": "blase_tui.modules.examine",
    "Clean": "blase_tui.modules.clean",
    "Prepare": "blase_tui.modules.prepare",
    "Train": "blase_tui.modules.train",
    "Evaluate": "blase_tui.modules.evaluate",
    "Deploy": "blase_tui.modules.deploy",
    "Monitor": "blase_tui.modules.monitor",
    "Update": "blase_tui.modules.update",
    "main": "blase_tui.core.entry",
    "runs": "blase_tui.runs",
    "models": "blase_tui.models",
    "BlaseError": "blase_tui.errors",
    "ConfigError": "blase_tui.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    # ruff: noqa: F401 - re-exported lazily through __getattr__
    from blase_tui.core.context import StepContext
    from blase_tui.core.entry import main
    from blase_tui.core.steps import step
    from blase_tui.errors import BlaseError, ConfigError
    from blase_tui.modules.batch import Batch
    from blase_tui.modules.clean import Clean
    from blase_tui.modules.deploy import Deploy
    from blase_tui.modules.evaluate import Evaluate
    from blase_tui.modules.examine import Examine
    from blase_tui.modules.extract import Extract
    from blase_tui.modules.load import Load
    from blase_tui.modules.monitor import Monitor
    from blase_tui.modules.prepare import Prepare
    from blase_tui.modules.track import Track
    from blase_tui.modules.train import Train
    from blase_tui.modules.transform import Transform
    from blase_tui.modules.update import Update


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'blase_tui' has no attribute {name!r}")
    import importlib

    imported = importlib.import_module(module)
    value = imported if module.endswith("." + name) else getattr(imported, name)
    globals()[name] = value
    return value
