"""Lineage: which runs fed a run, and which runs it fed.

Links come from what the store already holds:

- a **param that holds a run id**, whatever its name and wherever in its value: ``merge --set
  cutouts_run=...``, seed 004's ``--cutouts-id A B`` (a list) and ``--merged-cutouts-id M``, a path such as
  ``runs/<id>/cutouts/artifacts/cutouts.npy`` (ids are recorded whole: ``store/runrefs.py``);
- a **file read from another run's folder** (``runs/<id>/...``, an artifact of that run);
- a **dataset one run wrote and another read**: the same path and the same content hash (every writer and
  reader computes one hash per dataset: ``store/filehash.py``), the writer being the newest run before the
  reader that wrote it;
- a **reused step**: the run that computed its outputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from blase_tui.store.query import reproductions
from blase_tui.store.runrefs import RUN_ID, ids_in
from blase_tui.store.runstore import NOT_REPRODUCTION, RunStore, from_json_value

_RUN_FOLDER = re.compile(rf"^runs/({RUN_ID.pattern})/")


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
    for p in store.db.query("SELECT key, value FROM params WHERE run_id = ? ORDER BY key", (run_id,)):
        for source in ids_in(from_json_value(p["value"])):
            if source != run_id and store.get_run(source) is not None:
                links.append(Link(source, run_id, f"param {p['key']}"))
    for s in store.step_runs(run_id):
        if not s.skipped_from:
            continue
        producer = store.producer(s)
        if producer.run_id != run_id:
            links.append(Link(producer.run_id, run_id, f"reused step {producer.step}"))
    for d in store.db.query(
        "SELECT i.path, i.hash FROM datasets i WHERE i.run_id = ? AND i.role = 'input' AND i.hash IS NOT NULL",
        (run_id,),
    ):
        folder = _RUN_FOLDER.match(d["path"] or "")
        if folder is not None:
            if folder.group(1) != run_id and store.get_run(folder.group(1)) is not None:
                links.append(Link(folder.group(1), run_id, d["path"]))
            continue
        writer = store.db.query(
            "SELECT o.run_id FROM datasets o WHERE o.role = 'output' AND o.hash = ? AND o.path = ? AND o.run_id < ?"
            f" AND o.{NOT_REPRODUCTION} ORDER BY o.run_id DESC LIMIT 1", (d["hash"], d["path"], run_id))
        if writer:
            links.append(Link(writer[0]["run_id"], run_id, d["path"]))
    return links


def _fed(store: RunStore, run_id: str) -> list[Link]:
    """The runs ``run_id`` fed."""
    links: list[Link] = []
    escaped = run_id.replace("_", "\\_").replace("%", "\\%")
    for p in store.db.query("SELECT DISTINCT run_id, key, value FROM params WHERE value LIKE ? ESCAPE '\\'"
                            " AND run_id != ? ORDER BY run_id, key", (f"%{escaped}%", run_id)):
        if run_id in ids_in(from_json_value(p["value"])):
            links.append(Link(run_id, p["run_id"], f"param {p['key']}"))
    for d in store.db.query("SELECT DISTINCT run_id, path FROM datasets WHERE role = 'input' AND path LIKE ?"
                            " ESCAPE '\\' AND run_id != ?", (f"runs/{escaped}/%", run_id)):
        links.append(Link(run_id, d["run_id"], d["path"]))
    for r in store.db.query(
        "SELECT DISTINCT s.run_id, p.step FROM step_runs s JOIN step_runs p ON p.id = s.skipped_from"
        " WHERE p.run_id = ? AND s.run_id != ?", (run_id, run_id),
    ):
        links.append(Link(run_id, r["run_id"], f"reused step {r['step']}"))
    for d in store.db.query(
        "SELECT DISTINCT i.run_id, i.path FROM datasets o JOIN datasets i ON i.hash = o.hash AND i.path = o.path"
        " AND i.role = 'input' WHERE o.run_id = ? AND o.role = 'output' AND i.run_id > ?", (run_id, run_id),
    ):
        # only when this run is the newest writer of that content before the reader
        newest = store.db.query(
            "SELECT run_id FROM datasets WHERE role = 'output' AND path = ? AND hash = (SELECT hash FROM datasets"
            f" WHERE run_id = ? AND path = ? AND role = 'input' LIMIT 1) AND run_id < ? AND {NOT_REPRODUCTION}"
            " ORDER BY run_id DESC LIMIT 1",
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
    made_again = reproductions(store, list(seen))
    for rid in seen:
        run = store.get_run(rid)
        out.runs[rid] = {"name": run.name if run else None, "status": run.status if run else "gone",
                         "steps": [s.step for s in store.step_runs(rid)], "reproduces": made_again.get(rid)}
    return out
