"""What code a step uses, so that a step is reused only while that code is unchanged, and a change to one step
reruns that step alone.

A step's code identity is a set of *parts*, each with a hash:

- ``main.py::sample``: a definition in the module that holds the step (the step's own function, and every
  function, class and variable of that module it reaches by name, found statically, transitively);
- ``main.py::<module>``: that module's top-level statements that run on import and are not definitions (a
  ``torch.manual_seed(0)``, a ``sys.path`` change): every step of the module depends on them;
- ``helper.py``: a whole project module the step reaches through an import (``import helper``, ``from
  helper import tag``, an import inside the function), and, transitively, the project modules that one
  imports.

A "project module" is any ``.py`` file under the project folder (outside virtual environments), whatever
``[project] scripts`` says. What cannot be followed statically is caught two ways: a project module imported
while the step ran is recorded too (``imported``), and the reuse check compares it; a step whose code calls
``eval``, ``exec``, ``globals()``, ``__import__`` or ``importlib`` depends, in doubt, on every project file
(``whole_project``). Data files read as code (a YAML of hyper-parameters) are inputs, not code: record them
with ``ctx.log_dataset(path, role="input")`` (docs/concepts.md, "When a step is reused").
"""

from __future__ import annotations

import ast
import inspect
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase_tui.store.hashing import hash_bytes, hash_file, hash_json

MODULE_PART = "<module>"  # the top-level statements of a module that are not definitions
# names whose use means the code that runs is chosen at run time: in doubt, the step depends on every file
_DYNAMIC = {"eval", "exec", "globals", "__import__", "import_module", "run_path", "exec_module",
            "spec_from_file_location"}
# folders that hold data, runs or environments, never the project's own code
SKIP_DIRS = {"runs", "data", "models", "outputs", "logs", "deployments", "node_modules", "__pycache__"}


@dataclass(frozen=True)
class CodeUse:
    """The parts of the project's code a step uses (``{"main.py::train": hash, "helper.py": hash}``)."""

    parts: dict[str, str]
    whole_project: bool = False
    reason: str = ""  # why the whole project, in words

    @property
    def digest(self) -> str:
        return hash_json(sorted(self.parts.items()))


def part_file(part: str) -> str:
    """``main.py::train`` -> ``main.py``."""
    return part.split("::", 1)[0]


def in_environment(path: Path) -> bool:
    """Whether ``path`` is inside a virtual environment or an installed package (not the project's code)."""
    if "site-packages" in path.parts or "dist-packages" in path.parts:
        return True
    prefix = Path(sys.prefix).resolve()
    if path.is_relative_to(prefix) and prefix != Path(sys.base_prefix).resolve():
        return True
    return any((parent / "pyvenv.cfg").exists() for parent in path.parents)


def project_python_files(root: Path) -> list[Path]:
    """Every ``.py`` file of the project: outside hidden, data, run and environment folders."""
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and d not in SKIP_DIRS
            and not os.path.exists(os.path.join(folder, d, "pyvenv.cfg"))
        )
        found.extend(Path(folder) / n for n in names if n.endswith(".py"))
    return sorted(found)


# ------------------------------------------------------------------------------------------- module index
@dataclass
class _Import:
    module: str  # dotted name as written ("" for `from . import x`)
    level: int  # leading dots
    name: str | None  # the name imported from it (`from m import name`), None for `import m`


