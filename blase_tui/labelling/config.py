"""The ``[labelling]`` table of ``blase.toml``, validated: every bad key is one sentence naming it and the fix.

>>> # blase.toml
>>> # [labelling]
>>> # pool = "data/pool"                     # Parquet file or folder (or reader = "module:function")
>>> # key = "candid"
>>> # secondary = "objectId"
>>> # fields = ["objectId", "magpsf", "drb"]
>>> # features = ["magpsf", "drb", "sgscore1"]
>>> # url = "https://fink-portal.org/{objectId}"
>>> # [labelling.keys]
>>> # r = "real"
>>> # b = "bogus"
>>> # [labelling.targets]
>>> # real = 1
>>> # bogus = 0
"""

from __future__ import annotations

import importlib
import string
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blase_tui.core.config import DEFAULT_MEMORY_BUDGET
from blase_tui.errors import ConfigError

if TYPE_CHECKING:
    from blase_tui.core.project import Project

STRATEGIES = ("least_confidence", "margin", "entropy", "random", "diversity", "ordered")
RESERVED = {"s": "skip", "u": "undo", "o": "open the URL", "q": "save and quit", "?": "help"}
_KEYS = {
    "pool": "a Parquet file or folder relative to the project, such as \"data/pool\"",
    "reader": "\"module:function\" taking the project folder and returning Batches, instead of pool",
    "key": "the column that identifies a record, such as \"candid\"",
    "secondary": "a second id exported with the labels, such as \"objectId\"",
    "fields": "a list of columns shown for each record",
    "image": "a column holding PNG bytes or an image path (or a list of them, shown side by side)",
    "series": "a table such as {x = \"mjd\", y = [\"magpsf\"]} naming array columns to plot",
    "features": "a list of columns, or \"module:function\" building a 2-D float array from a Batch",
    "keys": "a table of one-character keys and the labels they give, such as {r = \"real\"}",
    "targets": "a table of label -> training target, such as {real = 1, bogus = 0}",
    "url": "a URL template such as \"https://fink-portal.org/{objectId}\"",
    "train_step": "the step whose last successful run's model scores the pool",
    "model": "a registered model name",
    "scorer": "\"module:function\" turning a model file into a function from features to class probabilities",
    "strategy": "one of " + ", ".join(STRATEGIES),
    "n": "how many records a round labels",
    "seed": "the seed of random rounds",
    "batch": "a fixed number of records per batch when scoring the pool",
    "candidates": "how many of the most uncertain records diversity chooses among",
}
_WHERE = "blase.toml: [labelling]"


def _fail(message: str) -> ConfigError:
    return ConfigError(f"{_WHERE} {message}")


def _str(raw: dict[str, Any], name: str, *, required: bool = False, default: str | None = None) -> str | None:
    value = raw.get(name, default)
    if value is None:
        if required:
            raise _fail(f"needs `{name}`: {_KEYS[name]}.")
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"`{name}` must be {_KEYS[name]}, not {value!r}.")
    return value.strip()


def _str_list(raw: dict[str, Any], name: str) -> tuple[str, ...]:
    value = raw.get(name, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(f"`{name}` must be {_KEYS[name]}, such as [\"objectId\", \"magpsf\"].")
    return tuple(value)


def _int(raw: dict[str, Any], name: str, default: int | None, minimum: int) -> int | None:
    value = raw.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(f"`{name}` must be a whole number of at least {minimum} ({_KEYS[name]}), not {value!r}.")
    return value


def _function_ref(raw: dict[str, Any], name: str) -> str | None:
    value = _str(raw, name)
    if value is not None and (value.count(":") != 1 or not all(value.split(":"))):
        raise _fail(f"`{name}` must be \"module:function\" (as in \"scripts.features:make\"), not {value!r}.")
    return value


def load_function(ref: str, root: Path, what: str) -> Callable[..., Any]:
    """Import ``"module:function"`` with the project folder on ``sys.path`` (as steps are imported)."""
    module_name, _, func_name = ref.partition(":")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise _fail(f"`{what}`: cannot import {module_name} ({type(exc).__name__}: {exc}); fix the module name.") from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        raise _fail(f"`{what}`: {module_name} has no function {func_name}; fix the name in \"{ref}\".")
    return func


@dataclass(frozen=True)
class Series:
    """Array columns to plot: one ``x`` column, one or more ``y`` columns, optionally a ``group`` column (such
    as the filter id) that splits the points."""

    x: str
    y: tuple[str, ...]
    group: str | None = None
    yerr: tuple[str, ...] = ()  # the error of each y column, in the same order (error bars)

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.x, *self.y, *self.yerr, *((self.group,) if self.group else ()))


