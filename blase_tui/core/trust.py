"""Which model files blase may load in a way that runs code from them.

A pickle (scikit-learn's ``.pkl``/``.joblib``, a whole torch module saved with ``torch.save(model)``), a skops
file naming types skops does not trust, or a Keras model with a Lambda layer runs code from the file while it
loads: a model made by someone else is a program written by someone else. Safe formats need none of this (a
skops file of known types, a torch file ``torch.load(weights_only=True)`` reads, a ``.keras`` file in safe
mode); for the others blase asks whether *this project produced it*, or the user said they trust it:

- **produced here**: the file's SHA-256 is a model version in the project's registry, or a deployment this
  project wrote (``Deploy`` records what it writes: its skops conversion, the model with its ``code/``);
- **trusted**: ``blase deploy trust ARCHIVE_OR_FOLDER`` recorded it in the project (``.blase/trusted.jsonl``),
  or, outside a project, for the user (``trusted.jsonl`` in blase's user folder, which counts everywhere).

What is trusted is the *identity* of what would run: the model file's hash, or, when the deployment carries
the project's Python files in ``code/`` (imported by the model), one hash over the model and those files, so
that a changed ``code/`` beside a trusted model is not trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from blase_tui.core.config import find_project_root
from blase_tui.errors import ConfigError
from blase_tui.store.hashing import hash_file
from blase_tui.store.safepath import inside, is_digest

TRUST_FILE = "trusted.jsonl"
CODE_FOLDER = "code"


class UntrustedModel(ConfigError):
    """A model file that would run code when loaded, which this project did not produce and nobody trusted
    (exit code 2: serve it with ``--trust``, or ``blase deploy trust`` it once)."""


def project_file(root: Path) -> Path:
    return root / ".blase" / TRUST_FILE


def user_file() -> Path:
    from blase_tui.core.registry import home

    return home() / TRUST_FILE


def identity(model: str, digests: dict[str, str]) -> str:
    """The identity of what loading a deployment's model runs: ``digests[model]`` alone, or one hash over the
    model and every ``code/`` file (``digests``: name inside the deployment -> SHA-256)."""
    code = sorted((name, d) for name, d in digests.items()
                  if name.startswith(f"{CODE_FOLDER}/") and "__pycache__" not in name.split("/"))
    if not code:
        return digests[model]
    text = "".join(f"{d}  {name}\n" for name, d in [(model, digests[model]), *code])
    return hashlib.sha256(text.encode()).hexdigest()


def folder_digests(folder: Path, model: str) -> dict[str, str]:
    """SHA-256 of the model file and of every file under ``code/`` of a deployment folder."""
    out = {model: hash_file(inside(folder, model, what=f"model file of {folder}"))}
    code = folder / CODE_FOLDER
    if code.is_dir():
        for path in sorted(code.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                out[path.relative_to(folder).as_posix()] = hash_file(path)
    return out


@dataclass(frozen=True)
class Record:
    """One trusted identity: what it is, who recorded it (``deploy``: written by this project's Deploy;
    ``user``: ``blase deploy trust``) and when."""

    identity: str
    what: str
    by: str
    time: float


def _read(path: Path) -> list[Record]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a damaged line trusts nothing
        if isinstance(row, dict) and is_digest(row.get("identity")):
            out.append(Record(row["identity"], str(row.get("what", "")), str(row.get("by", "")),
                              float(row.get("time") or 0)))
    return out


def record(ident: str, *, what: str, by: str, root: Path | None) -> Path:
    """Trust ``ident`` in the project at ``root`` (or for the user when None); returns the file written."""
    if not is_digest(ident):
        raise ConfigError(f"{ident!r} is not a SHA-256 to trust.")
    path = project_file(root) if root is not None else user_file()
    if any(r.identity == ident for r in _read(path)):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"identity": ident, "what": what, "by": by, "time": time.time()}, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())  # one write of one line: two processes appending never interleave a line
    finally:
        os.close(fd)
    return path


def _registered(root: Path, digest: str) -> str | None:
    if not (root / "runs" / "blase.db").is_file():
        return None  # no registry to ask (and opening the store here would create one)
    from blase_tui.store import models
    from blase_tui.store.runstore import RunStore

    store = RunStore(root)
    try:
        found = models.by_file_hash(store, digest)
    finally:
        store.close()
    return f"registered as {found[0]} v{found[1]} in this project" if found else None


def why_trusted(ident: str, model_digest: str, *, has_code: bool, root: Path | None = None) -> str | None:
    """Why the model with identity ``ident`` may run code here (one phrase), or None. ``root``: the project
    (default: the one around the working directory)."""
    root = root if root is not None else find_project_root()
    if root is not None:
        if not has_code:
            registered = _registered(root, model_digest)
            if registered:
                return registered
        for rec in _read(project_file(root)):
            if rec.identity == ident:
                return ("written by this project's Deploy" if rec.by == "deploy"
                        else f"trusted in this project ({project_file(root)})")
    for rec in _read(user_file()):
        if rec.identity == ident:
            return f"trusted by this user ({user_file()})"
    return None


def short(digest: str) -> str:
    return f"{digest[:12]}…"