@dataclass
class _Index:
    """A module's top level: what each name is bound to, and the statements that are not definitions."""

    source: str
    lines: list[str]
    defs: dict[str, list[ast.AST]] = field(default_factory=dict)
    imports: dict[str, list[_Import]] = field(default_factory=dict)
    star: list[_Import] = field(default_factory=list)
    prelude: list[ast.stmt] = field(default_factory=list)
    registered: set[str] = field(default_factory=set)  # definitions a decorator may register on import
    imports_anywhere: list[_Import] = field(default_factory=list)  # every import statement, at any depth
    dynamic: bool = False  # what runs on import chooses code at run time (``importlib.import_module(...)``)

    @property
    def effects(self) -> bool:
        """Whether importing the module does something beyond defining names (``random.seed(1)``,
        ``REG["a"] = f``, a registering decorator): a step of a module that imports it depends on it."""
        return bool(self.prelude) or bool(self.registered) or self.dynamic

    def source_of(self, name: str) -> str:
        """The source a part ``module::name`` is hashed by (``<module>``: the statements that are not
        definitions), each statement once."""
        nodes = self.prelude if name == MODULE_PART else self.defs.get(name, [])
        return "".join(dict.fromkeys(self.text(n) for n in nodes))

    @property
    def exported(self) -> set[str]:
        """The names ``from module import *`` may bind."""
        return set(self.defs) | set(self.imports)

    def text(self, node: ast.AST) -> str:
        """A definition's source, decorators included (a comment inside it counts; moving it does not)."""
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])  # type: ignore[attr-defined]
        return "".join(self.lines[first - 1:node.end_lineno])  # type: ignore[attr-defined]


_INDEXES: dict[tuple[str, int, int], _Index | None] = {}


def _is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":``: runs only when the file is a script, never under ``blase step``."""
    test = getattr(node, "test", None)
    return (isinstance(node, ast.If) and isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__" and len(test.comparators) == 1
            and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value == "__main__")


def _bound(target: ast.AST) -> list[str] | None:
    """The names an assignment target binds, or None when it changes something else (``x.y = 1``)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        out: list[str] = []
        for element in target.elts:
            names = _bound(element.value if isinstance(element, ast.Starred) else element)
            if names is None:
                return None
            out += names
        return out
    return None


def _index(path: Path) -> _Index | None:
    """The top level of the module at ``path`` (None when it cannot be read or parsed); cached by size and
    modification time."""
    try:
        st = path.stat()
    except OSError:
        return None
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _INDEXES:
        return _INDEXES[key]
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        _INDEXES[key] = None
        return None
    index = _Index(source=source, lines=source.splitlines(keepends=True))
    body = list(tree.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]  # the module's docstring
    _walk_top(index, body)
    _, index.imports_anywhere, _, _ = _names(tree)
    # what runs on import (all but function bodies) chooses code at run time: `X = importlib.import_module(...)`
    index.dynamic = any(_names(n)[2] for n in body if not isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
    _INDEXES[key] = index
    return index


# decorators that only wrap or describe what they decorate: they register nothing on import
_PURE_DECORATORS = {"dataclass", "lru_cache", "cache", "cached_property", "property", "staticmethod", "classmethod",
                    "wraps", "total_ordering", "contextmanager", "asynccontextmanager", "overload", "abstractmethod",
                    "singledispatch", "final", "setter", "getter", "deleter", "step"}


def _decorator_name(node: ast.AST) -> str:
    node = node.func if isinstance(node, ast.Call) else node
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def _binds_only(node: ast.stmt) -> bool:
    """Whether a compound statement only binds names (``try: import x except ImportError: x = None``, an ``if``
    choosing a definition): it is then part of the names it binds, not of every step."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Import | ast.ImportFrom | ast.Pass):
        return True
    if isinstance(node, ast.Expr):
        return isinstance(node.value, ast.Constant)
    if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return all(_bound(t) is not None for t in targets)
    if isinstance(node, ast.If | ast.Try):
        inner = [*node.body, *node.orelse, *getattr(node, "finalbody", [])]
        inner += [s for h in getattr(node, "handlers", []) for s in h.body]
        return all(_binds_only(s) for s in inner)
    return False


