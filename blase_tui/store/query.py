"""Read-side queries over the run index: list, find, differing params. Each costs a few indexed lookups, so
they stay fast at tens of thousands of runs."""

from __future__ import annotations

import json
from typing import Any

from blase_tui.store import runrefs
from blase_tui.store.runstore import (
    REPRODUCES,
    REPRODUCTIONS,
    SUCCEEDED,
    RunStore,
    from_json_value,
    to_json_value,
)
from blase_tui.store.values import SETS_TAG, parse_literal


def _param_candidates(text: str, as_set: bool = False) -> list[str]:
    """A ``--param k=v`` value matches the stored JSON of its parsed form or of the plain string; a number
    matches whether it was stored as an int or a float (``C=1`` finds ``C = 1.0``); a list param the step
    declared a set matches in any order (it is stored sorted, without repeats)."""
    from blase_tui.store.values import canonical_set, parse_literal

    value = parse_literal(text)
    out = {to_json_value(value), to_json_value(text)}
    if as_set and isinstance(value, list):
        out.add(to_json_value(canonical_set(value)))
    if isinstance(value, int | float) and not isinstance(value, bool):
        out.add(to_json_value(float(value)))
        if float(value).is_integer():
            out.add(to_json_value(int(value)))
    return sorted(out)


def shared_metric_keys(store: RunStore) -> set[str]:
    """The metric keys that more than one step of the project logs (train's and evaluate's ``accuracy``)."""
    return {r["key"] for r in store.db.query("SELECT key FROM metric_keys GROUP BY key HAVING COUNT(*) > 1")}


def _last_metric_rows(store: RunStore, run_ids: list[str] | None) -> list[Any]:
    """The last value of each metric of each step execution (of ``run_ids``, else of every run), with its step,
    in logging order."""
    scope, args = "", []
    if run_ids is not None:
        if not run_ids:
            return []
        scope, args = f" WHERE run_id IN ({','.join('?' * len(run_ids))})", list(run_ids)
    return store.db.query(
        "SELECT m.run_id, m.key, m.value, s.step FROM metrics m LEFT JOIN step_runs s ON s.id = m.step_run_id"
        f" WHERE m.rowid IN (SELECT MAX(rowid) FROM metrics{scope} GROUP BY run_id, step_run_id, key)"
        " ORDER BY m.rowid", args,
    )


def _named_metrics(store: RunStore, rows: list[Any]) -> dict[str, dict[str, float]]:
    shared = shared_metric_keys(store)
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        key = f"{r['step']}/{r['key']}" if r["key"] in shared and r["step"] is not None else r["key"]
        metrics = out.setdefault(r["run_id"], {})
        metrics.pop(key, None)  # keep the logging order: the newest value last
        metrics[key] = r["value"]
    return out


def last_metrics(store: RunStore, run_ids: list[str] | None = None) -> dict[str, dict[str, float]]:
    """The last value of each metric of each run (of ``run_ids``, else of every run). A key that more than one
    step of the project logs is named ``step/key`` (``train/accuracy``, ``evaluate/accuracy``) in every run, even
    a run where only one of those steps ran, so that a name means the same thing in every run and neither value
    hides the other; a key only one step logs keeps its plain name."""
    return _named_metrics(store, _last_metric_rows(store, run_ids))


