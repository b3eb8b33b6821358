"""``LabellingSession``: one person labelling one round, without any UI. The Textual labelling screen and
``blase label --plain`` both drive it.

>>> from blase_tui.labelling import LabellingSession
>>> with LabellingSession(".", strategy="margin", n=10) as session:
...     while not session.done:
...         record = session.current()          # key, fields, image, series, why, url...
...         session.label("r")                  # committed before it returns
...     print(session.progress())               # (10, 10)

Opening a session resumes the project's unfinished round, with the same records in the same order; otherwise
it builds a queue (see :mod:`blase_tui.labelling.queue`) and opens the next round. The records after the
current one are read from the pool on a background thread, so the next record is ready before the key is
pressed. A session is driven by one caller at a time.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blase_tui.errors import BlaseError, ConfigError
from blase_tui.labelling import config as config_mod
from blase_tui.labelling.pool import Pool
from blase_tui.labelling.queue import ModelInfo, build_queue, model_by_ref
from blase_tui.labelling.strategies import UNCERTAINTY
from blase_tui.store import labels as label_store
from blase_tui.store.labels import Label, QueueRow, Round

if TYPE_CHECKING:
    from blase_tui.core.project import Project


@dataclass(frozen=True)
class Record:
    """What the labeller sees of one record. ``fields`` holds the configured columns; ``image`` the PNG bytes
    (read from the path when the column holds one); ``series`` the plotted array columns; ``proba`` the model's
    class probabilities by class name; ``missing`` is true when the record is no longer in the pool."""

    key: str
    secondary: str | None
    fields: dict[str, Any]
    image: bytes | None
    series: dict[str, np.ndarray] | None
    score: float | None
    why: str
    proba: dict[str, float] | None
    url: str | None
    position: int
    missing: bool = False
    images: dict[str, bytes | None] | None = None  # each configured image column, when there are several
    group: tuple[int, dict[str, int]] | None = None  # records of the same secondary id in the pool, their labels


class _Prefetcher:
    """Reads records on a thread ahead of the labeller; ``get`` waits only for a record nobody asked for yet."""

    def __init__(self, load: Callable[[list[QueueRow]], dict[str, Record]]) -> None:
        self._load = load
        self._cond = threading.Condition()
        self._ready: dict[str, Record] = {}
        self._pending: dict[str, QueueRow] = {}
        self._inflight: set[str] = set()
        self._errors: dict[str, BaseException] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="blase-label-prefetch", daemon=True)
        self._thread.start()

    def _ask(self, rows: Sequence[QueueRow]) -> None:
        for r in rows:
            if r.key not in self._ready and r.key not in self._inflight:
                self._pending.setdefault(r.key, r)
        self._cond.notify_all()

    def want(self, rows: Sequence[QueueRow], keep: set[str]) -> None:
        with self._cond:
            for key in [k for k in self._ready if k not in keep]:
                del self._ready[key]
            self._ask(rows)

    def get(self, row: QueueRow) -> Record:
        with self._cond:
            if self._closed:
                raise BlaseError("this labelling session is closed; open a new one to go on.")
            self._ask([row])
            while row.key not in self._ready and row.key not in self._errors:
                self._cond.wait()
            if row.key in self._errors:
                raise self._errors.pop(row.key)
            return self._ready[row.key]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                batch = list(self._pending.values())
                self._pending.clear()
                self._inflight = {r.key for r in batch}
            error: BaseException | None = None
            try:
                records = self._load(batch)
            except BaseException as exc:  # noqa: BLE001 - raised in the caller of get()
                records, error = {}, exc
            with self._cond:
                for r in batch:
                    if r.key in records:
                        self._ready[r.key] = records[r.key]
                    else:
                        self._errors[r.key] = error or BlaseError(f"record {r.key} could not be read.")
                self._inflight = set()
                self._cond.notify_all()


def _open_project(project: Project | str | Path) -> Project:
    from blase_tui.core.project import Project

    return project if isinstance(project, Project) else Project.discover(Path(project))


class LabellingSession:
    """Label one round: ``current()`` is the record to label, ``label(key)``, ``skip()`` and ``undo()`` act on
    it and commit before returning, ``progress()`` is ``(labels with a target, round target)``.

    ``strategy`` and ``n`` apply to a new round (default: ``[labelling]``); giving ones that differ from an
    unfinished round's is an error (finish it, or end it with ``blase label end-round``). ``progress`` is called
    with ``(records scanned, pool size)`` while a new queue is built. ``prefetch``: records read ahead.
    """

    def __init__(self, project: Project | str | Path, strategy: str | None = None, n: int | None = None,
                 labeller: str | None = None, *, progress: Callable[[int, int | None], None] | None = None,
                 prefetch: int = 16) -> None:
        self.project = _open_project(project)
        self.config = config_mod.load(self.project)
        self.store = self.project.store
        self.labeller = labeller or label_store.default_labeller()
        self.prefetch = max(1, prefetch)
        self._pool = Pool(self.config)
        self._groups: dict[str, int] | None = None
        self._columns = [c for c in (self.config.secondary, *self.config.display_columns) if c]
        self._pool.check_columns(self._columns, "`secondary`, `fields`, `image`, `series` or `url`")
        label_store.durable(self.store)  # each label survives a power cut too: fsync every commit
        self._model: ModelInfo | None = None
        current = label_store.open_round(self.store)
        self.resumed = current is not None
        if current is None:
            current = self._start(strategy, n, progress)
        if self.resumed:
            self._check_resume(current, strategy, n)
        self.round: Round = current
        self._rows = label_store.queue(self.store, current.number)
        self._handled = label_store.handled_keys(self.store, current.number)
        self._pos = 0
        self._fetcher = _Prefetcher(self._read)
        self._move()

    # ----------------------------------------------------------------------------------- setup
    def _start(self, strategy: str | None, n: int | None, progress: Callable[[int, int | None], None] | None) -> Round:
        target = n or self.config.n
        number = (max((r.number for r in label_store.rounds(self.store)), default=0)) + 1
        seed = self.config.seed + number - 1
        queue = build_queue(self.project, strategy=strategy, n=2 * target, seed=seed, config=self.config,
                            progress=progress)
        if not queue.items:
            raise BlaseError(f"no record is left to label: all {queue.scanned} records of the pool are labelled or"
                             " were trained on; add records to the pool first.")
        self._model = queue.model
        round_, created = label_store.start_round(
            self.store, target=target, strategy=queue.strategy, model=queue.model.ref if queue.model else None,
            model_run=queue.model.run_id if queue.model else None, seed=seed, labeller=self.labeller,
            items=queue.items, note=queue.note)
        self.resumed = not created
        return round_

    def _check_resume(self, current: Round, strategy: str | None, n: int | None) -> None:
        # asking again for the uncertainty strategy a first round (no model yet) turned into random is no conflict
        fell_back = current.model is None and current.strategy == "random" and strategy in UNCERTAINTY
        if (strategy and strategy != current.strategy and not fell_back) or (n and n != current.target):
            raise ConfigError(
                f"label round {current.number} is unfinished ({current.strategy}, {current.target} records); run"
                " `blase label` without --strategy/--n to finish it, or `blase label end-round` to close it first."
            )

    def _model_info(self) -> ModelInfo | None:
        if self._model is None and self.round.model:
            self._model = model_by_ref(self.store, self.round.model)
        return self._model

    # ---------------------------------------------------------------------------------- reading
    def _read(self, rows: list[QueueRow]) -> dict[str, Record]:
        found = self._pool.fetch([(r.key, r.location) for r in rows], self._columns)
        return {r.key: self._record(r, found.get(r.key)) for r in rows}

    def _record(self, row: QueueRow, data: dict[str, Any] | None) -> Record:
        cfg = self.config
        values = data or {}

        def picture(column: str) -> bytes | None:
            value = values.get(column)
            if value is not None and not isinstance(value, bytes):
                path = Path(str(value))
                path = path if path.is_absolute() else cfg.root / path
                value = path.read_bytes() if path.is_file() else None
            return value

        image = picture(cfg.image) if cfg.image else None
        images = {c: picture(c) for c in cfg.images} if len(cfg.images) > 1 else None
        series = None
        if cfg.series:
            series = {c: np.asarray(values.get(c) if values.get(c) is not None else []) for c in cfg.series.columns}
        url = None
        if cfg.url and data is not None:
            names = {cfg.key: row.key, **({cfg.secondary: row.secondary} if cfg.secondary else {}), **values}
            try:
                url = cfg.url.format_map(names)
            except (KeyError, ValueError, IndexError):
                url = None
        why = row.why if data is not None else f"{row.why} (no longer in the pool)".strip()
        return Record(key=row.key, secondary=row.secondary, fields={f: values.get(f) for f in cfg.fields},
                      image=image, series=series, score=row.score, why=why, proba=row.proba, url=url,
                      position=row.position, missing=data is None, images=images)

    def _move(self) -> None:
        """Go to the first record of the queue nobody has labelled or skipped, extending the queue when it ran
        out before the target, and ask for the records after it."""
        self._pos = next((i for i, r in enumerate(self._rows) if r.key not in self._handled), len(self._rows))
        if self._pos == len(self._rows) and self.round.status == label_store.OPEN:
            self._extend()
        ahead = [r for r in self._rows[self._pos:] if r.key not in self._handled][: self.prefetch]
        keep = {r.key for r in ahead} | {r.key for r in self._rows[max(0, self._pos - 4):self._pos]}
        self._fetcher.want(ahead, keep)

    def _extend(self) -> None:
        done, target = self.progress()
        queue = build_queue(self.project, strategy=self.round.strategy, n=2 * (target - done),
                            model=self._model_info(), exclude={r.key for r in self._rows}, seed=self.round.seed,
                            config=self.config)
        if not queue.items:
            label_store.end_round(self.store, self.round.number, label_store.EXHAUSTED)
            self.round = label_store.get_round(self.store, self.round.number)
            return
        label_store.extend_queue(self.store, self.round.number, queue.items)
        self._rows = label_store.queue(self.store, self.round.number)
        self._pos = next((i for i, r in enumerate(self._rows) if r.key not in self._handled), len(self._rows))

    # ---------------------------------------------------------------------------------- public
    @property
    def keys(self) -> dict[str, str]:
        """The labelling keys and their labels, from ``[labelling.keys]``."""
        return dict(self.config.keys)

    @property
    def done(self) -> bool:
        """True once the round reached its target, ran out of records, or was ended."""
        return self.round.status != label_store.OPEN or self._pos >= len(self._rows)

    def model_warning(self) -> str | None:
        """A sentence when the round's model is stale: a newer version of it exists (a resumed round keeps the
        order it started with), or none was trained since the previous round."""
        from blase_tui.store import models

        r = self.round
        name, _, version = (r.model or "").partition(":")
        if not name:
            return None
        newest = max((m.version for m in models.list_models(self.store) if m.name == name), default=0)
        if version.isdigit() and newest > int(version):
            return (f"round {r.number} was ordered by {r.model}; {name}:{newest} is newer. Finish the round, or "
                    "`blase label end-round` and label again to use it.")
        earlier = [x for x in label_store.rounds(self.store) if x.number < r.number]
        if earlier and earlier[-1].model == r.model:
            return (f"no model was trained since round {earlier[-1].number}: this round is ordered by the same "
                    f"{r.model}. Run `blase step {self.config.train_step}` first to learn from the last round's labels.")
        return None

    def progress(self) -> tuple[int, int]:
        """``(labels with a training target in this round, the round's target)``."""
        return label_store.progress(self.store, self.round.number), self.round.target

    def current(self) -> Record | None:
        """The record to label now (None when the round is done), with its group: how many records of the pool
        share its secondary id (an object's alerts) and how they are labelled so far."""
        if self.done:
            return None
        record = self._fetcher.get(self._rows[self._pos])
        if record.secondary is not None and self.config.secondary:
            counts = self._secondary_counts()
            record = dataclasses.replace(record, group=(
                counts.get(str(record.secondary), 1), label_store.labels_of_secondary(self.store, str(record.secondary))))
        return record

    def _secondary_counts(self) -> dict[str, int]:
        """The number of records of each secondary id in the pool: one scan of that column, once a session."""
        if self._groups is None:
            from collections import Counter

            counts: Counter[str] = Counter()
            for part in self._pool.scan([self.config.secondary]):
                counts.update(str(v) for v in part.table.column(self.config.secondary).to_pylist())
            self._groups = dict(counts)
        return self._groups

    def _current_row(self) -> QueueRow:
        if self.done:
            raise BlaseError(f"label round {self.round.number} is finished; start the next one with `blase label`.")
        return self._rows[self._pos]

    def _after_write(self) -> None:
        self.round = label_store.get_round(self.store, self.round.number)
        self._move()

    def label(self, key: str) -> Label:
        """Give the current record the label of ``key`` (from ``[labelling.keys]``); returns the stored row after
        the commit and moves to the next record."""
        if key not in self.config.keys:
            known = ", ".join(f"{k} {v}" for k, v in self.config.keys.items())
            raise ConfigError(f"`{key}` is not a labelling key; the keys are {known}.")
        row = self._current_row()
        name = self.config.keys[key]
        saved = label_store.add_label(self.store, row.key, name, self.config.target_of(name), round_=self.round,
                                      labeller=self.labeller, secondary=row.secondary, score=row.score)
        self._handled.add(row.key)
        self._after_write()
        return saved

    def skip(self) -> Label:
        """Pass on the current record (recorded, so a resumed round does not offer it again; not a label)."""
        row = self._current_row()
        saved = label_store.skip(self.store, self.round, row.key, labeller=self.labeller, secondary=row.secondary,
                                 score=row.score)
        self._handled.add(row.key)
        self._after_write()
        return saved

    def undo(self) -> Label | None:
        """Take back the round's last label or skip (the history keeps it); that record is offered again.
        Returns the row taken back, or None when there is nothing to undo."""
        undone = label_store.undo(self.store, self.round, labeller=self.labeller)
        if undone is not None:
            self._handled.discard(undone.key)
            self._after_write()
        return undone

    def close(self) -> None:
        """Stop reading ahead. Labels are already saved; an unfinished round resumes next time."""
        self._fetcher.close()

    def __enter__(self) -> LabellingSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
