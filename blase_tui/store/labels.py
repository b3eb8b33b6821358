"""The label store: labels, skips and undos, and label rounds with their queues, in the project's ``blase.db``.

Nothing is ever deleted. A label, a skip and an undo are each a row of ``labels`` (``action``); undoing sets the
undone row's ``superseded_by`` to the undo row, and labelling a key again supersedes its earlier label the same
way. The *current* labels are the label rows nobody superseded. Every call that writes is one committed
transaction and returns after the commit.

>>> from blase_tui.core.project import Project
>>> store = Project.discover().store
>>> round_ = open_round(store)                    # the unfinished round, if any
>>> rows = current_labels(store)                  # [Label(key="1234", label="real", target=1, ...), ...]
"""

from __future__ import annotations

import csv
import getpass
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blase_tui.errors import ConfigError

if TYPE_CHECKING:
    from blase_tui.store.runstore import RunStore

QueueItem = Any  # blase_tui.labelling.queue.QueueItem: key, secondary, location, score, why, proba

OPEN, DONE, ENDED, EXHAUSTED = "open", "done", "ended", "exhausted"
LABEL, SKIP, UNDO = "label", "skip", "undo"


def _journal(conn: sqlite3.Connection, store: RunStore, table: str, where: str, args: tuple[Any, ...]) -> None:
    from blase_tui.store import journal

    journal.record(conn, store.runs_dir, table, where, args, durable=True)


def durable(store: RunStore) -> None:
    """Every commit of this connection is flushed to the disk (a label survives a power cut too)."""
    store.db.query("PRAGMA synchronous = FULL")


def default_labeller() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return os.environ.get("USER", "unknown")


@dataclass(frozen=True)
class Round:
    """A label round: its number, how many labels it wants (``target``), the strategy and model that ordered its
    queue, and whether it is open, done (target reached), exhausted (the pool ran out) or ended by hand."""

    number: int
    target: int
    strategy: str
    model: str | None
    model_run: str | None
    seed: int
    status: str
    started: float
    ended: float | None
    labeller: str | None
    note: str | None

    @property
    def order(self) -> str:
        """How the round's records come: the strategy's name, or ``STRATEGY → random order`` when the model
        scored every record alike and the queue fell back to a seeded random order (the note says why)."""
        if self.strategy != "random" and self.note and "seeded random order" in self.note:
            return f"{self.strategy} → random order"
        return self.strategy

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> Round:
        return cls(r["number"], r["target"], r["strategy"], r["model"], r["model_run"], r["seed"] or 0, r["status"],
                   r["started"], r["ended"], r["labeller"], r["note"])


@dataclass(frozen=True)
class QueueRow:
    """One record of a round's queue, in the order it is offered."""

    position: int
    key: str
    secondary: str | None
    location: str | None
    score: float | None
    why: str
    proba: dict[str, float] | None


@dataclass(frozen=True)
class Label:
    """One row of the label history: a label, a skip or an undo (``action``)."""

    id: int
    key: str
    secondary: str | None
    action: str
    label: str | None
    target: Any
    labeller: str | None
    ts: float
    round: int | None
    model_run: str | None
    strategy: str | None
    score: float | None
    supersedes: int | None
    superseded_by: int | None
    ts_text: str | None = None  # an imported label's timestamp as its file wrote it

    @property
    def active(self) -> bool:
        return self.superseded_by is None

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> Label:
        target = json.loads(r["target"]) if r["target"] is not None else None
        return cls(r["id"], r["key"], r["secondary"], r["action"], r["label"], target, r["labeller"], r["ts"],
                   r["round"], r["model_run"], r["strategy"], r["score"], r["supersedes"], r["superseded_by"],
                   r["ts_text"])


# ------------------------------------------------------------------------------------------------ rounds
def rounds(store: RunStore) -> list[Round]:
    return [Round.from_row(r) for r in store.db.query("SELECT * FROM label_rounds ORDER BY number")]