def list_runs(
    store: RunStore, *, status: str | None = None, step: str | None = None, limit: int = 20,
    metrics: int | None = 3, check: bool = False, model: str | None = None, since: float | None = None,
    until: float | None = None, hash_prefix: str | None = None, where: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Newest runs first, each with its steps and the last value of up to ``metrics`` metrics (None: all). With
    ``check``, a ``step`` no run has is a ``ConfigError`` naming those that have runs."""
    if check and step is not None:
        _check_names(store, step, {})
    conditions = [parse_where(w) for w in where or []]
    clauses: list[str] = []
    args: list[Any] = []
    if status:
        clauses.append("r.status = ?")
        args.append(status)
    if step:
        clauses.append("EXISTS (SELECT 1 FROM step_runs s WHERE s.run_id = r.id AND s.step = ?)")
        args.append(step)
    if model:  # runs that registered a version of the model
        clauses.append("EXISTS (SELECT 1 FROM models m WHERE m.run_id = r.id AND m.name = ?)")
        args.append(model)
    if since is not None:
        clauses.append("r.started >= ?")
        args.append(since)
    if until is not None:
        clauses.append("r.started < ?")
        args.append(until)
    if hash_prefix:  # a step's signature, code or environment hash, or a dataset's content hash
        like = hash_prefix.lower() + "%"
        clauses.append("(EXISTS (SELECT 1 FROM step_runs s WHERE s.run_id = r.id AND (s.signature LIKE ? OR"
                       " s.code_hash LIKE ? OR s.env_hash LIKE ?)) OR EXISTS (SELECT 1 FROM datasets d WHERE"
                       " d.run_id = r.id AND (d.hash LIKE ? OR d.hash LIKE ?)))")  # a dataset hash: `keys:…`
        args += [like] * 4 + ["%:" + like]
    sql = "SELECT r.* FROM runs r" + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY r.id DESC"
    if limit and limit > 0 and not conditions:
        sql += f" LIMIT {int(limit)}"
    runs = store.db.query(sql, args)
    if conditions:  # metric (or numeric param) conditions, as `runs find --where` reads them
        runs = [r for r in runs if _where_holds(store, r["id"], step, conditions)]
        runs = runs[:limit] if limit and limit > 0 else runs
    if not runs:
        return []
    ids = [r["id"] for r in runs]
    marks = ",".join("?" * len(ids))
    steps: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for s in store.db.query(
        f"SELECT run_id, step, status, started, ended FROM step_runs WHERE run_id IN ({marks}) ORDER BY id", ids
    ):
        steps[s["run_id"]].append({"step": s["step"], "status": s["status"]})
    last = last_metrics(store, ids)
    made_again = reproductions(store, ids)
    out = []
    for r in runs:
        keys = list(last.get(r["id"], {}))
        keys = keys if metrics is None else keys[-metrics:] if metrics else []
        out.append({
            "id": r["id"], "name": r["name"], "status": r["status"], "started": r["started"], "ended": r["ended"],
            "explicit": bool(r["explicit"]), "steps": steps[r["id"]],
            "metrics": {k: last[r["id"]][k] for k in keys}, "reproduces": made_again.get(r["id"]),
        })
    return out


def reproductions(store: RunStore, run_ids: list[str] | None = None) -> dict[str, str]:
    """run id -> the run it reproduces, for the reproductions among ``run_ids`` (every one when None)."""
    if run_ids is not None and not run_ids:
        return {}
    sql, args = "SELECT run_id, value FROM tags WHERE key = ?", [REPRODUCES]
    if run_ids is not None:
        sql += f" AND run_id IN ({','.join('?' * len(run_ids))})"
        args += list(run_ids)
    return {r["run_id"]: str(r["value"]) for r in store.db.query(sql, args)}


def shown_name(run: dict[str, Any]) -> str:
    """A run's name as listings show it: a reproduction says which run it reproduces, in every listing."""
    name = run.get("name") or ""
    if run.get("reproduces"):
        tail = run["reproduces"][-6:]  # the run's tail: any command takes it as the run
        return f"{name} (reproduces {tail})" if name else f"reproduces {tail}"
    return name


_OPS = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
        "<": lambda a, b: a < b, "=": lambda a, b: a == b}


def parse_where(text: str) -> tuple[str, str, float]:
    """``"accuracy>0.9"`` -> ``("accuracy", ">", 0.9)``."""
    from blase_tui.errors import ConfigError

    for op in (">=", "<=", "!=", ">", "<", "="):
        if op in text:
            key, _, value = text.partition(op)
            key = key.strip()
            try:
                return key, op, float(value)
            except ValueError:
                break
    raise ConfigError(f"--where {text}: write it as NAME>NUMBER (or >=, <, <=, =, !=), e.g. --where \"accuracy>0.9\".")