def _walk_top(index: _Index, body: list[ast.stmt], *, owner: ast.stmt | None = None) -> None:
    """Index a module's top-level statements; inside a top-level ``if``/``try`` (``owner``), a name bound there
    is defined by the whole statement (the condition chooses which binding holds)."""
    for node in body:
        if _is_main_guard(node):
            continue
        where = owner or node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            index.defs.setdefault(node.name, []).append(where)
            if any(_decorator_name(d) not in _PURE_DECORATORS for d in node.decorator_list):
                index.registered.add(node.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                index.imports.setdefault(bound, []).append(_Import(alias.name, 0, None))
                if owner is not None:
                    index.defs.setdefault(bound, []).append(owner)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    index.star.append(_Import(node.module or "", node.level, None))
                else:
                    index.imports.setdefault(alias.asname or alias.name, []).append(
                        _Import(node.module or "", node.level, alias.name))
                    if owner is not None:
                        index.defs.setdefault(alias.asname or alias.name, []).append(owner)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [_bound(t) for t in targets]
            if owner is None and any(n is None for n in names):
                index.prelude.append(node)  # `REG["a"] = f`, `torch.backends.x = True`: it changes something
            for group in names:
                for name in group or []:
                    index.defs.setdefault(name, []).append(where)
        else:
            if owner is None and not _binds_only(node):
                index.prelude.append(node)
            for inner in ("body", "orelse", "finalbody"):
                _walk_top(index, getattr(node, inner, []) or [], owner=where)
            for handler in getattr(node, "handlers", []) or []:
                _walk_top(index, handler.body, owner=where)


def definitions(path: Path) -> dict[str, str]:
    """The source of each top-level name's definitions in module ``path`` (and ``<module>``: its statements
    that are not definitions), as ``step_code`` hashes them; empty when it cannot be parsed."""
    index = _index(path)
    if index is None:
        return {}
    return {name: index.source_of(name) for name in [*index.defs, *([MODULE_PART] if index.prelude else [])]}


def _names(node: ast.AST) -> tuple[set[str], list[_Import], bool, set[str]]:
    """The names ``node`` uses, the imports inside it, whether it chooses code at run time, and the ``.py``
    paths it names (a script it runs: ``subprocess.run([sys.executable, "tool.py"])``)."""
    names: set[str] = set()
    imports: list[_Import] = []
    scripts: set[str] = set()
    dynamic = False
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.add(sub.id)
            dynamic = dynamic or sub.id in _DYNAMIC
        elif isinstance(sub, ast.Attribute):
            # `sys.modules[__name__]`: a name looked up at run time
            dynamic = dynamic or sub.attr in _DYNAMIC or (
                sub.attr == "modules" and isinstance(sub.value, ast.Name) and sub.value.id == "sys")
        elif isinstance(sub, ast.Import):
            imports += [_Import(a.name, 0, None) for a in sub.names]
        elif isinstance(sub, ast.ImportFrom):
            imports += [_Import(sub.module or "", sub.level, None if a.name == "*" else a.name) for a in sub.names]
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) and sub.value.endswith(".py") \
                and len(sub.value) < 300 and "\n" not in sub.value:
            scripts.add(sub.value)
    return names, imports, dynamic, scripts