def get_round(store: RunStore, number: int) -> Round:
    rows = store.db.query("SELECT * FROM label_rounds WHERE number = ?", (number,))
    if not rows:
        raise ConfigError(f"there is no label round {number}; `blase label rounds` lists them.")
    return Round.from_row(rows[0])


def open_round(store: RunStore) -> Round | None:
    """The unfinished round (at most one is open at a time)."""
    rows = store.db.query("SELECT * FROM label_rounds WHERE status = ? ORDER BY number DESC LIMIT 1", (OPEN,))
    return Round.from_row(rows[0]) if rows else None


def _insert_queue(conn: sqlite3.Connection, number: int, first: int, items: Sequence[QueueItem]) -> None:
    conn.executemany(
        "INSERT INTO label_queue (round, position, key, secondary, location, score, why, proba)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(number, first + i, it.key, it.secondary, it.location, it.score, it.why,
          json.dumps(it.proba) if it.proba is not None else None) for i, it in enumerate(items)],
    )


def start_round(store: RunStore, *, target: int, strategy: str, model: str | None, model_run: str | None,
                seed: int, labeller: str | None, items: Sequence[QueueItem], note: str | None = None) -> tuple[Round, bool]:
    """Open round ``last + 1`` with its queue; returns ``(round, True)``. When another process opened a round
    meanwhile, nothing is written and that round comes back with False (resume it). The number is past every
    round the index or the journal knows, labels and queues included: an index rebuilt without a round (a damaged
    journal line) never hands its number out again, which a later rebuild would merge with the real one."""
    from blase_tui.store import journal

    journalled = journal.highest(store.runs_dir, {"label_rounds": "number", "label_queue": "round", "labels": "round"})
    with store.db.write() as conn:
        row = conn.execute("SELECT * FROM label_rounds WHERE status = ? LIMIT 1", (OPEN,)).fetchone()
        if row is not None:
            return Round.from_row(row), False
        indexed = conn.execute("SELECT MAX(n) FROM (SELECT MAX(number) AS n FROM label_rounds UNION ALL"
                               " SELECT MAX(round) FROM labels UNION ALL SELECT MAX(round) FROM label_queue)").fetchone()[0]
        number = max(indexed or 0, journalled) + 1
        conn.execute(
            "INSERT INTO label_rounds (number, target, strategy, model, model_run, seed, status, started, labeller,"
            " note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (number, target, strategy, model, model_run, seed, OPEN, time.time(), labeller, note),
        )
        _insert_queue(conn, number, 0, items)
        _journal(conn, store, "label_rounds", "number = ?", (number,))
        _journal(conn, store, "label_queue", "round = ?", (number,))
    return get_round(store, number), True


def extend_queue(store: RunStore, number: int, items: Sequence[QueueItem]) -> None:
    """Append records to a round's queue (when skips and untrained labels used it up before the target)."""
    with store.db.write() as conn:
        first = conn.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM label_queue WHERE round = ?",
                             (number,)).fetchone()[0]
        _insert_queue(conn, number, first, items)
        _journal(conn, store, "label_queue", "round = ? AND position >= ?", (number, first))


def queue(store: RunStore, number: int) -> list[QueueRow]:
    return [
        QueueRow(r["position"], r["key"], r["secondary"], r["location"], r["score"], r["why"] or "",
                 json.loads(r["proba"]) if r["proba"] else None)
        for r in store.db.query("SELECT * FROM label_queue WHERE round = ? ORDER BY position", (number,))
    ]


def end_round(store: RunStore, number: int, status: str = ENDED) -> None:
    with store.db.write() as conn:
        conn.execute("UPDATE label_rounds SET status = ?, ended = ? WHERE number = ? AND status = ?",
                     (status, time.time(), number, OPEN))
        _journal(conn, store, "label_rounds", "number = ?", (number,))


_DONE = ("SELECT COUNT(*) FROM labels WHERE round = ? AND action = 'label' AND superseded_by IS NULL"
         " AND target IS NOT NULL")


def _done(conn: sqlite3.Connection, number: int) -> int:
    return conn.execute(_DONE, (number,)).fetchone()[0]