def _check_names(store: RunStore, step: str | None, params: dict[str, str], where: list[str] | None = None) -> None:
    """An unknown step, param or metric is a usage error, not "no run matches"."""
    from blase_tui.errors import ConfigError
    from blase_tui.store.values import malformed_json

    for key, text in params.items():
        problem = malformed_json(text)
        if problem is not None:
            raise ConfigError(
                f"--param {key}={text}: the value starts like JSON but is not valid JSON ({problem}); give valid"
                f" JSON, such as --param '{key}=[\"g\", \"r\"]' for a list or '{key}=\"text\"' for text.")
    if step is not None and not store.db.query("SELECT 1 FROM step_runs WHERE step = ? LIMIT 1", (step,)):
        known = sorted(r["step"] for r in store.db.query("SELECT DISTINCT step FROM step_runs"))
        raise ConfigError(f"--step {step}: no run has a step `{step}`; steps with runs: {', '.join(known) or 'none yet'}.")
    for key in params:
        sql = "SELECT 1 FROM params p WHERE p.key = ?"
        args: list[Any] = [key]
        if step is not None:
            sql += " AND (p.step_run_id = 0 OR p.step_run_id IN (SELECT id FROM step_runs WHERE step = ?))"
            args.append(step)
        if not store.db.query(sql + " LIMIT 1", args):
            where = f" of step `{step}`" if step else ""
            keys_sql = "SELECT DISTINCT key FROM params" + (
                " WHERE step_run_id IN (SELECT id FROM step_runs WHERE step = ?)" if step else "")
            known = sorted(r["key"] for r in store.db.query(keys_sql, [step] if step else []))
            raise ConfigError(f"--param {key}: no run{where} has a param `{key}`; known: {', '.join(known[:30]) or 'none'}.")
    for key in where or []:
        step_name, _, plain = key.rpartition("/")  # `accuracy`, or `train/accuracy` as runs list names it
        if (store.db.query("SELECT 1 FROM metric_keys WHERE key = ? OR (key = ? AND step = ?) LIMIT 1",
                           (key, plain, step_name))  # a key may hold a slash itself (`val/loss`)
                or store.db.query("SELECT 1 FROM params WHERE key = ? LIMIT 1", (key,))
                or store.db.query("SELECT 1 FROM metrics WHERE key = ? AND step_run_id = 0 LIMIT 1", (key,))):
            continue
        known = [r["key"] for r in store.db.query("SELECT DISTINCT key FROM metric_keys ORDER BY key")]
        raise ConfigError(f"--where {key}: no run has a metric or param `{key}`; metrics: "
                          f"{', '.join(known[:30]) or 'none yet'}.")


def find_runs(
    store: RunStore,
    *,
    step: str | None = None,
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    status: str | None = SUCCEEDED,
    limit: int | None = None,
    name: str | None = None,
    where: list[tuple[str, str, float]] | None = None,
    check: bool = False,
    reproductions: bool = False,
) -> list[str]:
    """Ids of runs holding an execution of ``step`` (with ``status``; None for any) whose params (of that
    execution or of the run) and tags match; newest first. ``name`` is a glob on the run's name (``cutouts*``);
    ``where`` keeps runs whose metrics (the step's, else the run's) or numeric params compare as asked. With
    ``check``, an unknown step or param name is a ``ConfigError``."""
    params = dict(params or {})
    if check:
        _check_names(store, step, params, [key for key, _, _ in where or []])
    for key, text in params.items():
        # prefixes and tails of run ids, in a list too, as the step recorded them: whole
        value = runrefs.resolve(store, key, parse_literal(text), where=f"--param {key}")
        if value != parse_literal(text):
            params[key] = value if isinstance(value, str) else to_json_value(value)
    where_parts, args = [], []
    if step is not None:
        where_parts.append("s.step = ?")
        args.append(step)
    if status:
        where_parts.append("s.status = ?" if step is not None else "r.status = ?")
        args.append(status)
    if name:
        where_parts.append("COALESCE(r.name, '') GLOB ?")
        args.append(name)
    if not reproductions:  # a reproduction never stands in for the run it reproduces
        where_parts.append(f"r.id NOT IN {REPRODUCTIONS}")
    sets: set[str] = set()
    declared = [SETS_TAG + step] if step is not None else None
    for row in store.db.query("SELECT DISTINCT value FROM tags WHERE key " + (
            "= ?" if declared else "GLOB ?"), declared or [SETS_TAG + "*"]):
        sets.update(str(row["value"]).split(","))
    items = [(key, _param_candidates(text, key in sets)) for key, text in params.items()]
    if step is not None:
        source = "step_runs s JOIN runs r ON r.id = s.run_id"
        scope = "p.step_run_id IN (0, s.id)"
        if items:
            # Start from the (key, value) index of the first param (CROSS JOIN makes SQLite keep that order): the
            # runs holding a value are few, whereas walking every execution of the step is slow when the match is
            # old.
            key, values = items.pop(0)
            source = ("params p0 CROSS JOIN step_runs s ON s.run_id = p0.run_id AND p0.step_run_id IN (0, s.id)"
                      " JOIN runs r ON r.id = s.run_id")
            where_parts.append(f"p0.key = ? AND p0.value IN ({','.join('?' * len(values))})")
            args += [key, *values]
        order = "ORDER BY s.run_id DESC, s.id DESC"
        select = "SELECT s.run_id AS run_id"
    else:
        source, scope, order, select = "runs r", "1 = 1", "ORDER BY r.id DESC", "SELECT r.id AS run_id"
    for key, values in items:
        run_col = "s.run_id" if step is not None else "r.id"
        where_parts.append(
            f"EXISTS (SELECT 1 FROM params p WHERE p.run_id = {run_col} AND p.key = ? AND {scope}"
            f" AND p.value IN ({','.join('?' * len(values))}))"
        )
        args += [key, *values]
    for key, value in (tags or {}).items():
        run_col = "s.run_id" if step is not None else "r.id"
        where_parts.append(f"EXISTS (SELECT 1 FROM tags t WHERE t.run_id = {run_col} AND t.key = ? AND t.value = ?)")
        args += [key, value]
    sql = f"{select} FROM {source}" + (f" WHERE {' AND '.join(where_parts)}" if where_parts else "") + f" {order}"
    if limit and not where:
        # a run may hold the step twice; over-fetch a little and de-duplicate below
        sql += f" LIMIT {int(limit) * 4}"
    seen: list[str] = []
    for row in store.db.query(sql, args):
        if row["run_id"] in seen:
            continue
        if where and not _where_holds(store, row["run_id"], step, where):
            continue
        seen.append(row["run_id"])
        if limit and len(seen) >= limit:
            break
    return seen


