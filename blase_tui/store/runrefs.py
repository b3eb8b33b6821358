"""Run ids inside param values, wherever they are: a whole string, an item of a list, a value of a dict, or part of
a path (``runs/<id>/cutouts/artifacts/cutouts.npy``). Seed 004 chains steps by passing run ids (``--cutouts-id
A B``, ``--merged-cutouts-id M``), so they are what lineage follows and what reuse must see through:

- **resolved when recorded**: a unique prefix or random tail of an id (``q2cx7a``) becomes the whole id, in
  lists and dicts too, so the store only ever holds whole ids;
- **followed by lineage**, whatever the param's name;
- **compared by content for reuse**: a step given another run whose outputs are the same as those of the run
  it was given before computes the same result, so its signature holds what that run made, not its id. A
  chain whose first step ran again with the same result runs nothing below it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from blase_tui.errors import ConfigError
from blase_tui.store.hashing import hash_json
from blase_tui.store.values import is_run_param, is_timing

if TYPE_CHECKING:
    from blase_tui.store.runstore import RunStore

_TAIL = "[0-9a-hjkmnp-tv-z]{6}"  # the six random characters (store/ids.py's alphabet)
RUN_ID = re.compile(rf"(?<![0-9A-Za-z])\d{{8}}-\d{{9}}-{_TAIL}(?![0-9A-Za-z])")
_TAIL_ONLY = re.compile(_TAIL)


def names_runs(key: str, *, item: bool = False) -> bool:
    """Whether param ``key`` says it holds runs: ``run``, ``cutouts_run``, ``source_run_id`` (a string), or, for
    the items of a list, ``runs``, ``cutouts_runs``, ``run_ids``. Any reference ``resolve_run`` takes (a prefix,
    a tail, a name, ``latest``) is resolved there, and one that matches no run is an error. Params named
    otherwise (``merged_cutouts_id``, ``cutouts_ids``) are searched too, but only whole ids and whole tails of a
    run's id are taken as runs, and nothing else is an error (``patient_id`` holds no run; a date and time such
    as ``20240612-093000`` stays one)."""
    if item:
        return key in ("runs", "run_ids") or key.endswith(("_runs", "_run_ids"))
    return is_run_param(key)


def ids_in(value: Any) -> list[str]:
    """The whole run ids a param value holds anywhere, in order, without repeats."""
    found: dict[str, None] = {}
    for text in _strings(value):
        for match in RUN_ID.findall(text):
            found[match] = None
    return list(found)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def resolve(store: RunStore, key: str, value: Any, *, where: str | None = None) -> Any:
    """``value`` (of param ``key``) with each reference to a run written as the whole id (see ``names_runs``
    for which are); an error names the param as ``where`` says (``param `cutouts_run` of step `merge```)."""

    def one(text: str, top: bool) -> str:
        if not text or RUN_ID.fullmatch(text):
            return text
        if names_runs(key, item=not top):
            try:
                return store.resolve_run(text)
            except ConfigError as exc:
                raise ConfigError(f"{where or f'param `{key}`'}: {exc}") from None
        if _TAIL_ONLY.fullmatch(text):
            exact = store.db.query("SELECT id FROM runs WHERE id LIKE ? LIMIT 2", ("%-" + text,))
            return exact[0]["id"] if len(exact) == 1 else text
        return text

    def walk(v: Any, top: bool) -> Any:
        if isinstance(v, str):
            return one(v, top)
        if isinstance(v, list):
            return [walk(x, False) for x in v]
        if isinstance(v, tuple):
            return tuple(walk(x, False) for x in v)
        if isinstance(v, dict):
            return {k: walk(x, False) for k, x in v.items()}
        return v

    return walk(value, True)


def content(store: RunStore, run_id: str) -> str:
    """What a run made, as one hash: each step's artifacts, output datasets, params and last metrics (but those
    that measure time). Two runs that made the same things have the same content."""
    desc = store.describe_run(run_id)
    steps = []
    for s in desc.steps:
        steps.append({
            "step": s.step,
            "artifacts": sorted((a.name, a.hash) for a in s.artifacts if not a.name.startswith("code/")),
            "outputs": sorted((d.path or d.name, d.hash) for d in s.datasets if d.role == "output"),
            "params": s.params,
            "metrics": {k: v for k, v in s.metrics.items() if not is_timing(k)},
        })
    steps.sort(key=lambda s: hash_json(s))
    return hash_json({
        "artifacts": sorted((a.name, a.hash) for a in desc.artifacts if not a.name.startswith("code/")),
        "params": desc.params,
        "steps": steps,
    })


def by_content(store: RunStore, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with each run id replaced by that run's content (``run:<hash>``), for the signature."""
    cache: dict[str, str] = {}

    def sub(text: str) -> str:
        def repl(match: re.Match[str]) -> str:
            rid = match.group(0)
            if rid not in cache:
                cache[rid] = "run:" + content(store, rid)[:32] if store.get_run(rid) is not None else rid
            return cache[rid]
        return RUN_ID.sub(repl, text)

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return sub(v)
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            return {sub(k) if isinstance(k, str) else k: walk(x) for k, x in v.items()}
        return v

    return {k: walk(v) for k, v in params.items()}