def progress(store: RunStore, number: int) -> int:
    """How many of the round's current labels have a training target (what counts towards its target)."""
    return store.db.query(_DONE, (number,))[0][0]


def handled_keys(store: RunStore, number: int) -> set[str]:
    """Keys of the round's queue that need nothing more: labelled (in any round) or skipped in this round."""
    rows = store.db.query(
        "SELECT q.key FROM label_queue q WHERE q.round = ? AND EXISTS (SELECT 1 FROM labels l WHERE l.key = q.key"
        " AND l.superseded_by IS NULL AND (l.action = ? OR (l.action = ? AND l.round = q.round)))",
        (number, LABEL, SKIP),
    )
    return {r["key"] for r in rows}


# ------------------------------------------------------------------------------------------------ labels
def stamp_path(store: RunStore) -> Path:
    """A file touched before every change to the labels: a training step records it as an input dataset, so a
    step is reused only while its labels are unchanged (step reuse compares the files' fingerprints)."""
    return store.root / ".blase" / "labels.stamp"


def _touch(store: RunStore) -> None:
    # Before the commit: a crash after the commit still leaves the stamp changed (at worst a needless retrain).
    path = stamp_path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{time.time_ns()}\n")


def _add(conn: sqlite3.Connection, *, key: str, secondary: str | None, action: str, label: str | None, target: Any,
         labeller: str | None, round_: Round | None, score: float | None, supersedes: int | None = None,
         ts: float | None = None, ts_text: str | None = None) -> int:
    cur = conn.execute(
        "INSERT INTO labels (key, secondary, action, label, target, labeller, ts, round, model_run, strategy, score,"
        " supersedes, ts_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (key, secondary, action, label, None if target is None else json.dumps(target), labeller,
         time.time() if ts is None else ts,
         round_.number if round_ else None, round_.model_run if round_ else None,
         round_.strategy if round_ else None, score, supersedes, ts_text),
    )
    return int(cur.lastrowid)


def import_labels(store: RunStore, rows: Sequence[tuple[str, str | None, str, Any, float | str | None]], *,
                  labeller: str | None = None) -> tuple[int, int]:
    """Add labels made elsewhere (the seed's ``labels.csv``): rows of ``(key, secondary, label, target, ts)``,
    in one transaction, outside any round. ``ts`` is seconds since the epoch, an ISO 8601 text (see
    ``parse_timestamp``: kept as written, and exported as written) or None (now). A row that repeats a key's
    current label is left out, so importing the same file twice changes nothing. Returns ``(added, unchanged)``.
    Raises ValueError for a text that is not ISO 8601 (nothing is added then)."""
    current = {lab.key: lab.label for lab in current_labels(store)}
    added = unchanged = 0
    _touch(store)
    with store.db.write() as conn:
        for key, secondary, label, target, ts in rows:
            if current.get(key) == label:
                unchanged += 1
                continue
            text = (ts.strip() or None) if isinstance(ts, str) else None
            seconds = parse_timestamp(text) if text else None if isinstance(ts, str) else ts
            label_id = _add(conn, key=key, secondary=secondary, action=LABEL, label=label, target=target,
                            labeller=labeller, round_=None, score=None, ts=seconds, ts_text=text)
            conn.execute("UPDATE labels SET superseded_by = ? WHERE key = ? AND action = ? AND superseded_by IS NULL"
                         " AND id <> ?", (label_id, key, LABEL, label_id))
            _journal(conn, store, "labels", "id = ? OR superseded_by = ?", (label_id, label_id))
            current[key] = label
            added += 1
    return added, unchanged


def _get(conn: sqlite3.Connection, label_id: int) -> Label:
    return Label.from_row(conn.execute("SELECT * FROM labels WHERE id = ?", (label_id,)).fetchone())


