"""The plugin API: everything a plugin uses from blase, in one typed module (docs/plugins.md).

A plugin is a distribution that declares entry points in the groups below; the entry point's name is what the
user types, its value ``module:attribute`` the object of the kind's contract (a Protocol here). Nothing is
imported until it is used, and a project that lists ``[plugins] enabled`` gets only those plugins in its steps.

==================  ===========================================  ==============================================
group               the user writes                              the attribute
==================  ===========================================  ==============================================
``blase.readers``   ``Extract().load_NAME(path, **options)``     :class:`Reader`
``blase.transforms`` ``Transform().apply_NAME(batch, **options)`` :class:`TransformFunction`
``blase.monitors``  ``Monitor(tests=["NAME"])``                  :class:`DriftTest`
``blase.frameworks`` ``Train().set_model(m, framework="NAME")``  a framework adapter (:class:`Adapter`)
``blase.executors`` ``blase step S --executor NAME``             :class:`ExecutorFactory`
``blase.cli``       ``blase NAME ...``                           a ``typer.Typer`` app
``blase.previews``  a ``.SUFFIX`` artifact in the TUI            :class:`Preview`
``blase.run_closed`` (the plugin's name)                         :class:`RunClosed`
==================  ===========================================  ==============================================

The names below the contracts are the helpers a plugin may use (batches, errors, the step's recording, safe
paths, the model registry, the CLI's output); a plugin imports them from here and from ``blase_tui`` (the
modules), never from blase's internals, which change without notice. They resolve lazily, so ``import
blase_tui.plugin`` costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from blase_tui.modules.batch import Batch
    from blase_tui.modules.drift import Distribution
    from blase_tui.modules.extract import Extract


# ---------------------------------------------------------------------------------------------- contracts
class Reader(Protocol):
    """``blase.readers``: yields the batches of ``path`` as the built-in readers do: sized by
    ``extract._size(bytes_per_record, batch_size, memory_budget)``, keys that identify each record for good,
    a record that cannot be read reported with ``extract._bad(on_error, source, record, reason)`` (skipped or an
    error, as the caller chose), and the dataset recorded at the end with ``dataset(path, role="input")``."""

    def __call__(self, extract: Extract, path: str | Path, **options: Any) -> Iterator[Batch]: ...


class TransformFunction(Protocol):
    """``blase.transforms``: ``fn(batch, **options)`` returning a Batch, a dict of columns or an Arrow table, as a
    function given to ``Transform().apply_function`` does (it runs there, split over workers when asked)."""

    def __call__(self, batch: Batch, **options: Any) -> Any: ...


class DriftTest(Protocol):
    """``blase.monitors``: a drift test Monitor runs beside its own on every feature of the priors, when a step
    asks for it (``Monitor(tests=["NAME"])`` or ``[monitor] tests = ["NAME"]``): ``test(reference, live)`` with
    the feature's two distributions (:class:`Distribution`; numeric: values and how often each was seen, the live side counted
    on the reference's values, so a report over any number of rows fits in memory; categorical: categories and
    counts), returning ``(statistic, p_value)``, or None where it does not apply (a numeric test on a categorical
    feature). Each answer is one more hypothesis in the family Holm's procedure decides at ``alpha``; it is
    recorded as the metrics ``drift/FEATURE/NAME`` and ``drift/FEATURE/NAME_p``."""

    def __call__(self, reference: Distribution, live: Distribution) -> tuple[float, float] | None: ...


class ExecutorFactory(Protocol):
    """``blase.executors``: makes the executor a step's data work runs on (``blase step S --executor NAME``,
    ``[executor] name``): ``factory(settings, memory_budget=bytes)`` (``settings``: ``[executor]`` and
    ``--workers``) returning an object with ``workers``, ``describe()``, ``map(fn, items, *, what)``,
    ``submit(fn, item, *, what)`` (whose ``result()`` waits) and ``close()`` (see the dask plugin)."""

    def __call__(self, **options: Any) -> Any: ...


class Preview(Protocol):
    """``blase.previews``: a Rich renderable of the artifact at ``path`` in ``width`` cells and about
    ``max_rows`` rows (the TUI's artifact preview; the entry point's name is the suffix, ``.fits``)."""

    def __call__(self, path: Path, width: int, max_rows: int) -> Any: ...


class RunClosed(Protocol):
    """``blase.run_closed``: called after a run of a project that enables the plugin closes, in a process of its
    own (it never delays or fails the step); ``settings`` is the plugin's ``[plugins.NAME]`` table."""

    def __call__(self, project_root: Path, run_id: str, settings: dict[str, Any]) -> None: ...


# ---------------------------------------------------------------------------------------------- helpers
_EXPORTS = {
    # batches and errors
    "Batch": "blase_tui.modules.batch", "BatchMeta": "blase_tui.modules.batch", "BadRecord": "blase_tui.modules.batch",
    "BlaseError": "blase_tui.errors", "ConfigError": "blase_tui.errors", "DataError": "blase_tui.modules.readers.common",
    "PluginError": "blase_tui.core.plugins",
    # reading files as the built-in readers do
    "files": "blase_tui.modules.readers.common", "reason": "blase_tui.modules.readers.common",
    "per_worker": "blase_tui.modules.budget",
    # drift tests (blase.monitors)
    "Distribution": "blase_tui.modules.drift",
    # the current step's records (no-ops outside a step): recording.dataset, .progress, .say, .params …
    # projects, settings, safe paths
    "Project": "blase_tui.core.project", "settings": "blase_tui.core.plugins",
    "inside": "blase_tui.store.safepath", "relative_name": "blase_tui.store.safepath",
    "UnsafePath": "blase_tui.store.safepath",
    # the model registry and model files
    "open_model": "blase_tui.models.frameworks",
    "LoadedModel": "blase_tui.models", "describe_format": "blase_tui.frameworks.formats",
    "Adapter": "blase_tui.frameworks.base", "tag_values": "blase_tui.store.query",
    # the CLI's output, for a plugin's commands
    "console": "blase_tui.cli.common", "err_console": "blase_tui.cli.common", "print_json": "blase_tui.cli.common",
    "project": "blase_tui.cli.common",  # project(): the project a plugin's command runs in (-C, or the folder)
    "fmt_value": "blase_tui.core.fmt", "fmt_time": "blase_tui.core.fmt",
}
_RENAMED = {"describe_format": "describe"}  # the name here -> the name there
_MODULES = {"recording": "blase_tui.modules.recording", "registry": "blase_tui.store.models"}  # whole modules

__all__ = ["Reader", "TransformFunction", "DriftTest", "ExecutorFactory", "Preview", "RunClosed", *sorted(_EXPORTS),
           *sorted(_MODULES)]


def __getattr__(name: str) -> Any:
    import importlib

    if name in _MODULES:
        value: Any = importlib.import_module(_MODULES[name])
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), _RENAMED.get(name, name))
    else:
        raise AttributeError(f"module 'blase_tui.plugin' has no attribute {name!r}")
    globals()[name] = value
    return value
