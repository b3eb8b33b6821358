"""A step known from the entry module's syntax tree, without importing the module: what lets `blase step NAME`
of an up-to-date step answer without paying for the project's imports (numpy, torch: most of a reused step's
time; seed 004's chain of reused steps, issue 28).

Only a plain case is taken: a top-level ``def NAME(ctx, a=1, b="x")`` decorated with a bare ``@step`` (imported
from blase_tui), every param with a literal default, no ``*args``/``**kwargs``; a module that registers no step
any other way (no ``@step(...)``, no ``from x import *``, no imported project module with steps, nothing at its
top level that names the step or the decorator, nothing chosen at run time). Anything else returns None, and the
engine imports the module as always. Whatever is known this way is what importing it would give: the defaults
are the literals, the function's source (and so its hash) is read the way ``signature.function_source`` reads it,
and its code parts are found by the same analysis (``codeuse.step_code``).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from blase_tui.core import codeuse
from blase_tui.core.project import Project
from blase_tui.core.steps import StepInfo


class _Code:
    def __init__(self, firstline: int, filename: str, name: str) -> None:
        self.co_firstlineno, self.co_filename, self.co_name = firstline, filename, name


class StaticFunction:
    """Stands for the step function where only its place in the source is known (``codeuse.step_code`` and the
    signature need no more). Calling it is a mistake: the engine imports the module before running a step."""

    def __init__(self, source_file: Path, name: str, firstline: int, source_hash: str) -> None:
        self.source_file = source_file
        self.__name__ = self.__qualname__ = name
        self.__code__ = _Code(firstline, str(source_file), name)
        self.source_hash = source_hash

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"step `{self.__name__}` is known from its source only; import the module to run it.")


def step_info(project: Project, name: str) -> StepInfo | None:
    """The step ``name`` of the project's entry module, read from its syntax tree; None where it is not the plain
    case (then importing the module decides)."""
    entry = (project.root / project.config.entry).resolve()
    index = codeuse._index(entry)
    if index is None or index.dynamic or index.star:
        return None
    steps, blase = _decorator_names(index)
    if not steps and not blase:
        return None
    nodes = index.defs.get(name, [])
    if len(nodes) != 1 or not isinstance(nodes[0], ast.FunctionDef):
        return None
    node = nodes[0]
    if len(node.decorator_list) != 1 or not _is_step(node.decorator_list[0], steps, blase):
        return None
    for other in (n for found in index.defs.values() for n in found):  # @step(...) anywhere: names at run time
        for d in getattr(other, "decorator_list", []):
            if isinstance(d, ast.Call) and _is_step(d.func, steps, blase):
                return None
    watched = {name, "register_functions", *steps, *blase}
    if any(_mentions(stmt, watched) for stmt in index.prelude):
        return None
    if _imports_steps(entry, index, project.root):
        return None
    defaults = _literal_defaults(node)
    if defaults is None:
        return None
    takes_ctx, params = defaults
    from blase_tui.core.signature import def_source
    from blase_tui.store.hashing import hash_bytes

    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    source = def_source(str(entry), node)
    if source is None:
        return None
    func = StaticFunction(entry, name, first, hash_bytes(source.encode()))
    return StepInfo(name=name, func=func, takes_ctx=takes_ctx, defaults=params)


def _decorator_names(index: Any) -> tuple[set[str], set[str]]:
    """The names ``step`` is bound to (``from blase_tui import step``), and those ``blase_tui`` is (``import
    blase_tui``)."""
    steps, blase = set(), set()
    for bound, imports in index.imports.items():
        for imp in imports:
            if imp.level == 0 and imp.module in ("blase_tui", "blase_tui.core.steps") and imp.name == "step":
                steps.add(bound)
            elif imp.level == 0 and imp.module == "blase_tui" and imp.name is None:
                blase.add(bound)
    return steps, blase


def _is_step(node: ast.AST, steps: set[str], blase: set[str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in steps
    return (isinstance(node, ast.Attribute) and node.attr == "step" and isinstance(node.value, ast.Name)
            and node.value.id in blase)


def _mentions(stmt: ast.AST, names: set[str]) -> bool:
    return any((isinstance(n, ast.Name) and n.id in names) or (isinstance(n, ast.Attribute) and n.attr in names)
               for n in ast.walk(stmt))


def _imports_steps(entry: Path, index: Any, root: Path) -> bool:
    """Whether a project module the entry module imports defines a step of its own (registered on import)."""
    resolver = codeuse._Resolver(root.resolve())
    for imports in index.imports.values():
        for imp in imports:
            for path in resolver.files(imp, entry):
                other = codeuse._index(path)
                if other is None or other.dynamic:
                    return True
                if any(isinstance(d, ast.Call | ast.Name | ast.Attribute) and "step" in ast.unparse(d)
                       for found in other.defs.values() for n in found for d in getattr(n, "decorator_list", [])):
                    return True
    return False


def _literal_defaults(node: ast.FunctionDef) -> tuple[bool, dict[str, Any]] | None:
    """``(takes ctx, {param: default})``, or None when a param has no literal default or the signature takes
    ``*args``/``**kwargs``."""
    args = node.args
    if args.vararg is not None or args.kwarg is not None or args.posonlyargs:
        return None
    positional = args.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = list(zip(positional, defaults, strict=True)) + list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
    takes_ctx, out = False, {}
    for arg, default in pairs:
        if arg.arg == "ctx":
            takes_ctx = True
            continue
        if default is None:
            return None
        try:
            out[arg.arg] = ast.literal_eval(default)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
    return takes_ctx, out
