"""The SQLite index of a project's runs (``runs/blase.db``), in WAL mode.

Every process opens its own connection. Writes use ``BEGIN IMMEDIATE`` so that a writer waits for the lock up
front (honouring the busy timeout) instead of failing on a read-to-write upgrade with "database is locked".
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from blase_tui.errors import BlaseError, ConfigError

SCHEMA_VERSION = 8

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT,
    status TEXT NOT NULL,
    explicit INTEGER NOT NULL DEFAULT 0,
    started REAL NOT NULL,
    ended REAL,
    owner_pid INTEGER,
    owner_host TEXT,
    owner_started REAL,
    git_commit TEXT,
    git_dirty INTEGER,
    git_patch_hash TEXT,
    env_hash TEXT,
    note TEXT
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
-- when a person last edited (name, note, tags) or deleted a run: what started/ended times cannot tell a
-- watching TUI (no foreign key, so a deletion stays on record)
CREATE TABLE IF NOT EXISTS run_changes (
    run_id TEXT PRIMARY KEY,
    at REAL NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS run_changes_at ON run_changes (at);
CREATE TABLE IF NOT EXISTS step_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step TEXT NOT NULL,
    folder TEXT NOT NULL,
    status TEXT NOT NULL,
    started REAL,
    ended REAL,
    pid INTEGER,
    pid_started REAL,
    host TEXT,
    exit_code INTEGER,
    signature TEXT,
    code_hash TEXT,
    func_hash TEXT,
    params_hash TEXT,
    env_hash TEXT,
    git_commit TEXT,
    git_patch_hash TEXT,
    skipped_from INTEGER,
    error TEXT,
    peak_rss INTEGER,
    cpu_seconds REAL
);
CREATE INDEX IF NOT EXISTS step_runs_step ON step_runs (step, status, run_id);
CREATE INDEX IF NOT EXISTS step_runs_run ON step_runs (run_id);
CREATE INDEX IF NOT EXISTS step_runs_status ON step_runs (status);
CREATE INDEX IF NOT EXISTS step_runs_signature ON step_runs (signature);
-- the parts of the project's code an execution used (core/codeuse.py): `main.py::train` (a definition), or
-- `helper.py` (a whole module), each with its hash, and `imported` when seen imported as it ran, not statically
-- (schema 8)
CREATE TABLE IF NOT EXISTS step_code (
    step_run_id INTEGER NOT NULL REFERENCES step_runs (id) ON DELETE CASCADE,
    part TEXT NOT NULL,
    hash TEXT NOT NULL,
    imported INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (step_run_id, part)
);
CREATE TABLE IF NOT EXISTS params (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    step_run_id INTEGER NOT NULL DEFAULT 0,
    value TEXT,
    PRIMARY KEY (run_id, key, step_run_id)
);
CREATE INDEX IF NOT EXISTS params_kv ON params (key, value);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_run_id INTEGER NOT NULL DEFAULT 0,
    key TEXT NOT NULL,
    value REAL,
    iteration INTEGER,
    ts REAL
);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics (run_id, key);
-- which steps log which metric keys (a few dozen rows): a key two steps log (train's and evaluate's
-- `accuracy`) is named `step/key` in every run, so a table's column means one thing (schema 7)
CREATE TABLE IF NOT EXISTS metric_keys (
    step TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (key, step)
);
INSERT OR IGNORE INTO metric_keys (step, key)
    SELECT DISTINCT s.step, m.key FROM metrics m JOIN step_runs s ON s.id = m.step_run_id;
CREATE TABLE IF NOT EXISTS tags (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX IF NOT EXISTS tags_kv ON tags (key, value);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_run_id INTEGER NOT NULL DEFAULT 0,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    size INTEGER,
    PRIMARY KEY (run_id, step_run_id, name)
);
CREATE INDEX IF NOT EXISTS artifacts_hash ON artifacts (hash);
CREATE TABLE IF NOT EXISTS datasets (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_run_id INTEGER NOT NULL DEFAULT 0,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    path TEXT,
    hash TEXT,
    fingerprint TEXT,
    records INTEGER,
    bytes INTEGER,
    PRIMARY KEY (run_id, step_run_id, role, name)
);
CREATE INDEX IF NOT EXISTS datasets_hash ON datasets (hash);
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS exclusions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    key TEXT NOT NULL,
    reason TEXT,
    run_id TEXT,
    step_run_id INTEGER,
    created REAL,
    PRIMARY KEY (name, version, key)
);
CREATE TABLE IF NOT EXISTS models (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    run_id TEXT,
    step_run_id INTEGER,
    framework TEXT,
    file_hash TEXT NOT NULL,
    card_hash TEXT,
    file_name TEXT,
    metrics TEXT,
    created REAL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS model_aliases (
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    set_at REAL,
    PRIMARY KEY (name, alias)
);
CREATE TABLE IF NOT EXISTS label_rounds (
    number INTEGER PRIMARY KEY,
    target INTEGER NOT NULL,
    strategy TEXT NOT NULL,
    model TEXT,
    model_run TEXT,
    seed INTEGER,
    status TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    labeller TEXT,
    note TEXT
);
CREATE TABLE IF NOT EXISTS label_queue (
    round INTEGER NOT NULL REFERENCES label_rounds (number) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    key TEXT NOT NULL,
    secondary TEXT,
    location TEXT,
    score REAL,
    why TEXT,
    proba TEXT,
    PRIMARY KEY (round, position)
);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    secondary TEXT,
    action TEXT NOT NULL,
    label TEXT,
    target TEXT,
    labeller TEXT,
    ts REAL NOT NULL,
    round INTEGER,
    model_run TEXT,
    strategy TEXT,
    score REAL,
    supersedes INTEGER,
    superseded_by INTEGER
);
CREATE INDEX IF NOT EXISTS labels_active ON labels (superseded_by, action, key);
CREATE INDEX IF NOT EXISTS labels_key ON labels (key);
CREATE INDEX IF NOT EXISTS labels_round ON labels (round, action);
"""