def add_label(store: RunStore, key: str, label: str, target: Any = None, *, round_: Round | None = None,
              labeller: str | None = None, secondary: str | None = None, score: float | None = None) -> Label:
    """Label ``key``; an earlier current label of the key is superseded (kept in its history). Returns after the
    commit. Reaching the round's target marks the round done in the same transaction."""
    _touch(store)
    with store.db.write() as conn:
        label_id = _add(conn, key=key, secondary=secondary, action=LABEL, label=label, target=target,
                        labeller=labeller, round_=round_, score=score)
        conn.execute("UPDATE labels SET superseded_by = ? WHERE key = ? AND action = ? AND superseded_by IS NULL"
                     " AND id <> ?", (label_id, key, LABEL, label_id))
        if round_ is not None and _done(conn, round_.number) >= round_.target:
            conn.execute("UPDATE label_rounds SET status = ?, ended = ? WHERE number = ? AND status = ?",
                         (DONE, time.time(), round_.number, OPEN))
            _journal(conn, store, "label_rounds", "number = ?", (round_.number,))
        _journal(conn, store, "labels", "id = ? OR superseded_by = ?", (label_id, label_id))
        return _get(conn, label_id)


def skip(store: RunStore, round_: Round, key: str, *, labeller: str | None = None, secondary: str | None = None,
         score: float | None = None) -> Label:
    """Record that the labeller passed on ``key`` in this round: not a label, but a resumed round does not offer
    it again."""
    with store.db.write() as conn:
        label_id = _add(conn, key=key, secondary=secondary, action=SKIP, label=None, target=None,
                        labeller=labeller, round_=round_, score=score)
        _journal(conn, store, "labels", "id = ?", (label_id,))
        return _get(conn, label_id)


def undo(store: RunStore, round_: Round, *, labeller: str | None = None) -> Label | None:
    """Take back the round's last current label or skip: an ``undo`` row supersedes it (the history keeps
    both); the label the key had before, if any, is not restored. Returns the row taken back, or None. A round
    done by that label opens again."""
    _touch(store)
    with store.db.write() as conn:
        row = conn.execute(
            "SELECT * FROM labels WHERE round = ? AND action IN (?, ?) AND superseded_by IS NULL ORDER BY id DESC"
            " LIMIT 1", (round_.number, LABEL, SKIP)).fetchone()
        if row is None:
            return None
        last = Label.from_row(row)
        undo_id = _add(conn, key=last.key, secondary=last.secondary, action=UNDO, label=last.label, target=None,
                       labeller=labeller, round_=round_, score=last.score, supersedes=last.id)
        conn.execute("UPDATE labels SET superseded_by = ? WHERE id = ?", (undo_id, last.id))
        if _done(conn, round_.number) < round_.target:
            conn.execute("UPDATE label_rounds SET status = ?, ended = NULL WHERE number = ? AND status = ?",
                         (OPEN, round_.number, DONE))
            _journal(conn, store, "label_rounds", "number = ?", (round_.number,))
        _journal(conn, store, "labels", "id IN (?, ?)", (undo_id, last.id))
        return _get(conn, last.id)


def current_labels(store: RunStore, *, round_: int | None = None) -> list[Label]:
    """The label of every labelled key (superseded rows left out), oldest first."""
    sql = "SELECT * FROM labels WHERE action = ? AND superseded_by IS NULL"
    args: list[Any] = [LABEL]
    if round_ is not None:
        sql += " AND round = ?"
        args.append(round_)
    return [Label.from_row(r) for r in store.db.query(sql + " ORDER BY id", args)]


def labels_of_secondary(store: RunStore, secondary: str) -> dict[str, int]:
    """How many of the records with this secondary id (an alert's ``objectId``) carry each label now."""
    rows = store.db.query("SELECT label, COUNT(*) AS n FROM labels WHERE action = ? AND superseded_by IS NULL"
                          " AND secondary = ? GROUP BY label ORDER BY n DESC, label", (LABEL, secondary))
    return {r["label"]: int(r["n"]) for r in rows}


def labelled_keys(store: RunStore) -> set[str]:
    return {r["key"] for r in store.db.query(
        "SELECT key FROM labels WHERE action = ? AND superseded_by IS NULL", (LABEL,))}


