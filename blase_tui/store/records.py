"""Typed records of what the store holds, so the index's schema stays inside ``store/``.

Callers get small frozen values instead of ``sqlite3.Row``s and plain dicts::

    Run               a run (``runs`` row)                    RunStore.get_run, open_explicit_run
    StepRun           a step execution (``step_runs`` row)    step_run, step_runs, find_reusable, producer, ...
    Artifact          a kept file: name, hash, size
    Dataset           a dataset a step read or wrote
    MetricPoint       one logged value of a metric            metric_series
    RunDescription    a run with everything recorded about it: describe_run, and what run.json holds
    StepDescription   one step execution of it
    ModelVersion      a registered model version              store.models.list_models
    ModelVersionDetail  the same with its card and file       store.models.get
    SavedModel        a version saved in a run, and where     store.models.in_run

``from_row`` is the one place that knows a table's column names. ``RunDescription.to_json()`` is run.json and
``blase runs show --json`` (a public format: its keys and their order stay as they are); ``from_json`` reads a
run.json back without trusting it: what ``runs reindex`` must check (names, hashes) is checked where it is used.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields
from functools import cache
from typing import Any, Self

RUN_JSON_FORMAT = 1  # the ``format`` of run.json; reindex refuses a newer one


def _strict_mapping(value: Any, what: str) -> dict[str, Any]:
    """A mapping field of run.json that the index is built from (tags, params): absent is empty, anything but a
    mapping is refused (the run is skipped by reindex)."""
    if not value:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{what} is {type(value).__name__}, not a mapping")
    return value


def _loose_mapping(value: Any) -> dict[str, Any]:
    """A mapping field of run.json that is only shown (metrics: the index takes them from the events files)."""
    return value if isinstance(value, dict) else {}


def _text_mapping(value: Any) -> dict[str, str]:
    """A ``{part: hash}`` field of run.json as text (anything else, from a damaged or crafted file: empty)."""
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _maybe_bool(value: Any) -> bool | None:
    return None if value is None else bool(int(value))


@cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


class _Columns:
    """A record whose fields are columns of the same names."""

    __slots__ = ()

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Self:
        return cls(**{name: row[name] for name in _names(cls)})


@dataclass(frozen=True, slots=True)
class Run:
    """A run: its status, times, owning process, git state and environment."""

    id: str
    name: str | None
    status: str
    explicit: bool  # opened with --start-run (later steps join it)
    started: float
    ended: float | None
    owner_pid: int | None
    owner_host: str | None
    owner_started: float | None
    git_commit: str | None
    git_dirty: bool | None
    git_patch_hash: str | None
    env_hash: str | None
    note: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Run:
        return cls(id=row["id"], name=row["name"], status=row["status"], explicit=bool(row["explicit"]),
                   started=row["started"], ended=row["ended"], owner_pid=row["owner_pid"],
                   owner_host=row["owner_host"], owner_started=row["owner_started"], git_commit=row["git_commit"],
                   git_dirty=_maybe_bool(row["git_dirty"]), git_patch_hash=row["git_patch_hash"],
                   env_hash=row["env_hash"], note=row["note"])


@dataclass(frozen=True, slots=True)
class StepRun(_Columns):
    """One execution of a step in a run: its status, process, resources and signature. ``skipped_from``: the
    execution whose outputs a reused one refers to."""

    id: int
    run_id: str
    step: str
    folder: str  # inside the run's folder: the step's name, or ``step-2`` for a second execution
    status: str
    started: float | None
    ended: float | None
    pid: int | None
    pid_started: float | None
    host: str | None
    exit_code: int | None
    signature: str | None  # the signature's digest
    code_hash: str | None
    func_hash: str | None
    params_hash: str | None
    env_hash: str | None
    git_commit: str | None
    git_patch_hash: str | None
    skipped_from: int | None
    error: str | None
    peak_rss: int | None
    cpu_seconds: float | None


@dataclass(frozen=True, slots=True)
class Artifact(_Columns):
    """A file kept with a run or a step execution (``name`` inside its ``artifacts/``), by content hash."""

    name: str
    hash: str
    size: int | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "hash": self.hash, "size": self.size}

    @classmethod
    def from_json(cls, value: Any) -> Artifact:
        """As run.json says, unchecked: an entry that is no mapping has no name and no hash (reindex leaves it
        out, and says so)."""
        value = value if isinstance(value, dict) else {}
        return cls(name=value.get("name"), hash=value.get("hash"),  # type: ignore[arg-type]
                   size=value.get("size"))


@dataclass(frozen=True, slots=True)
class Dataset(_Columns):
    """A dataset a step read (``role="input"``) or wrote (``"output"``): its path in the project, content hash
    and fingerprint (sizes and times), records and bytes."""

    role: str
    name: str
    path: str | None
    hash: str | None
    fingerprint: str | None
    records: int | None
    bytes: int | None

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "name": self.name, "path": self.path, "hash": self.hash,
                "fingerprint": self.fingerprint, "records": self.records, "bytes": self.bytes}

    @classmethod
    def from_json(cls, value: Any) -> Dataset:
        """``role`` and ``name`` must be there (a KeyError otherwise); the rest may be missing."""
        return cls(role=value["role"], name=value["name"], path=value.get("path"), hash=value.get("hash"),
                   fingerprint=value.get("fingerprint"), records=value.get("records"), bytes=value.get("bytes"))


@dataclass(frozen=True, slots=True)
class MetricPoint(_Columns):
    """One logged value of a metric: its ``iteration`` (None when it was logged without one), value and time."""

    iteration: int | None
    value: float | None  # None: NaN, which SQLite keeps as NULL
    ts: float | None


@dataclass(frozen=True, slots=True)
class StepDescription:
    """One step execution of a described run, with what it recorded. The signature's parts are named as in
    ``StepRun`` (``signature`` is its digest); run.json nests them under ``signature``."""

    id: int | None
    step: str
    folder: str
    status: str
    started: float | None
    ended: float | None
    exit_code: int | None
    error: str | None
    pid: int | None
    host: str | None
    peak_rss: int | None
    cpu_seconds: float | None
    skipped_from: int | None
    reused_from_run: str | None  # the run of the execution ``skipped_from`` names (None when it is gone)
    signature: str | None
    code_hash: str | None
    func_hash: str | None
    params_hash: str | None
    env_hash: str | None
    git_commit: str | None
    git_patch_hash: str | None
    code: dict[str, str]  # {part: hash} of the project's code it used
    code_imported: tuple[str, ...]  # those of ``code`` only seen imported as it ran
    code_loaded: dict[str, str]  # only loaded in its process: kept to reproduce it, not part of what it used
    params: dict[str, Any]
    metrics: dict[str, float]  # the last value of each
    artifacts: tuple[Artifact, ...]
    datasets: tuple[Dataset, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "step": self.step,
            "folder": self.folder,
            "status": self.status,
            "started": self.started,
            "ended": self.ended,
            "exit_code": self.exit_code,
            "error": self.error,
            "pid": self.pid,
            "host": self.host,
            "peak_rss": self.peak_rss,
            "cpu_seconds": self.cpu_seconds,
            "skipped_from": self.skipped_from,
            "reused_from_run": self.reused_from_run,
            "signature": {
                "digest": self.signature, "code_hash": self.code_hash, "func_hash": self.func_hash,
                "params_hash": self.params_hash, "env_hash": self.env_hash,
                "git_commit": self.git_commit, "git_patch_hash": self.git_patch_hash,
            },
            "code": dict(self.code),
            "code_imported": list(self.code_imported),
            "code_loaded": dict(self.code_loaded),
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "artifacts": [a.to_json() for a in self.artifacts],
            "datasets": [d.to_json() for d in self.datasets],
        }

    @classmethod
    def from_json(cls, value: Any) -> StepDescription:
        """``step``, ``folder`` and ``status`` must be there; a ``code`` or ``code_loaded`` that is no mapping of
        text, or a ``code_imported`` that is no list, is taken as empty."""
        sig = value.get("signature") or {}
        imported = value.get("code_imported")
        return cls(
            id=None if value.get("id") is None else int(value["id"]), step=value["step"], folder=value["folder"],
            status=value["status"], started=value.get("started"), ended=value.get("ended"),
            exit_code=value.get("exit_code"), error=value.get("error"), pid=value.get("pid"),
            host=value.get("host"), peak_rss=value.get("peak_rss"), cpu_seconds=value.get("cpu_seconds"),
            skipped_from=value.get("skipped_from"), reused_from_run=value.get("reused_from_run"),
            signature=sig.get("digest"), code_hash=sig.get("code_hash"), func_hash=sig.get("func_hash"),
            params_hash=sig.get("params_hash"), env_hash=sig.get("env_hash"), git_commit=sig.get("git_commit"),
            git_patch_hash=sig.get("git_patch_hash"),
            code=_text_mapping(value.get("code")),
            code_imported=tuple(imported) if isinstance(imported, list) else (),
            code_loaded=_text_mapping(value.get("code_loaded")),
            params=_strict_mapping(value.get("params"), "a step's params"),
            metrics=_loose_mapping(value.get("metrics")),
            artifacts=tuple(Artifact.from_json(a) for a in value.get("artifacts") or []),
            datasets=tuple(Dataset.from_json(d) for d in value.get("datasets") or []),
        )


@dataclass(frozen=True, slots=True)
class RunDescription:
    """Everything about one run: the run itself, its tags, its own params, metrics, artifacts and datasets (those
    recorded outside any step), and its step executions, oldest first."""

    run: Run
    tags: dict[str, str]
    params: dict[str, Any]
    metrics: dict[str, float]
    artifacts: tuple[Artifact, ...]
    datasets: tuple[Dataset, ...]
    steps: tuple[StepDescription, ...]

    def to_json(self) -> dict[str, Any]:
        """What run.json holds and ``blase runs show --json`` prints (format 1)."""
        run = self.run
        return {
            "format": RUN_JSON_FORMAT,
            "id": run.id,
            "name": run.name,
            "status": run.status,
            "explicit": run.explicit,
            "started": run.started,
            "ended": run.ended,
            "owner": {"pid": run.owner_pid, "host": run.owner_host, "started": run.owner_started},
            "note": run.note,
            "git": {"commit": run.git_commit, "dirty": run.git_dirty, "patch_hash": run.git_patch_hash},
            "env_hash": run.env_hash,
            "tags": dict(self.tags),
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "artifacts": [a.to_json() for a in self.artifacts],
            "datasets": [d.to_json() for d in self.datasets],
            "steps": [s.to_json() for s in self.steps],
        }

    @classmethod
    def from_json(cls, value: Any) -> RunDescription:
        """A run.json read back. ``id``, ``status`` and ``started`` must be there (a KeyError names the one
        missing); a value of the wrong kind where the index needs one raises TypeError or ValueError."""
        owner = value.get("owner") or {}
        git = value.get("git") or {}
        run = Run(id=value["id"], name=value.get("name"), status=value["status"],
                  explicit=bool(int(value.get("explicit", False))), started=value["started"],
                  ended=value.get("ended"),
                  owner_pid=owner.get("pid"), owner_host=owner.get("host"), owner_started=owner.get("started"),
                  git_commit=git.get("commit"), git_dirty=_maybe_bool(git.get("dirty")),
                  git_patch_hash=git.get("patch_hash"), env_hash=value.get("env_hash"), note=value.get("note"))
        return cls(
            run=run,
            tags=_strict_mapping(value.get("tags"), "tags"),
            params=_strict_mapping(value.get("params"), "params"),
            metrics=_loose_mapping(value.get("metrics")),
            artifacts=tuple(Artifact.from_json(a) for a in value.get("artifacts") or []),
            datasets=tuple(Dataset.from_json(d) for d in value.get("datasets") or []),
            steps=tuple(StepDescription.from_json(s) for s in value.get("steps") or []),
        )


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """A registered model version: its file and card in the content store, the run and step execution that
    saved it, its final metrics and the aliases that name it."""

    name: str
    version: int
    run_id: str | None
    step_run_id: int | None
    framework: str | None
    file_hash: str
    card_hash: str | None
    file_name: str | None
    metrics: dict[str, Any]
    created: float | None
    aliases: tuple[str, ...]

    @property
    def ref(self) -> str:
        """``name:version``, as ``models.get`` takes it."""
        return f"{self.name}:{self.version}"

    @classmethod
    def from_row(cls, row: sqlite3.Row, aliases: tuple[str, ...] | list[str] = (), **details: Any) -> Self:
        """A ``models`` row and the aliases naming it; ``details``: the fields a subclass adds."""
        import json

        return cls(name=row["name"], version=row["version"], run_id=row["run_id"], step_run_id=row["step_run_id"],
                   framework=row["framework"], file_hash=row["file_hash"], card_hash=row["card_hash"],
                   file_name=row["file_name"], metrics=json.loads(row["metrics"] or "{}"), created=row["created"],
                   aliases=tuple(aliases), **details)

    def to_json(self) -> dict[str, Any]:
        """What ``blase models list --json`` prints for it."""
        return {"name": self.name, "version": self.version, "run_id": self.run_id, "step_run_id": self.step_run_id,
                "framework": self.framework, "file_hash": self.file_hash, "card_hash": self.card_hash,
                "file_name": self.file_name, "metrics": dict(self.metrics), "created": self.created,
                "aliases": list(self.aliases)}


@dataclass(frozen=True, slots=True)
class ModelVersionDetail(ModelVersion):
    """A model version with its card, the ``path`` of its file in the content store (to load it) and whether the
    run that trained it was deleted since."""

    card: dict[str, Any] | None
    path: str
    run_deleted: bool

    def to_json(self) -> dict[str, Any]:
        """What ``blase models show --json`` prints."""
        out = ModelVersion.to_json(self)
        aliases = out.pop("aliases")
        out.update(card=self.card, path=self.path, aliases=aliases, run_deleted=self.run_deleted)
        return out


@dataclass(frozen=True, slots=True)
class SavedModel(_Columns):
    """A model version saved in a run: the ``step`` that saved it and ``path``, where that step wrote the file
    (from its output records; None when it recorded none)."""

    name: str
    version: int
    file_name: str | None
    file_hash: str
    step_run_id: int | None
    step: str | None
    path: str | None
