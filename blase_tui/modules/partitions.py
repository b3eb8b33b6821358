"""Batches that an executor's workers read, transform and write (``blase step etl --executor dask``).

Under an executor, ``Extract.load_parquet`` and ``Extract.load_images`` yield :class:`DeferredBatch` objects:
the recipe of a batch (a Parquet row group, a run of image files) instead of its data. ``Transform.apply_function``
adds its function to the recipe; ``Load.save_to_filesystem`` sends the recipe to a worker, which reads the
batch, applies the functions and writes the shard under a hidden name. The step's process takes the results
in the order the batches were sent: it renames each shard into place as the next one, adds it to the manifest,
reports the batch's bad records and moves the progress bar. The output is therefore the one a run in one
process writes with the same batches, while the workers read, transform and write side by side.

Batches are sized from one worker's share of the memory budget (the step's budget / workers), since a worker
holds one batch at a time; a run in one process with that budget (or the same ``batch_size``) writes the same
shards, byte for byte, with the same manifest hash.

Anything else that looks at a deferred batch (``len(batch)``, ``batch["image"]``, ``Clean``, ``Examine``) reads
it here, in the step's process, as without an executor. A Parquet row group larger than a batch is one
deferred batch standing for its batches: a worker writes one shard per batch, as one process would, but one
read here holds them all.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blase_tui.modules import recording
from blase_tui.modules.batch import BadRecord, Batch, BatchMeta
from blase_tui.modules.budget import per_worker

if TYPE_CHECKING:
    from blase_tui.modules.extract import Extract

WINDOW = 2  # batches sent per worker before the step waits for the oldest one

Op = Callable[[Batch], Batch]


@dataclass(frozen=True)
class Recipe:
    """How to read one batch anywhere: the reader's plan and the part of it (a Parquet ``(file, row group, first row,
    index, start)``, or images ``(index, files)``); ``label`` names it in messages."""

    reader: str
    plan: Any
    part: tuple[Any, ...]
    label: str

    def __str__(self) -> str:
        return self.label


def read(recipe: Recipe, extract: Extract) -> Iterator[Batch]:
    """The batches of ``recipe``, read in this process (bad records go to ``extract``)."""
    from blase_tui.modules.readers import images, parquet

    if recipe.reader == "parquet":
        file, group, row, index, start = recipe.part
        return parquet.read_group(recipe.plan, file, group, row, index=index, start=start)
    index, paths = recipe.part
    return images.read_chunk(extract, recipe.plan, index, paths)


@dataclass(frozen=True)
class Job:
    """A batch for a worker: its recipe, the functions to apply, how to write it (``write(batch, stem)``, or
    None) and the hidden name prefix of its shards. Named by its recipe in messages."""

    recipe: Recipe
    ops: tuple[Op, ...]
    write: Callable[..., dict[str, Any]] | None
    prefix: str

    def __str__(self) -> str:
        return str(self.recipe)


def _collecting(recipe: Recipe) -> Extract:
    """An Extract for reading ``recipe`` that keeps its bad records instead of reporting them: the step's
    process reports each batch's once (``Stream.report``), whoever read it."""
    from blase_tui.modules.extract import Extract

    extract = Extract(on_error=getattr(recipe.plan, "on_error", "skip"))  # a Parquet plan has no bad records
    extract._report = False
    return extract


def work(job: Job) -> dict[str, Any]:
    """What a worker does with a batch: read it, apply the functions, write its shards under hidden names;
    returns what the step's process needs to finish the job."""
    recipe, ops, write, prefix = job.recipe, job.ops, job.write, job.prefix
    extract = _collecting(recipe)
    pieces, done, nbytes = [], 0, 0
    for n, batch in enumerate(read(recipe, extract)):
        done += len(batch)
        nbytes += batch.nbytes
        for op in ops:
            batch = op(batch)
        piece: dict[str, Any] = {"records": len(batch)}
        if write is not None and len(batch):
            piece.update(write(batch, f"{prefix}{n:04d}"))
        pieces.append(piece)
    if recipe.reader == "images":
        done = len(recipe.part[1])  # the images bar counts files, bad ones included
    return {"pieces": pieces, "bad": [b.as_dict() for b in extract.bad_records], "read": done, "nbytes": nbytes}