def history_all(store: RunStore) -> list[Label]:
    """Every label, skip and undo ever recorded, in order."""
    return [Label.from_row(r) for r in store.db.query("SELECT * FROM labels ORDER BY id")]


def history(store: RunStore, key: str) -> list[Label]:
    """Every label, skip and undo of ``key``, oldest first."""
    return [Label.from_row(r) for r in store.db.query("SELECT * FROM labels WHERE key = ? ORDER BY id", (key,))]


def stats(store: RunStore) -> dict[str, Any]:
    """Counts of current labels per label, per round and per labeller."""
    per_label = {r["label"]: r["n"] for r in store.db.query(
        "SELECT label, COUNT(*) AS n FROM labels WHERE action = ? AND superseded_by IS NULL GROUP BY label"
        " ORDER BY n DESC, label", (LABEL,))}
    labellers = {r["labeller"] or "?": r["n"] for r in store.db.query(
        "SELECT labeller, COUNT(*) AS n FROM labels WHERE action = ? AND superseded_by IS NULL GROUP BY labeller"
        " ORDER BY n DESC", (LABEL,))}
    counts = {(r["round"], r["action"]): (r["n"], r["trained"]) for r in store.db.query(
        "SELECT round, action, COUNT(*) AS n, COUNT(target) AS trained FROM labels WHERE superseded_by IS NULL"
        " GROUP BY round, action")}
    undone = store.db.query("SELECT COUNT(*) AS n FROM labels WHERE action = ?", (UNDO,))[0]["n"]
    per_round = []
    for r in rounds(store):
        labelled, trained = counts.get((r.number, LABEL), (0, 0))
        per_round.append({"round": r.number, "status": r.status, "strategy": r.strategy, "order": r.order, "model": r.model,
                          "target": r.target, "done": trained, "labelled": labelled,
                          "skipped": counts.get((r.number, SKIP), (0, 0))[0]})
    return {"total": sum(per_label.values()), "labels": per_label, "rounds": per_round, "labellers": labellers,
            "undone": undone}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def parse_timestamp(text: str) -> float:
    """Seconds since the epoch of an ISO 8601 timestamp (``2024-03-01T12:34:56.789012``, ``...Z``,
    ``...+02:00``); one without an offset is taken as UTC (the time ``export_csv`` writes), whatever the machine's
    time zone. Raises ValueError for a text that is not one."""
    when = datetime.fromisoformat(text.strip())
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp()


def export_rows(store: RunStore) -> Iterable[tuple[str, str | None, str, str, int | None]]:
    """``(key, secondary, label, timestamp, round)`` of each current label: an imported label's timestamp as
    its file wrote it, any other's in UTC to the second."""
    for lab in current_labels(store):
        yield lab.key, lab.secondary, lab.label or "", lab.ts_text or _iso(lab.ts), lab.round


def export_csv(store: RunStore, out: Path | Any, *, key_name: str = "key", secondary_name: str | None = None,
               label_text: Any = None, with_round: bool = False, with_names: bool = False) -> int:
    """Write the current labels as CSV with the seed's columns: ``candid,objectId,label,timestamp`` (named
    after the configured key and secondary id; no secondary column when there is none), and ``round`` with
    ``with_round``. ``label_text`` turns a label into what the file says (its training target: seed 002's
    1/0/empty). ``out`` is a path (written atomically) or an open text file. Returns the number of labels
    written. ``with_names`` adds ``label_name`` (the label itself) beside a ``label`` that holds targets, for
    when two labels share a target and the target alone cannot say which label it was."""
    header = [key_name, *([secondary_name] if secondary_name else []), "label", *(["label_name"] if with_names else []),
              "timestamp", *(["round"] if with_round else [])]

    def write(fh: Any) -> int:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        n = 0
        for key, secondary, label, ts, round_ in export_rows(store):
            writer.writerow([key, *([secondary or ""] if secondary_name else []),
                             label_text(label) if label_text else label, *([label] if with_names else []), ts,
                             *(["" if round_ is None else round_] if with_round else [])])
            n += 1
        return n

    if not isinstance(out, str | Path):
        return write(out)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            n = write(fh)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n