class StoreDamaged(ConfigError):
    """``blase.db`` cannot be read as a database."""


class DiskFull(BlaseError):
    """The disk holding the project is full (or failing)."""


_DAMAGED = ("file is not a database", "malformed", "database corrupt", "unsupported file format")
_FULL = ("database or disk is full", "disk i/o error")


def translate(path: Path, exc: sqlite3.DatabaseError) -> BlaseError | None:
    """The one-line error for a damaged store or a full disk, or None for other database errors."""
    text = str(exc).lower()
    if any(m in text for m in _DAMAGED):
        return StoreDamaged(f"the run store {path} is damaged ({exc}); rebuild it from the run folders with"
                            " `blase runs reindex` (the damaged file is kept beside it).")
    if any(m in text for m in _FULL):
        return DiskFull(f"could not write the run store {path} ({exc}): the disk holding it is full or"
                        " failing; free some space and run the step again.")
    return None


def set_aside(path: Path) -> Path:
    """Move a damaged ``blase.db`` (and its -wal, -shm) to ``blase.db.damaged-<time>``; returns the new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            part.rename(aside.with_name(aside.name + suffix))
    return aside


class Database:
    """One connection to ``blase.db``, safe to share between the threads of one process."""

    def __init__(self, path: Path, *, timeout: float = 60.0) -> None:
        try:
            self._open(path, timeout)
        except sqlite3.DatabaseError as exc:
            error = translate(path, exc)
            if error is None:
                raise
            raise error from None

    def _open(self, path: Path, timeout: float) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.conn = sqlite3.connect(
            str(path), timeout=timeout, isolation_level=None, check_same_thread=False
        )
        self.conn.row_factory = sqlite3.Row
        self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        self._retry(lambda: self.conn.execute("PRAGMA journal_mode = WAL"))
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA foreign_keys = ON")
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            with self.write() as conn:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @staticmethod
    def _retry(fn, attempts: int = 50):  # type: ignore[no-untyped-def]
        # The busy timeout covers nearly every case; switching the journal mode and a few schema operations
        # can still report "locked" at once when several processes open a fresh database together.
        for attempt in range(attempts):
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.02 * (attempt + 1))
        return None

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the database lock up front."""
        with self._lock:
            try:
                self._retry(lambda: self.conn.execute("BEGIN IMMEDIATE"))
                try:
                    yield self.conn
                except BaseException:
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    raise
                else:
                    self._retry(lambda: self.conn.execute("COMMIT"))
            except sqlite3.DatabaseError as exc:
                if self.conn.in_transaction:
                    try:
                        self.conn.execute("ROLLBACK")
                    except sqlite3.Error:  # the transaction may already be gone with the error
                        pass
                error = translate(self.path, exc)
                if error is None:
                    raise
                raise error from exc

    def query(self, sql: str, args: tuple | list = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self.conn.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                error = translate(self.path, exc)
                if error is None:
                    raise
                raise error from exc

    def close(self) -> None:
        with self._lock:
            self.conn.close()
