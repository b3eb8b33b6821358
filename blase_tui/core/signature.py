"""What a step execution depends on: code, params, environment and git state, each reduced to a hash."""

from __future__ import annotations

import inspect
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from blase_tui.store.hashing import hash_bytes, hash_json


@dataclass(frozen=True)
class GitState:
    commit: str | None
    dirty: bool
    patch: str  # `git diff HEAD` plus the names of untracked files; empty when clean

    @property
    def patch_hash(self) -> str | None:
        return hash_bytes(self.patch.encode()) if self.patch else None


def git_state(root: Path) -> GitState | None:
    """The commit and uncommitted changes of the repository holding ``root``, or None outside git."""
    if not any((folder / ".git").exists() for folder in (root, *root.parents)):
        return None
    import subprocess

    try:
        out = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain=v2", "--branch", "--untracked-files=normal", "."],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    commit = None
    changed, untracked = False, []
    for line in out.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split()[2]
            commit = None if oid == "(initial)" else oid
        elif line.startswith("? "):
            untracked.append(line[2:])
        elif line and not line.startswith("#"):
            changed = True
    patch = ""
    if changed and commit:
        patch = subprocess.run(
            ["git", "-C", str(root), "diff", "HEAD", "--", "."], capture_output=True, text=True, timeout=60
        ).stdout
    if untracked:
        patch += "".join(f"# untracked: {name}\n" for name in untracked)
    return GitState(commit=commit, dirty=bool(changed or untracked), patch=patch)


_IN_PROCESS: dict[str, dict[str, Any]] = {}


def environment_hash(env: dict[str, Any]) -> str:
    """What the signature compares: everything but the interpreter's path, which differs between `blase`
    (``bin/python3``) and ``python main.py`` (``bin/python``) for the same environment (``prefix`` says which),
    and the thread settings (recorded, and named by ``runs reproduce`` when they differ, but a cron job and a
    terminal with other settings should reuse each other's work)."""
    return hash_json({k: v for k, v in env.items() if k not in ("executable", "threads")})


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")


def threads() -> dict[str, Any]:
    """How many threads numeric libraries may use here: the CPUs and the variables that cap them. PyTorch,
    BLAS and scikit-learn sum floats in another order with another thread count, so a reproduction with other
    settings can differ in the last digits."""
    return {"cpus": os.cpu_count(), **{v: os.environ[v] for v in THREAD_VARIABLES if v in os.environ}}


def _site_dirs() -> list[str]:
    return sorted({p for p in sys.path if p and ("site-packages" in p or "dist-packages" in p) and os.path.isdir(p)})


def environment(cache_dir: Path | None = None) -> dict[str, Any]:
    """Python, platform and installed packages. Listing packages costs ~0.1 s, so the result is cached and keyed
    by the interpreter and the modification times of its site-packages folders (an install changes them)."""
    key = hash_json([sys.executable, sys.prefix, [(d, os.stat(d).st_mtime_ns) for d in _site_dirs()]])
    if key in _IN_PROCESS:
        return {**_IN_PROCESS[key], "threads": threads()}
    cache = cache_dir / f"env-{key[:16]}.json" if cache_dir else None
    if cache is not None and cache.is_file():
        try:
            env = json.loads(cache.read_text())
            _IN_PROCESS[key] = env
            return {**env, "threads": threads()}
        except (OSError, ValueError):
            pass
    import platform
    from importlib import metadata

    packages = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            packages[name.lower()] = dist.version
    env = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "prefix": sys.prefix,
        "executable": sys.executable,
        "packages": dict(sorted(packages.items())),
    }
    _IN_PROCESS[key] = env
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(env))
            os.replace(tmp, cache)
        except OSError:
            pass
    return {**env, "threads": threads()}


def project_code_files(root: Path, entry: str, scripts: tuple[str, ...] = (), extra: tuple[Path, ...] = ()) -> list[Path]:
    """The code kept with a run (``code/`` artifacts): the entry module plus the project's Python files
    (``scripts`` folders when configured, else every .py outside data, run and environment folders), plus
    ``extra`` files inside the project (a script step's script, the modules its steps used)."""
    from blase_tui.core.codeuse import project_python_files

    files = {root / entry, *(p for p in extra if p.is_relative_to(root))}
    tops = [root / s for s in scripts] if scripts else [root]
    for top in tops:
        if top.is_file():
            files.add(top)
        elif top.is_dir():
            files.update(project_python_files(top))
    return sorted(f for f in files if f.is_file())


def function_source(func: Any) -> str:
    """``inspect.getsource(func)``, the same text, found through the file's syntax tree: ``inspect`` finds a
    function's end by tokenizing, whose first use compiles a regular expression costing ~5 ms of every step's
    start. Where the tree does not name the function (a lambda, code made at run time), ``inspect`` answers."""
    code = getattr(inspect.unwrap(func), "__code__", None)
    if code is not None and code.co_name != "<lambda>":
        import ast
        import linecache

        lines = linecache.getlines(code.co_filename)
        try:
            tree = ast.parse("".join(lines)) if lines else None
        except (SyntaxError, ValueError):
            tree = None
        for node in ast.walk(tree) if tree is not None else ():
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == code.co_name:
                first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
                if first == code.co_firstlineno and node.end_lineno is not None:
                    return "".join(lines[first - 1:_block_end(node, lines)])
    return inspect.getsource(func)


def def_source(filename: str, node: Any) -> str | None:
    """The source of the definition ``node`` of the file ``filename`` as :func:`function_source` gives it for
    the function it defines (``core/static_steps.py``: a step known without importing its module)."""
    import linecache

    lines = linecache.getlines(filename)
    if not lines or node.end_lineno is None:
        return None
    first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    return "".join(lines[first - 1:_block_end(node, lines)])


def _block_end(node: Any, lines: list[str]) -> int:
    """The last line ``inspect`` counts as the function's: its last statement's, or a comment after it indented
    as deep as the body (blank lines and shallower comments pass, anything else ends the block)."""
    end = int(node.end_lineno)
    body = node.body[0]
    if lines[body.lineno - 1][:body.col_offset].strip():  # `def f(): return 1`: no indented body
        return end
    for number in range(end + 1, len(lines) + 1):
        text = lines[number - 1]
        stripped = text.lstrip()
        if not stripped.strip():
            continue
        if not stripped.startswith("#"):
            break
        if len(text) - len(stripped) >= body.col_offset:
            end = number
    return end


def function_hash(func: Any) -> str:
    known = getattr(func, "source_hash", None)  # a step known from its source only (core/static_steps.py)
    if isinstance(known, str):
        return known
    try:
        source = function_source(func)
    except (OSError, TypeError):
        source = getattr(func, "__qualname__", repr(func))
    return hash_bytes(source.encode())


@dataclass(frozen=True)
class Signature:
    """Everything that decides a step's result; equal signatures (and unchanged inputs) mean equal outputs.
    The git commit is recorded beside it but left out: the code hash already covers the code, and a commit that
    only touched the docs should not force a rerun."""

    step: str
    func_hash: str
    code_hash: str  # of the parts of the project's code the step uses (``core/codeuse.py``)
    params_hash: str
    env_hash: str

    @property
    def digest(self) -> str:
        return hash_json(asdict(self))