def _where_holds(store: RunStore, run_id: str, step: str | None, where: list[tuple[str, str, float]]) -> bool:
    values: dict[str, float] = {}
    for r in store.db.query(
        "SELECT m.key, m.value, s.step FROM metrics m LEFT JOIN step_runs s ON s.id = m.step_run_id"
        " WHERE m.run_id = ? ORDER BY m.rowid", (run_id,)
    ):
        if step is None or r["step"] in (step, None):
            values[r["key"]] = r["value"]
            if r["step"] is not None:
                values[f"{r['step']}/{r['key']}"] = r["value"]  # as `blase runs list` names a metric two steps log
    if step:
        params = step_params(store, run_id, step)
    else:  # the run's own params, then each step's (`max_iter` the last step's, `train.max_iter` train's)
        params = {}
        for r in store.db.query("SELECT p.key, p.value, s.step FROM params p LEFT JOIN step_runs s ON"
                                " s.id = p.step_run_id WHERE p.run_id = ? ORDER BY p.step_run_id", (run_id,)):
            value = from_json_value(r["value"])
            params[r["key"]] = value
            if r["step"] is not None:
                params[f"{r['step']}.{r['key']}"] = value
    for key, value in params.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            values.setdefault(key, float(value))
    return all(key in values and _OPS[op](values[key], target) for key, op, target in where)


def step_params(store: RunStore, run_id: str, step: str) -> dict[str, Any]:
    """Run-level params overlaid with those of the latest execution of ``step`` in the run."""
    rows = store.db.query(
        "SELECT key, value FROM params WHERE run_id = ? AND (step_run_id = 0 OR step_run_id ="
        " (SELECT MAX(id) FROM step_runs WHERE run_id = ? AND step = ?)) ORDER BY step_run_id",
        (run_id, run_id, step),
    )
    return {r["key"]: from_json_value(r["value"]) for r in rows}


