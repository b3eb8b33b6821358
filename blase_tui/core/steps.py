"""`@step`: register a function of the project's entry module as a pipeline step, and resolve its params."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from blase_tui.errors import ConfigError
from blase_tui.store.values import parse_literal  # noqa: F401 - part of this module's API

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class StepInfo:
    """A registered step: its name, function, whether it takes ``ctx``, and the defaults of its keyword
    params (``def train(ctx, epochs=5)`` has the param ``epochs`` with default 5)."""

    name: str
    func: Callable[..., Any]
    takes_ctx: bool
    defaults: dict[str, Any]
    accepts_any: bool = False
    reuse: bool | None = None  # None: reused when its inputs are visible; True: even without; False: never
    sets: frozenset[str] = frozenset()  # list params whose order and repeats do not matter (``@step(sets=...)``)

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.func) or ""

    @property
    def summary(self) -> str:
        """The docstring's first paragraph on one line (a sentence may run over several lines)."""
        first = self.doc.strip().split("\n\n", 1)[0]
        return " ".join(line.strip() for line in first.splitlines())


_REGISTRY: dict[str, StepInfo] = {}


def _info(func: Callable[..., Any], name: str, reuse: bool | None = None,
          sets: tuple[str, ...] | list[str] | None = None) -> StepInfo:
    sig = inspect.signature(func)
    takes_ctx = "ctx" in sig.parameters
    defaults, accepts_any = {}, False
    for pname, p in sig.parameters.items():
        if pname == "ctx":
            continue
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            accepts_any = True
        elif p.kind in (inspect.Parameter.VAR_POSITIONAL,):
            continue
        elif p.default is inspect.Parameter.empty:
            raise ConfigError(
                f"step `{name}` has the parameter `{pname}` without a default; give it one"
                f" (`{pname}=...`) so blase can call the step, or set it in blase.toml and add a default."
            )
        else:
            defaults[pname] = p.default
    sets = (sets,) if isinstance(sets, str) else tuple(sets or ())
    unknown = [k for k in sets if k not in defaults and not accepts_any]
    if unknown:
        raise ConfigError(f"@step(sets=...) of step `{name}` names `{unknown[0]}`, which is not one of its params"
                          f" ({', '.join(defaults) or 'none'}).")
    return StepInfo(name=name, func=func, takes_ctx=takes_ctx, defaults=defaults, accepts_any=accepts_any,
                    reuse=reuse, sets=frozenset(sets))


