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
    "main": "blase_tui.core.entry",
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
    from blase_tui.modules.track import Track


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'blase_tui' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