def run_params(store: RunStore, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Every param each run recorded: the run's own and those of the latest execution of each of its steps. A
    key more than one step of these runs records is named ``step/key`` (as ``runs list`` names a metric two
    steps log), so that neither value hides the other."""
    if not run_ids:
        return {}
    rows = store.db.query(
        "SELECT p.run_id, p.key, p.value, s.step FROM params p LEFT JOIN step_runs s ON s.id = p.step_run_id"
        f" WHERE p.run_id IN ({','.join('?' * len(run_ids))}) ORDER BY p.step_run_id", list(run_ids))
    steps_of: dict[str, set[str | None]] = {}
    for r in rows:
        steps_of.setdefault(r["key"], set()).add(r["step"])
    out: dict[str, dict[str, Any]] = {rid: {} for rid in run_ids}
    for r in rows:  # a later execution of a step overrides an earlier one in the same run
        shared = len(steps_of[r["key"]]) > 1 and r["step"] is not None
        out[r["run_id"]][f"{r['step']}/{r['key']}" if shared else r["key"]] = from_json_value(r["value"])
    return out


def differing_params(store: RunStore, run_ids: list[str], step: str | None) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The param keys whose values differ between the runs, and each run's params: those of ``step`` (and the
    run's own), or without a step every param the runs recorded (:func:`run_params`)."""
    per_run = {rid: step_params(store, rid, step) for rid in run_ids} if step else run_params(store, run_ids)
    keys = sorted({k for p in per_run.values() for k in p})
    differ = [k for k in keys if len({to_json_value(p.get(k)) for p in per_run.values()}) > 1]
    return differ, per_run


def run_rows(store: RunStore, *, changed_since: float | None = None, after_rowid: int = 0) -> list[dict[str, Any]]:
    """Every run (or those inserted after ``after_rowid``, started, ended or edited since ``changed_since``, or
    still running) as a flat row for a table: id, name, status, started, ended, the steps in order, the last value
    of each metric (named as :func:`last_metrics` names them, and in ``step_metrics`` by (step, key), a name
    that never changes meaning), the params (the last step's value of each key), and the run's rowid. A few grouped queries, whatever the number of runs, so 10,000 runs
    load in well under a second. Rowids catch runs that arrive with old times (``blase runs reindex``)."""
    if changed_since is None:
        runs = store.db.query("SELECT rowid, id, name, status, started, ended FROM runs")
        scope, args = "", []
    else:
        runs = store.db.query(
            "SELECT rowid, id, name, status, started, ended FROM runs WHERE rowid > ? OR status = 'running'"
            " OR started >= ? OR ended >= ? OR id IN (SELECT run_id FROM run_changes WHERE at >= ?)",
            (after_rowid, changed_since, changed_since, changed_since),
        )
        if not runs:
            return []
        args = [r["id"] for r in runs]
        scope = f" WHERE run_id IN ({','.join('?' * len(args))})"
    steps: dict[str, list[str]] = {}
    for s in store.db.query(f"SELECT run_id, step FROM step_runs{scope} ORDER BY id", args):
        steps.setdefault(s["run_id"], []).append(s["step"])
    metric_rows = _last_metric_rows(store, args if changed_since is not None else None)
    metrics = _named_metrics(store, metric_rows)
    by_step: dict[str, dict[tuple[str, str], float]] = {}  # (step, key): what the runs table's columns show
    for m in metric_rows:
        by_step.setdefault(m["run_id"], {})[(m["step"] or "", m["key"])] = m["value"]
    made_again = reproductions(store, args if changed_since is not None else None)
    params: dict[str, dict[str, Any]] = {}  # every step's params, by key (the filter's `learning_rate=0.002`)
    for prow in store.db.query(f"SELECT run_id, key, value FROM params{scope} ORDER BY step_run_id", args):
        try:
            value = json.loads(prow["value"]) if prow["value"] is not None else None
        except ValueError:
            value = prow["value"]
        params.setdefault(prow["run_id"], {})[prow["key"]] = value
    return [
        {"id": r["id"], "name": r["name"] or "", "status": r["status"], "started": r["started"],
         "ended": r["ended"], "steps": steps.get(r["id"], []), "metrics": metrics.get(r["id"], {}),
         "step_metrics": by_step.get(r["id"], {}), "params": params.get(r["id"], {}), "rowid": r["rowid"], "reproduces": made_again.get(r["id"])}
        for r in runs
    ]


def deleted_runs(store: RunStore, since: float) -> list[str]:
    """The runs deleted since ``since`` (by any process: `blase runs delete`, another TUI)."""
    rows = store.db.query("SELECT run_id FROM run_changes WHERE deleted = 1 AND at >= ?"
                          " AND run_id NOT IN (SELECT id FROM runs)", (since,))
    return [r["run_id"] for r in rows]


def project_summary(store: RunStore) -> dict[str, Any]:
    """Number of runs and the newest run's id, status and start time (for the projects list)."""
    count = store.db.query("SELECT COUNT(*) FROM runs")[0][0]
    last = store.db.query("SELECT id, status, started FROM runs ORDER BY id DESC LIMIT 1")
    return {"runs": int(count), **({k: last[0][k] for k in ("id", "status", "started")} if last else {})}


def tag_values(store: RunStore, key: str) -> dict[str, str]:
    """run id -> value of tag ``key``, for every run that has it (``blase mlflow import`` finds the runs it
    imported before by their ``mlflow.run_id``)."""
    return {r["run_id"]: r["value"] for r in store.db.query("SELECT run_id, value FROM tags WHERE key = ?", (key,))}
