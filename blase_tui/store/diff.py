"""``blase runs diff A B``: what differs between two runs: params, metrics, code, data, environment, git."""

from __future__ import annotations

import json
from typing import Any

from blase_tui.store.records import RunDescription, StepDescription
from blase_tui.store.runstore import RunStore


def run_environment(store: RunStore, run_id: str, env_hash: str | None) -> dict[str, Any]:
    """The environment a run (or a step execution, by its ``env_hash``) recorded: Python, platform, packages;
    {} when neither its ``env.json`` nor the kept object is there."""
    if env_hash and store.cas.has(env_hash):
        try:
            return json.loads(store.cas.read_bytes(env_hash))
        except ValueError:
            pass
    path = store.run_dir(run_id) / "env.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    return {}


def environment_changes(before: dict[str, Any], now: dict[str, Any], most: int = 3) -> str:
    """What changed between two environments, in a few words: ``s3fs 2026.9.0 added, numpy 2.1.0 → 2.2.0``; ""
    when the earlier one was not recorded (a run imported without its env.json)."""
    if not before:
        return ""
    changes = []
    if before.get("python") != now.get("python"):
        changes.append(f"Python {before.get('python')} → {now.get('python')}")
    old, new = before.get("packages", {}) or {}, now.get("packages", {}) or {}
    for name in sorted(set(old) | set(new)):
        if name not in old:
            changes.append(f"{name} {new[name]} added")
        elif name not in new:
            changes.append(f"{name} removed")
        elif old[name] != new[name]:
            changes.append(f"{name} {old[name]} → {new[name]}")
    if not changes:
        return ""
    return ", ".join(changes[:most]) + (f" (and {len(changes) - most} more)" if len(changes) > most else "")


def _flatten(desc: RunDescription) -> dict[str, dict[str, Any]]:
    """Section -> {item -> value}; per-step items are prefixed with the step name (the latest execution):
    ``train.learning_rate`` for a param, ``train/accuracy`` for a metric (the runs table's and filter's name)."""
    out: dict[str, dict[str, Any]] = {"params": {}, "metrics": {}, "code": {}, "data": {}, "git": {}}
    out["params"].update(desc.params)
    out["metrics"].update(desc.metrics)
    latest: dict[str, StepDescription] = {}
    for s in desc.steps:
        latest[s.step] = s
    for name, s in latest.items():
        out["params"].update({f"{name}.{k}": v for k, v in s.params.items()})
        out["metrics"].update({f"{name}/{k}": v for k, v in s.metrics.items()})  # as the runs table names them
        out["code"][f"{name}.code_hash"] = s.code_hash
        out["code"][f"{name}.function_hash"] = s.func_hash
        for d in s.datasets:
            out["data"][f"{name}.{d.role}.{d.name}"] = d.hash
        for a in s.artifacts:
            out["data"][f"{name}.artifact.{a.name}"] = a.hash
    for a in desc.artifacts:
        if a.name.startswith("code/"):  # the code snapshot a run keeps as it closes: which files changed
            out["code"][a.name] = a.hash
    run = desc.run
    out["git"] = {"commit": run.git_commit, "dirty": run.git_dirty, "patch": run.git_patch_hash}
    return out


def _section(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """What differs between two sections: the items both runs have with other values first (the differences a
    person looks for), then those only A has, then those only B has (a step only one run ran), each sorted."""
    both = sorted(k for k in a.keys() & b.keys() if a[k] != b[k])
    only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
    changed = {k: [a.get(k), b.get(k)] for k in both + only_a + only_b}
    return {"changed": changed, "same": len(a.keys() & b.keys()) - len(both), "differ": len(both),
            "only_a": len(only_a), "only_b": len(only_b)}


def diff_runs(store: RunStore, a: str, b: str, store_b: RunStore | None = None) -> dict[str, Any]:
    """``{"a": id, "b": id, "status": [sa, sb], "sections": {section: {"changed": {item: [va, vb]}, "same": n,
    "differ": n, "only_a": n, "only_b": n}}}``; ``changed`` holds the items whose values differ first, then those
    only A has, then those only B has (the other side None). ``store_b``: B is a run of another project."""
    store_b = store_b or store
    da, db = store.describe_run(a), store_b.describe_run(b)
    fa, fb = _flatten(da), _flatten(db)
    sections = {section: _section(fa[section], fb[section]) for section in fa}
    ea, eb = run_environment(store, a, da.run.env_hash), run_environment(store_b, b, db.run.env_hash)

    def env_items(env: dict[str, Any]) -> dict[str, Any]:
        items = {key: env[key] for key in ("python", "implementation", "platform", "machine", "executable")
                 if key in env}
        items.update({f"package {name}": version for name, version in env.get("packages", {}).items()})
        return items

    sections["environment"] = _section(env_items(ea), env_items(eb))
    return {"a": a, "b": b, "status": [da.run.status, db.run.status], "sections": sections}


def summary(data: dict[str, Any]) -> str:
    """``1 differs, 27 only in B, 12 the same`` for a section of :func:`diff_runs`."""
    parts = [f"{data['differ']} differ" + ("s" if data["differ"] == 1 else "")] if data["differ"] else []
    parts += [f"{data[k]} only in {side}" for k, side in (("only_a", "A"), ("only_b", "B")) if data[k]]
    if data["same"]:
        parts.append(f"{data['same']} the same" if parts else f"all {data['same']} the same")
    return ", ".join(parts) or "nothing to compare"
