"""``blase runs diff A B``: what differs between two runs: params, metrics, code, data, environment, git."""

from __future__ import annotations

import json
from typing import Any

from blase_tui.store.runstore import RunStore


def _env(store: RunStore, run_id: str, env_hash: str | None) -> dict[str, Any]:
    path = store.run_dir(run_id) / "env.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    if env_hash and store.cas.has(env_hash):
        return json.loads(store.cas.read_bytes(env_hash))
    return {}


def _flatten(desc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Section -> {item -> value}; per-step items are prefixed with the step name (the latest execution)."""
    out: dict[str, dict[str, Any]] = {"params": {}, "metrics": {}, "code": {}, "data": {}, "git": {}}
    out["params"].update({k: v for k, v in desc["params"].items()})
    out["metrics"].update({k: v for k, v in desc["metrics"].items()})
    latest: dict[str, dict[str, Any]] = {}
    for s in desc["steps"]:
        latest[s["step"]] = s
    for name, s in latest.items():
        out["params"].update({f"{name}.{k}": v for k, v in s["params"].items()})
        out["metrics"].update({f"{name}.{k}": v for k, v in s["metrics"].items()})
        sig = s["signature"]
        out["code"][f"{name}.code_hash"] = sig["code_hash"]
        out["code"][f"{name}.function_hash"] = sig["func_hash"]
        for d in s["datasets"]:
            out["data"][f"{name}.{d['role']}.{d['name']}"] = d["hash"]
        for a in s["artifacts"]:
            out["data"][f"{name}.artifact.{a['name']}"] = a["hash"]
    for a in desc["artifacts"]:
        if a["name"].startswith("code/"):  # the code snapshot a run keeps as it closes: which files changed
            out["code"][a["name"]] = a["hash"]
    out["git"] = {"commit": desc["git"]["commit"], "dirty": desc["git"]["dirty"], "patch": desc["git"]["patch_hash"]}
    return out


def diff_runs(store: RunStore, a: str, b: str) -> dict[str, Any]:
    """``{"a": id, "b": id, "sections": {section: {"changed": {item: [va, vb]}, "same": n}}}``."""
    da, db = store.describe_run(a), store.describe_run(b)
    fa, fb = _flatten(da), _flatten(db)
    sections: dict[str, Any] = {}
    for section in fa:
        keys = sorted(set(fa[section]) | set(fb[section]))
        changed = {k: [fa[section].get(k), fb[section].get(k)] for k in keys if fa[section].get(k) != fb[section].get(k)}
        sections[section] = {"changed": changed, "same": len(keys) - len(changed)}
    ea, eb = _env(store, a, da["env_hash"]), _env(store, b, db["env_hash"])
    env_changed: dict[str, list[Any]] = {}
    for key in ("python", "implementation", "platform", "machine", "executable"):
        if ea.get(key) != eb.get(key):
            env_changed[key] = [ea.get(key), eb.get(key)]
    pa, pb = ea.get("packages", {}), eb.get("packages", {})
    for name in sorted(set(pa) | set(pb)):
        if pa.get(name) != pb.get(name):
            env_changed[f"package {name}"] = [pa.get(name), pb.get(name)]
    sections["environment"] = {
        "changed": env_changed,
        "same": len(set(pa) & set(pb)) - sum(1 for k in env_changed if k.startswith("package ") and k[8:] in pa and k[8:] in pb),
    }
    return {"a": a, "b": b, "status": [da["status"], db["status"]], "sections": sections}