# ------------------------------------------------------------------------------------- module resolution
class _Resolver:
    """Project module files by import name, found on disk (nothing is imported to find them)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        bases = [Path(p).resolve() for p in sys.path if p and os.path.isdir(p)]
        self.bases = [root] + [b for b in bases if b.is_relative_to(root) and b != root and not in_environment(b)]
        self._folders: dict[str, Path | None] = {}

    def project_file(self, path: Path | str | None) -> Path | None:
        if not path:
            return None
        text = os.fspath(path)
        if not text.endswith(".py") and not os.path.islink(text):
            return None  # (a link named otherwise may still point at a project's .py file)
        # per folder, once: its real path, and whether it is the project's (a step's run imports hundreds of
        # modules from a few dozen folders: resolving each file cost ~20 ms of every step); the file itself is
        # resolved only where it is a link
        folder = os.path.dirname(os.path.abspath(text))
        if folder not in self._folders:
            real = Path(folder).resolve()
            self._folders[folder] = real if real.is_relative_to(self.root) and not in_environment(real) else None
        if os.path.islink(text):
            resolved = Path(text).resolve()
            ours = resolved.is_relative_to(self.root) and not in_environment(resolved)
            return resolved if ours and resolved.suffix == ".py" else None
        real = self._folders[folder]
        return None if real is None else real / os.path.basename(text)

    def module_name(self, path: Path) -> str | None:
        for base in self.bases:
            if path.is_relative_to(base):
                rel = path.relative_to(base).with_suffix("")
                parts = list(rel.parts)
                if parts and parts[-1] == "__init__":
                    parts = parts[:-1]
                return ".".join(parts) if parts else None
        return None

    def files(self, imp: _Import, importer: Path) -> list[Path]:
        """The project files that executing ``imp`` in ``importer`` runs: the module (and its packages'
        ``__init__.py``), or for ``from pkg import sub`` the submodule ``sub`` too."""
        name = imp.module
        if imp.level:
            own = self.module_name(importer) or ""
            package = own if importer.name == "__init__.py" else own.rpartition(".")[0]
            for _ in range(imp.level - 1):
                package = package.rpartition(".")[0]
            name = f"{package}.{name}".strip(".") if name else package
        if not name:
            return []
        out = self._chain(name, importer)
        if imp.name is not None:
            out += self._chain(f"{name}.{imp.name}", importer, only_last=True)
        return out

    def _chain(self, dotted: str, importer: Path, *, only_last: bool = False) -> list[Path]:
        parts = dotted.split(".")
        found = []
        for i in range(1 if not only_last else len(parts), len(parts) + 1):
            path = self._find(".".join(parts[:i]), importer)
            if path is not None:
                found.append(path)
        return found

    def _find(self, dotted: str, importer: Path) -> Path | None:
        module = sys.modules.get(dotted)
        if module is not None:
            return self.project_file(getattr(module, "__file__", None))
        rel = Path(*dotted.split("."))
        for base in [importer.parent, *self.bases]:
            for candidate in (base / rel.with_suffix(".py"), base / rel / "__init__.py"):
                if candidate.is_file():
                    return self.project_file(candidate)
        return None


# ---------------------------------------------------------------------------------------------- analysis
def step_code(root: Path, func: Any = None, script: Path | None = None, entry: Path | None = None) -> CodeUse:
    """The code step function ``func`` uses (or, without one, the script ``script`` as a whole): its parts
    and their hashes. In doubt, every project file. ``entry``: the module imported before the step runs (the
    project's entry module, or the script), whose top-level statements every step depends on."""
    root = root.resolve()
    resolver = _Resolver(root)
    source_file = None
    if func is not None:
        func = inspect.unwrap(func)  # a step wrapped by a decorator of the user's (functools.wraps): its own code
        known = getattr(func, "source_file", None)  # a step known from its source only (core/static_steps.py)
        try:
            source_file = resolver.project_file(known if known is not None else inspect.getsourcefile(func))
        except TypeError:  # a builtin or a callable object: no source file
            source_file = None
    elif script is not None:
        source_file = resolver.project_file(script)
    if source_file is None:
        where = "outside the project" if func is not None else "not known"
        return whole_project(root, f"the step's code is {where}")
    index = _index(source_file)
    if index is None:
        return whole_project(root, f"{source_file.relative_to(root)} cannot be parsed")
    rel = source_file.relative_to(root).as_posix()
    parts: dict[str, str] = {}
    modules: list[Path] = []

    node = _step_node(index, func) if func is not None else None
    if node is None:
        # a method, a nested function, a script without a step function: its whole file
        modules.append(source_file)
        todo: list[str] = []
    else:
        todo = [func.__name__]
    if index.dynamic:
        return whole_project(root, f"the top level of {rel} chooses code at run time (importlib, exec, ...)")
    if index.prelude:
        parts[f"{rel}::{MODULE_PART}"] = hash_bytes(index.source_of(MODULE_PART).encode())
        for n in index.prelude:
            todo += sorted(_names(n)[0])
    todo += sorted(index.registered)  # registered on import: whatever looks them up may be this step
    starred: list[tuple[Path, set[str]]] = []
    modules += _imports_with_effects(resolver, index, source_file, starred)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for imp in index.imports.get(name, []):
            modules += resolver.files(imp, source_file)
        modules += [path for path, exported in starred if name in exported and name not in index.defs]
        nodes = index.defs.get(name)
        if not nodes:
            continue
        parts[f"{rel}::{name}"] = hash_bytes(index.source_of(name).encode())
        for n in nodes:
            names, imports, dynamic, scripts = _names(n)
            if dynamic:
                return whole_project(root, f"`{name}` in {rel} chooses code at run time (eval, exec, globals,"
                                           " sys.modules, __import__ or importlib)")
            todo += sorted(names - seen)
            for imp in imports:
                modules += resolver.files(imp, source_file)
            for named in scripts:  # a project script the step runs (a subprocess) is its code too
                for base in (root, source_file.parent):
                    path = resolver.project_file(base / named)
                    if path is not None and path.is_file():
                        modules.append(path)
    entry_file = resolver.project_file(entry) if entry is not None else None
    if entry_file is not None and entry_file != source_file:
        # the steps live in another module the entry imports: the entry's own top-level statements run first
        entry_index = _index(entry_file)
        if entry_index is None or entry_index.dynamic:
            return whole_project(root, f"{entry_file.relative_to(root)} cannot be parsed or chooses code at run time")
        if entry_index.prelude:
            parts[f"{entry_file.relative_to(root).as_posix()}::{MODULE_PART}"] = hash_bytes(
                entry_index.source_of(MODULE_PART).encode())
        modules += _imports_with_effects(resolver, entry_index, entry_file, [])
    closure = _closure(resolver, modules)
    if any((module := _index(path)) is None or module.dynamic for path in closure):
        return whole_project(root, "a module the step imports cannot be parsed or chooses code at run time")
    try:
        for path in closure:
            parts[path.relative_to(root).as_posix()] = hash_file(path)
    except OSError as exc:  # a module loaded here, deleted on disk since: nothing to compare with
        return whole_project(root, f"{exc.filename} cannot be read")
    return CodeUse(parts)


def _imports_with_effects(resolver: _Resolver, index: _Index, file: Path,
                          starred: list[tuple[Path, set[str]]]) -> list[Path]:
    """The project modules a module imports at its top level that do something when imported (seed the RNG,
    register a plugin): every step of that module runs after them. Those that only define names count where a
    step uses them; for star imports of those, ``starred`` gets the names they bring."""
    out = []
    for imp in [i for found in index.imports.values() for i in found] + index.star:
        for path in resolver.files(imp, file):
            module = _index(path)
            if module is None or module.effects:
                out.append(path)
            elif imp in index.star:
                starred.append((path, module.exported))
    return out


def _step_node(index: _Index, func: Any) -> ast.AST | None:
    """The top-level definition of ``func`` in its module's index (the one whose lines hold its code)."""
    name = getattr(func, "__name__", None)
    code = getattr(func, "__code__", None)
    if not name or code is None or getattr(func, "__qualname__", name) != name:
        return None
    for node in index.defs.get(name, []):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        if first <= code.co_firstlineno <= node.end_lineno:  # type: ignore[operator]
            return node
    return None


def _closure(resolver: _Resolver, start: Iterable[Path]) -> list[Path]:
    """``start`` and every project module they import, transitively."""
    found: dict[Path, None] = {}
    todo = list(start)
    while todo:
        path = todo.pop()
        if path in found:
            continue
        found[path] = None
        module = _index(path)
        for imp in module.imports_anywhere if module is not None else []:
            todo += [p for p in resolver.files(imp, path) if p not in found]
    return sorted(found)


def whole_project(root: Path, reason: str) -> CodeUse:
    """In doubt: every project file is part of the step's code."""
    root = root.resolve()
    return CodeUse({p.relative_to(root).as_posix(): hash_file(p) for p in project_python_files(root)},
                   whole_project=True, reason=reason)


def imported_since(before: set[str], root: Path, *, names: bool = False) -> Any:
    """Project modules imported since ``before`` (a snapshot of ``sys.modules``' names): what the step imported
    while it ran, which static analysis may not have seen (``importlib``, a plugin loading user code).
    ``{part: hash}``, or with ``names`` ``{module name: (part, hash)}``."""
    resolver = _Resolver(root.resolve())
    out = {}
    for name in set(sys.modules) - before:
        file = getattr(sys.modules.get(name), "__file__", None)
        # (a module made by a tool may carry a bare name as its __file__: not a file of the project)
        path = resolver.project_file(file) if isinstance(file, str) and os.path.isabs(file) else None
        if path is not None and path.is_file():
            out[name] = (path.relative_to(resolver.root).as_posix(), hash_file(path))
    return out if names else dict(out.values())