@dataclass(frozen=True)
class LabellingConfig:
    """The validated ``[labelling]`` table. ``keys`` maps a key (one character) to its label; ``targets`` maps a
    label to its training target (labels without one, such as "unsure", are kept but not trained on)."""

    root: Path
    key: str
    keys: dict[str, str]
    targets: dict[str, Any]
    pool: Path | None = None
    reader: str | None = None
    secondary: str | None = None
    fields: tuple[str, ...] = ()
    image: str | None = None
    series: Series | None = None
    features: tuple[str, ...] | str = ()
    images: tuple[str, ...] = ()  # every image column (science, template, difference), shown side by side
    url: str | None = None
    train_step: str = "train"
    model: str | None = None
    scorer: str | None = None
    strategy: str = "least_confidence"
    n: int = 10
    seed: int = 0
    batch: int | None = None
    candidates: int | None = None
    memory_budget: int = DEFAULT_MEMORY_BUDGET  # the project's, from parse(); sizes the pool's batches

    @property
    def labels(self) -> list[str]:
        """The label vocabulary, in the order of the keys."""
        return list(dict.fromkeys(self.keys.values()))

    @property
    def url_fields(self) -> tuple[str, ...]:
        if not self.url:
            return ()
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.url) if name)

    @property
    def display_columns(self) -> list[str]:
        """Every column a record shows or needs for its URL (the key and secondary id not included)."""
        cols = [*self.fields, *self.url_fields, *self.images]
        if self.image:
            cols.append(self.image)
        if self.series:
            cols += self.series.columns
        return [c for c in dict.fromkeys(cols) if c not in (self.key, self.secondary)]

    def target_of(self, label: str) -> Any:
        return self.targets.get(label)

    def label_for(self, text: str) -> str | None:
        """The label a value in a labels file stands for: a label's name, a training target (``1`` for the label
        whose target is 1: seed 002's labels.csv), or empty for the one label without a target ("unsure").
        None when nothing matches; a ValueError when a target belongs to more than one label."""
        text = text.strip()
        vocabulary = list(dict.fromkeys(self.keys.values()))
        if text in vocabulary:
            return text
        if text == "":
            untargeted = [label for label in vocabulary if label not in self.targets]
            return untargeted[0] if len(untargeted) == 1 else None
        matching = [label for label, target in self.targets.items() if _same_value(target, text)]
        if len(matching) > 1:
            raise ValueError(f"{text!r} is the target of {' and '.join(matching)}; write the label's name instead")
        return matching[0] if matching else None

    def value_of(self, label: str) -> str:
        """What ``label_for`` reads back as ``label``: its training target as text, empty when it has none."""
        target = self.targets.get(label)
        return "" if target is None else str(target)

    def class_names(self, classes: list[Any] | None) -> list[str]:
        """Names of a model's classes (its training targets) in the user's words: the labels mapped to each."""
        if classes is None:
            return []
        names = []
        for c in classes:
            matching = [label for label, t in self.targets.items() if t == c or str(t) == str(c)]
            names.append("/".join(matching) if matching else str(c))
        return names


