"""Lineage: which runs fed a run, and which runs it fed.

Two kinds of link, both from what the store already holds:

- a **param that names a run** (``run``, ``*_run``, ``*_run_id``: ``merge --set cutouts_run=...``);
- a **dataset one run wrote and another read**: the same path and the same content hash (datasets carry one
  hash form, ``xxh3:``, whether written or read), the writer being the newest run before the reader that
  wrote it.

A reused step links to the run that computed its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from blase_tui.store.runstore import RunStore, from_json_value
from blase_tui.store.values import is_run_param


@dataclass
class Link:
    """``source`` fed ``target``: through the param ``via`` (``param cutouts_run``) or a dataset
    (``data/merged.txt``)."""

    source: str
    target: str
    via: str


@dataclass
class Lineage:
    run: str
    down: bool
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {"steps": [...], "status", "name"}
    links: list[Link] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.run, "direction": "down" if self.down else "up", "runs": self.runs,
                "links": [{"from": k.source, "to": k.target, "via": k.via} for k in self.links]}


def _feeders(store: RunStore, run_id: str) -> list[Link]:
    """The runs that fed ``run_id``, one link per param or dataset."""
    links: list[Link] = []
    for p in store.db.query("SELECT key, value FROM params WHERE run_id = ?", (run_id,)):
        value = from_json_value(p["value"])
        if is_run_param(p["key"]) and isinstance(value, str) and store.get_run(value) is not None and value != run_id:
            links.append(Link(value, run_id, f"param {p['key']}"))
    for s in store.db.query("SELECT id, skipped_from FROM step_runs WHERE run_id = ? AND skipped_from IS NOT NULL",
                            (run_id,)):
        producer = store.producer(store.step_run(s["id"]))
        if producer["run_id"] != run_id:
            links.append(Link(producer["run_id"], run_id, f"reused step {producer['step']}"))
    for d in store.db.query(
        "SELECT i.path, i.hash FROM datasets i WHERE i.run_id = ? AND i.role = 'input' AND i.hash IS NOT NULL",
        (run_id,),
    ):
        writer = store.db.query(
            "SELECT o.run_id FROM datasets o WHERE o.role = 'output' AND o.hash = ? AND o.path = ? AND o.run_id < ?"
            " ORDER BY o.run_id DESC LIMIT 1", (d["hash"], d["path"], run_id))
        if writer:
            links.append(Link(writer[0]["run_id"], run_id, d["path"]))
    return links


def _fed(store: RunStore, run_id: str) -> list[Link]:
    """The runs ``run_id`` fed."""
    links: list[Link] = []
    for p in store.db.query("SELECT DISTINCT run_id, key FROM params WHERE value = ? AND run_id != ?",
                            (f'"{run_id}"', run_id)):
        if is_run_param(p["key"]):
            links.append(Link(run_id, p["run_id"], f"param {p['key']}"))
    for d in store.db.query(
        "SELECT DISTINCT i.run_id, i.path FROM datasets o JOIN datasets i ON i.hash = o.hash AND i.path = o.path"
        " AND i.role = 'input' WHERE o.run_id = ? AND o.role = 'output' AND i.run_id > ?", (run_id, run_id),
    ):
        # only when this run is the newest writer of that content before the reader
        newest = store.db.query(
            "SELECT run_id FROM datasets WHERE role = 'output' AND path = ? AND hash = (SELECT hash FROM datasets"
            " WHERE run_id = ? AND path = ? AND role = 'input' LIMIT 1) AND run_id < ? ORDER BY run_id DESC LIMIT 1",
            (d["path"], d["run_id"], d["path"], d["run_id"]))
        if newest and newest[0]["run_id"] == run_id:
            links.append(Link(run_id, d["run_id"], d["path"]))
    return links


def lineage(store: RunStore, run_id: str, *, down: bool = False, depth: int = 50) -> Lineage:
    """The graph of runs that fed ``run_id`` (or, with ``down``, that it fed), transitively."""
    out = Lineage(run_id, down)
    todo, seen = [run_id], {run_id}
    for _ in range(depth):
        if not todo:
            break
        nxt = []
        for rid in todo:
            for link in (_fed(store, rid) if down else _feeders(store, rid)):
                if all((k.source, k.target, k.via) != (link.source, link.target, link.via) for k in out.links):
                    out.links.append(link)
                other = link.target if down else link.source
                if other not in seen:
                    seen.add(other)
                    nxt.append(other)
        todo = nxt
    for rid in seen:
        run = store.get_run(rid)
        out.runs[rid] = {"name": run["name"] if run else None, "status": run["status"] if run else "gone",
                         "steps": [s["step"] for s in store.step_runs(rid)]}
    return out