# ------------------------------------------------------------------------------------------ the queue
_QUEUE: collections.deque[tuple[Any, Callable[[dict[str, Any]], None]]] = collections.deque()
_TOKENS = itertools.count()
_ENDING: list[Any] = [None]  # the step whose end waits for the queue


def _send(executor: Any, task: Job, what: str, on_result: Callable[[dict[str, Any]], None]) -> None:
    step = recording.step()
    if step is not None and _ENDING[0] is not step:  # what is still owed when the step ends, before the executor
        _ENDING[0] = step                            # closes (a loop that kept batches to save after it ended)
        recording.at_end(drain, first=True)
    _QUEUE.append((executor.submit(work, task, what=what), on_result))
    while len(_QUEUE) > WINDOW * max(1, int(getattr(executor, "workers", 1))):
        _finish_oldest()


def _finish_oldest() -> None:
    future, on_result = _QUEUE.popleft()
    try:
        result = future.result()
    except BaseException:
        cancel()
        raise
    on_result(result)


def drain() -> None:
    """Wait for every batch sent to the workers and finish them in order."""
    while _QUEUE:
        _finish_oldest()


def cancel() -> None:
    while _QUEUE:
        future, _ = _QUEUE.popleft()
        future.cancel()


# ------------------------------------------------------------------------------------------ streams
class Stream:
    """One reader call under an executor, on the step's side: its progress bar, the bad records reported so
    far (each batch's once, whether a worker or this process read it) and the batches whose functions still
    have to run."""

    def __init__(self, extract: Extract, executor: Any, stage: str, total: int | None, unit: str) -> None:
        self.extract = extract
        self.executor = executor
        self.bar = recording.progress(stage, total=total, unit=unit)
        self.reported: set[str] = set()
        self.bad = 0
        self.loose: dict[int, DeferredBatch] = {}

    def report(self, recipe: Recipe, bad: list[BadRecord]) -> None:
        if recipe.label in self.reported:
            return
        self.reported.add(recipe.label)
        self.bad += len(bad)
        for record in bad:
            self.extract.bad_records.append(record)
            recording.bad_record(record)

    def finished(self, recipe: Recipe, result: dict[str, Any]) -> None:
        self.report(recipe, [BadRecord(**b) for b in result["bad"]])
        self.bar.update(result["read"], nbytes=result["nbytes"])

    def run_loose(self) -> None:
        """Functions applied to batches that were neither saved nor looked at still run (they may write files
        of their own), on the workers, their results dropped."""
        for batch in list(self.loose.values()):
            batch.send(None, lambda result: None)


def stream(extract: Extract, executor: Any, recipes: list[Recipe], *, stage: str, total: int | None,
           unit: str, finish: Callable[[Stream], None]) -> Iterator[DeferredBatch]:
    """The deferred batches of ``recipes``; at the end, what was sent is waited for, then ``finish`` records
    the read (its input dataset)."""
    state = Stream(extract, executor, stage, total, unit)
    try:
        for recipe in recipes:
            yield DeferredBatch(state, recipe)
    except GeneratorExit:  # the loop stopped early (break): what it sent is still written
        drain()
        state.bar.close()
        raise
    state.run_loose()
    drain()
    state.bar.close()
    finish(state)