def parse(raw: dict[str, Any], root: Path, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> LabellingConfig:
    """Validate the raw ``[labelling]`` table."""
    if not raw:
        raise ConfigError(
            "blase.toml has no [labelling] table; add one with pool, key and [labelling.keys] (see docs/labelling.md)."
        )
    for name in raw:
        if name not in _KEYS:
            raise _fail(f"has an unknown key `{name}`; expected one of {', '.join(_KEYS)}.")
    pool, reader = _str(raw, "pool"), _function_ref(raw, "reader")
    if (pool is None) == (reader is None):
        raise _fail("needs exactly one of `pool` (a Parquet file or folder) and `reader` (\"module:function\").")
    key = _str(raw, "key", required=True)
    assert key is not None

    keys_raw = raw.get("keys")
    if not isinstance(keys_raw, dict) or not keys_raw:
        raise _fail("needs a [labelling.keys] table of keys and labels, such as r = \"real\" and b = \"bogus\".")
    keys: dict[str, str] = {}
    for char, label in keys_raw.items():
        if len(char) != 1 or not char.isprintable() or char.isspace():
            raise _fail(f"keys: `{char}` is not one character; map one key to each label, such as r = \"real\".")
        if char in RESERVED:
            raise _fail(f"keys: `{char}` is reserved for {RESERVED[char]}; give {label!r} another key.")
        if not isinstance(label, str) or not label.strip():
            raise _fail(f"keys: `{char}` must give a label name such as \"real\", not {label!r}.")
        keys[char] = label.strip()

    targets_raw = raw.get("targets")
    if targets_raw is None:
        targets: dict[str, Any] = {label: label for label in keys.values()}
    elif not isinstance(targets_raw, dict):
        raise _fail(f"`targets` must be {_KEYS['targets']}.")
    else:
        targets = {}
        for label, target in targets_raw.items():
            if label not in keys.values():
                raise _fail(f"targets: no key gives the label {label!r}; add it to [labelling.keys] or fix the name.")
            if isinstance(target, bool) or not isinstance(target, int | float | str):
                raise _fail(f"targets: {label!r} must map to a number or a string, not {target!r}.")
            targets[label] = target

    # one image column, or several shown side by side (a science / template / difference triplet)
    images = _str_list(raw, "image") if isinstance(raw.get("image"), list) else \
        ((_str(raw, "image"),) if raw.get("image") is not None else ())
    series = None
    if "series" in raw:
        s = raw["series"]
        y = s.get("y") if isinstance(s, dict) else None
        y = [y] if isinstance(y, str) else y
        yerr = s.get("yerr", []) if isinstance(s, dict) else []
        yerr = [yerr] if isinstance(yerr, str) else yerr
        if (not isinstance(s, dict) or not isinstance(s.get("x"), str) or not isinstance(y, list) or not y
                or not all(isinstance(v, str) for v in y) or not isinstance(s.get("group", ""), str)
                or set(s) - {"x", "y", "group", "yerr"}):
            raise _fail(f"`series` must be {_KEYS['series']} (optionally with group = \"fid\" and"
                        " yerr = [\"sigmapsf\"]).")
        if yerr and (not isinstance(yerr, list) or len(yerr) != len(y) or not all(isinstance(v, str) for v in yerr)):
            raise _fail(f"`series.yerr` names the error column of each y column, in order: {len(y)} name(s) for"
                        f" y = {y}, e.g. yerr = [\"sigmapsf\"].")
        series = Series(x=s["x"], y=tuple(y), group=s.get("group") or None, yerr=tuple(yerr))

    features_raw = raw.get("features", [])
    if isinstance(features_raw, str) and ":" in features_raw:
        features: tuple[str, ...] | str = _function_ref(raw, "features") or ""
    else:
        features = _str_list(raw, "features")

    url = _str(raw, "url")
    if url is not None:
        try:
            list(string.Formatter().parse(url))
        except ValueError as exc:
            raise _fail(f"`url` is not a valid template ({exc}); write fields in braces, as in {{objectId}}.") from None
        if any(spec or conv for _, name, spec, conv in string.Formatter().parse(url) if name):
            raise _fail("`url` takes plain {field} names, without format specs or conversions.")

    strategy = _str(raw, "strategy", default="least_confidence")
    if strategy not in STRATEGIES:
        raise _fail(f"`strategy` must be one of {', '.join(STRATEGIES)}, not {strategy!r}.")
    n = _int(raw, "n", 10, 1)
    candidates = _int(raw, "candidates", None, 1)
    seed = _int(raw, "seed", 0, 0)
    return LabellingConfig(
        root=root, key=key, keys=keys, targets=targets, pool=(root / pool) if pool else None, reader=reader,
        secondary=_str(raw, "secondary"), fields=_str_list(raw, "fields"), image=images[0] if images else None,
        images=images,
        series=series, features=features, url=url, train_step=_str(raw, "train_step", default="train") or "train",
        model=_str(raw, "model"), scorer=_function_ref(raw, "scorer"), strategy=strategy or "least_confidence",
        n=n or 10, seed=seed or 0, batch=_int(raw, "batch", None, 1), candidates=candidates,
        memory_budget=memory_budget,
    )


def load(project: Project) -> LabellingConfig:
    """The project's labelling setup."""
    return parse(project.config.labelling, project.root, project.config.memory_budget)


def _same_value(target: Any, text: str) -> bool:
    if str(target) == text:
        return True
    try:
        return float(target) == float(text)
    except (TypeError, ValueError):
        return False