def as_sets(info: StepInfo, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with each list param the step declared a set sorted and without repeats, so ``[r, g]`` and
    ``[g, r, r]`` are one param value: the same signature (reused), recorded and found the same way."""
    from blase_tui.store.values import canonical_set

    return {k: canonical_set(v) if k in info.sets and isinstance(v, list | tuple | set | frozenset) else v
            for k, v in params.items()}


@overload
def step(func: F) -> F: ...
@overload
def step(name: str | None = None, *, reuse: bool | None = None,
         sets: tuple[str, ...] | list[str] | None = None) -> Callable[[F], F]: ...


def step(func: Any = None, name: str | None = None, *, reuse: bool | None = None,
         sets: tuple[str, ...] | list[str] | None = None) -> Any:
    """Register a step. Use as ``@step``, ``@step("name")``, ``@step(reuse=False)`` or
    ``@step(sets=["bands"])``.

    ``reuse``: by default an execution whose code, params, environment and recorded inputs are unchanged is
    reused instead of run again, but only when it recorded inputs blase can see (files the modules read, or
    ``ctx.log_dataset(..., role="input")``); ``reuse=True`` declares that the step reads nothing but its params
    (reused without recorded inputs); ``reuse=False`` runs it every time (a download, a poll of a mailbox).

    >>> @step
    ... def etl(ctx, n_images: int = 500):
    ...     "Write the raw images."
    """
    if isinstance(func, str):
        func, name = None, func

    def register(f: F) -> F:
        step_name = name or f.__name__
        _REGISTRY[step_name] = _info(f, step_name, reuse, sets)
        return f

    return register(func) if callable(func) else register


def registered() -> dict[str, StepInfo]:
    return dict(_REGISTRY)


def clear_registry() -> None:
    _REGISTRY.clear()


def register_functions(funcs: dict[str, Callable[..., Any]] | list[Callable[..., Any]]) -> None:
    """Register plain functions (the seed's ``step_mapping``) without decorating them."""
    items = funcs.items() if isinstance(funcs, dict) else ((f.__name__, f) for f in funcs)
    for name, f in items:
        _REGISTRY[name] = _info(f, name)


def plain_functions(module: Any) -> dict[str, StepInfo]:
    """The steps of an entry module that marks none with ``@step`` (seed 000's main.py): the public functions
    defined in it that take no required argument, other than ``main``."""
    found = {}
    for name, value in vars(module).items():
        if name.startswith("_") or name == "main" or not inspect.isfunction(value):
            continue
        if value.__module__ != module.__name__:
            continue
        try:
            found[name] = _info(value, name)
        except ConfigError:
            continue  # a helper with required arguments is not a step
    return found


# ------------------------------------------------------------------ params
def coerce(key: str, text: str, like: Any) -> Any:
    """Turn the string ``text`` into the type of ``like`` (the param's current value)."""

    def bad(kind: str) -> ConfigError:
        return ConfigError(f"--set {key}={text}: `{key}` takes {kind} (it is {like!r} now); give a value of that type.")

    if like is None:
        return parse_literal(text)
    if isinstance(like, bool):
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise bad("true or false")
    if isinstance(like, int):
        try:
            return int(text)
        except ValueError:
            raise bad("a whole number") from None
    if isinstance(like, float):
        try:
            return float(text)
        except ValueError:
            raise bad("a number") from None
    if isinstance(like, list | dict):
        try:
            value = json.loads(text)
        except ValueError:
            raise bad("a JSON " + type(like).__name__) from None
        if not isinstance(value, type(like)):
            raise bad("a JSON " + type(like).__name__)
        return value
    return text


def param_kind(like: Any) -> str | None:
    """What a param whose default is ``like`` takes, in words (None: anything)."""
    if like is None:
        return None
    if isinstance(like, bool):
        return "true or false"
    if isinstance(like, int):
        return "a whole number"
    if isinstance(like, float):
        return "a number"
    if isinstance(like, list | dict):
        return "a " + ("list" if isinstance(like, list) else "table")
    return "a string" if isinstance(like, str) else None


def check_configured(info: StepInfo, configured: dict[str, Any]) -> dict[str, Any]:
    """``[steps.NAME]`` values checked against the types of the function's defaults, as ``--set`` values are
    (a whole number where a float is expected becomes a float)."""
    out = dict(configured)
    for key, value in configured.items():
        like = info.defaults.get(key)
        kind = param_kind(like)
        ok = (kind is None or (isinstance(like, bool) and isinstance(value, bool))
              or (type(like) is int and type(value) is int)
              or (isinstance(like, float) and isinstance(value, int | float) and not isinstance(value, bool))
              or (isinstance(like, str) and isinstance(value, str))
              or (isinstance(like, list | dict) and isinstance(value, type(like))))
        if not ok:
            raise ConfigError(
                f"[steps.{info.name}] {key} = {value!r} in blase.toml: `{key}` takes {kind} (its default is"
                f" {like!r}); give a value of that type."
            )
        if isinstance(like, float) and isinstance(value, int):
            out[key] = float(value)
    return out


def misspelt_configured(info: StepInfo, configured: dict[str, Any]) -> list[str]:
    """A line for each ``[steps.NAME]`` key that is not an argument of the step but nearly is one (``lrr`` for
    ``lr``): most likely a typo that leaves the argument at its default. Keys unlike any argument are params
    the step reads itself (``ctx.params``), and are left alone."""
    if info.accepts_any:
        return []
    lines = []
    for key in configured:
        if key in info.defaults or key == "memory_budget":
            continue
        import difflib

        near = difflib.get_close_matches(key, list(info.defaults), n=1, cutoff=0.75)
        if near:
            lines.append(f"blase: [steps.{info.name}] {key} in blase.toml is not an argument of `{info.name}`, so"
                         f" `{near[0]}` keeps its value {info.defaults[near[0]]!r}; did you mean `{near[0]}`?")
    return lines


def resolve_params(info: StepInfo, configured: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Function defaults, then ``[steps.NAME]`` from blase.toml, then ``--set key=value`` (type-coerced)."""
    params = dict(info.defaults)
    params.update(check_configured(info, configured))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item}: write it as key=value, e.g. --set epochs=10.")
        key, text = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"--set {item}: the key is empty; write it as key=value.")
        if key not in params and not info.accepts_any:
            known = ", ".join(sorted(params)) or "none"
            raise ConfigError(
                f"--set {key}: step `{info.name}` has no param `{key}` (known: {known});"
                f" add it to [steps.{info.name}] in blase.toml or to the step's arguments."
            )
        params[key] = coerce(key, text, params.get(key))
    return params


def call_args(info: StepInfo, params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Keyword arguments for the step function: ``ctx`` if it takes one, and the params it names."""
    kwargs = {k: v for k, v in params.items() if k in info.defaults or info.accepts_any}
    if info.takes_ctx:
        kwargs["ctx"] = ctx
    return kwargs