class DeferredBatch(Batch):
    """A batch not read yet: its recipe and the functions to apply once it is. Reading any of its fields
    (``keys``, ``data``, ``len()``, a column) reads it here; ``Transform`` and ``Load`` send it to a worker."""

    def __init__(self, state: Stream, recipe: Recipe, ops: tuple[Op, ...] = ()) -> None:  # noqa: D107
        self._state = state
        self._recipe = recipe
        self._ops = ops
        self._made: Batch | None = None
        if ops:
            state.loose[id(self)] = self

    def __repr__(self) -> str:
        return f"DeferredBatch({self._recipe.label}, {len(self._ops)} function(s))"

    @property
    def pending(self) -> bool:
        return self._made is None

    def then(self, op: Op) -> DeferredBatch:
        """This batch with ``op`` applied, still deferred."""
        self._state.loose.pop(id(self), None)
        return DeferredBatch(self._state, self._recipe, self._ops + (op,))

    def send(self, write: Callable[..., dict[str, Any]] | None, on_pieces: Callable[[list[dict[str, Any]]], None]) -> None:
        """Read, transform and write this batch on a worker; ``on_pieces`` gets its shards, in send order."""
        state, recipe = self._state, self._recipe
        state.loose.pop(id(self), None)

        def done(result: dict[str, Any]) -> None:
            state.finished(recipe, result)
            on_pieces(result["pieces"])

        prefix = f".partial-{next(_TOKENS):06d}-"
        _send(state.executor, Job(recipe, self._ops, write, prefix), "the batch of", done)

    def materialize(self) -> Batch:
        """Read the batch here (once) and apply its functions."""
        if self._made is None:
            from blase_tui.modules.transform import _concat

            state, recipe = self._state, self._recipe
            state.loose.pop(id(self), None)
            extract = _collecting(recipe)
            pieces = []
            for batch in read(recipe, extract):
                for op in self._ops:
                    batch = op(batch)
                pieces.append(batch)
            state.report(recipe, extract.bad_records)
            if not pieces:
                made = Batch([], {}, BatchMeta(str(getattr(recipe.plan, "root", "")), 0))
            else:
                made = pieces[0] if len(pieces) == 1 else _concat(pieces)
            self._made = made
        return self._made

    # the Batch fields, read on first use
    @property  # type: ignore[override]
    def keys(self) -> Any:
        return self.materialize().keys

    @property  # type: ignore[override]
    def data(self) -> Any:
        return self.materialize().data

    @property  # type: ignore[override]
    def meta(self) -> BatchMeta:
        return self.materialize().meta

    @property  # type: ignore[override]
    def bad_records(self) -> list[BadRecord]:
        return self.materialize().bad_records


# ------------------------------------------------------------------------------------------ the readers
def share(extract: Extract, executor: Any, memory_budget: Any) -> Any:
    """The budget a batch is sized from: one worker's share, unless a budget was given to the reader or to
    ``Extract``."""
    if memory_budget is not None or extract._budget_given:
        return memory_budget
    return per_worker(extract.memory_budget, getattr(executor, "workers", 1))


def parquet_batches(extract: Extract, executor: Any, path: str | Path, **options: Any) -> Iterator[Batch]:
    from blase_tui.modules.readers import parquet

    options["memory_budget"] = share(extract, executor, options.get("memory_budget"))
    plan = parquet.plan(extract, path, **options)
    if plan is None:
        return iter(())
    recipes, index, start = [], 0, 0
    settings = replace(plan, files=[], groups=[], offsets=[])  # what a worker needs, whatever the dataset's size
    for file, groups, offsets in zip(plan.files, plan.groups, plan.offsets, strict=True):
        for group in groups:
            rows = offsets[group + 1] - offsets[group]
            label = f"row group {group} of {file}"
            recipes.append(Recipe("parquet", settings, (file, group, offsets[group], index, start), label))
            index, start = index + -(-rows // plan.per_batch), start + rows

    def finish(state: Stream) -> None:
        recording.dataset(plan.root, role="input", records=plan.total_rows)

    return stream(extract, executor, recipes, stage=f"load_parquet {plan.root}",
                  total=plan.total_rows if plan.expression is None else None, unit="records", finish=finish)


def image_batches(extract: Extract, executor: Any, directory: str | Path, **options: Any) -> Iterator[Batch]:
    from blase_tui.modules.readers import images

    options["memory_budget"] = share(extract, executor, options.get("memory_budget"))
    plan = images.plan(extract, directory, **options)
    recipes, settings = [], plan.settings()
    for index, paths in plan.chunks():
        last = paths[-1].relative_to(plan.base).as_posix()
        label = f"images {paths[0].relative_to(plan.base).as_posix()} to {last} of {plan.root}"
        recipes.append(Recipe("images", settings, (index, paths), label))

    def finish(state: Stream) -> None:
        recording.dataset(plan.root, role="input", records=len(plan.files) - state.bad)

    return stream(extract, executor, recipes, stage=f"load_images {plan.root}", total=len(plan.files),
                  unit="images", finish=finish)
