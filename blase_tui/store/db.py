"""The SQLite index of a project's runs (``runs/blase.db``), in WAL mode.

Every process opens its own connection. Writes use ``BEGIN IMMEDIATE`` so that a writer waits for the lock up
front (honouring the busy timeout) instead of failing on a read-to-write upgrade with "database is locked"; a
``write()`` inside another one of the same connection is a savepoint, so a caller can make many writes one
transaction (``runs reindex``: all of it or nothing).

**A store that notices damage.** SQLite reads a damaged page without complaint until a query walks into it, so
flipped bytes on a disk (or a bad copy) let commands exit 0 and steps write into the damaged file. Checking the
whole file at every open costs time that grows with the index (a 5,000-run index: ~30 ms), so the check runs when
the file may not be what blase left:

- beside the index, ``.blase.db.clean`` holds the file's identity (device, inode, size, modification and change
  times) as the last process to close it left it, and each process holding the index open keeps a shared
  ``flock`` on that file;
- the first process to open the index (no other holds it) compares: a different identity (changed by something
  else, or not closed cleanly), or a ``-wal`` file still holding pages (a writer that died), means a
  ``PRAGMA quick_check`` first, holding the lock exclusively meanwhile so no other process starts on a damaged file;
- the last process to close it checkpoints the WAL and writes the identity again.

Opening a clean index costs a few system calls. ``check_integrity`` is the same check on demand (``full``: SQLite's
whole ``integrity_check``), for ``blase verify``. Damage is one line (``StoreDamaged``, exit code 2) naming the file
and the fix: ``blase runs reindex`` keeps it aside and rebuilds the index from the run folders.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from blase_tui.errors import BlaseError, ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: every open of a changed index is checked
    fcntl = None  # type: ignore[assignment]

SCHEMA_VERSION = 9

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
    superseded_by INTEGER,
    -- an imported label's timestamp as its file wrote it (schema 9): `blase label export` writes it back as it was
    ts_text TEXT
);
CREATE INDEX IF NOT EXISTS labels_active ON labels (superseded_by, action, key);
CREATE INDEX IF NOT EXISTS labels_key ON labels (key);
CREATE INDEX IF NOT EXISTS labels_round ON labels (round, action);
"""


# columns added to a table after it was first made: (table, column, type), added to an older database in place
ADDED_COLUMNS = (("labels", "ts_text", "TEXT"),)


class StoreDamaged(ConfigError):
    """``blase.db`` cannot be read as a database, or SQLite's check finds damage in it (``problem``: what)."""

    problem = ""


class DiskFull(BlaseError):
    """The disk holding the project is full (or failing)."""


_DAMAGED = ("file is not a database", "malformed", "database corrupt", "unsupported file format")
_FULL = ("database or disk is full", "disk i/o error")


def damaged(path: Path, problem: object) -> StoreDamaged:
    """The one line for a damaged index: the file, what is wrong (SQLite's first complaint) and the fix."""
    first = str(problem).strip().splitlines()[0] if str(problem).strip() else "damaged"
    error = StoreDamaged(f"the run store {path} is damaged ({first}); rebuild it from the run folders with"
                         " `blase runs reindex` (the damaged file is kept beside it).")
    error.problem = first
    return error


def translate(path: Path, exc: sqlite3.DatabaseError) -> BlaseError | None:
    """The one-line error for a damaged store or a full disk, or None for other database errors."""
    text = str(exc).lower()
    if any(m in text for m in _DAMAGED):
        return damaged(path, exc)
    if any(m in text for m in _FULL):
        return DiskFull(f"could not write the run store {path} ({exc}): the disk holding it is full or"
                        " failing; free some space and run the step again.")
    return None


def set_aside(path: Path) -> Path:
    """Move a damaged ``blase.db`` (and its -wal, -shm) to ``blase.db.damaged-<time>``; returns the new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while aside.exists():  # damaged twice within a second: both kept
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            part.rename(aside.with_name(aside.name + suffix))
    return aside


@dataclass
class NewIndex:
    """A rebuild's file (``path``), and where the index it replaced was kept (``aside``)."""

    path: Path
    aside: Path | None = None


@contextmanager
def rebuilding(path: Path) -> Iterator[NewIndex]:
    """Hold the index at ``path`` alone while a new one is built into the file given (beside it, hidden): when the
    block ends, the new file takes the index's place and the old one, if any, is kept aside (``set_aside``); when it
    raises (or the process dies), the new file is removed and the old one is left as it was. No process writes into
    the index meanwhile: one opening it waits for the end; one that has a damaged index open already makes this
    refuse (``ConfigError``), since what it writes would go to the file kept aside. (A lost index is not there to be
    written: a process still holding the deleted file cannot be helped, and is no reason to refuse.)"""
    holders = _Holders(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not holders.enter() and path.is_file() and path.stat().st_size > 0:
        holders.leave()
        raise ConfigError(f"{path} is open in another blase process (a running step, the TUI); stop it, then run"
                          " `blase runs reindex` again.")
    try:
        for stale in path.parent.glob(f".{path.name}.rebuild-*"):  # left by a rebuild that was killed
            stale.unlink(missing_ok=True)
        new = NewIndex(path.with_name(f".{path.name}.rebuild-{os.getpid()}"))
        try:
            yield new
        except BaseException:
            for suffix in ("", "-wal", "-shm"):
                new.path.with_name(new.path.name + suffix).unlink(missing_ok=True)
            raise
        wal = path.with_name(path.name + "-wal")
        if path.is_file() and path.stat().st_size == 0 and not wal.exists():
            path.unlink()  # an empty file: nothing to keep
        elif any(path.with_name(path.name + s).exists() for s in ("", "-wal", "-shm")):
            new.aside = set_aside(path)  # a stale -wal must never be replayed into the new file
        os.replace(new.path, path)
        holders.stamp(_identity(path))
    finally:
        holders.leave()


def _problems(conn: sqlite3.Connection, full: bool) -> list[str]:
    """What SQLite's check finds wrong, one line each (empty: nothing)."""
    try:
        rows = conn.execute("PRAGMA integrity_check" if full else "PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:  # a page too damaged to walk: the check itself fails
        return [str(exc)]
    lines = [line for r in rows for line in str(r[0]).splitlines() if line and not line.startswith("*** in database")]
    return [] if lines == ["ok"] else lines


def check_integrity(path: Path, full: bool = False) -> list[str]:
    """What is wrong with the index at ``path``, one line each; empty when nothing is (or there is no file).

    ``full`` runs SQLite's ``integrity_check`` (every page, record and index: ~70 ms for a 5,000-run index),
    otherwise ``quick_check`` (pages and records, not index contents: ~30 ms). The file is opened read-only and
    never changed, so a damaged index stays as it was for ``blase runs reindex`` to keep aside.

    >>> check_integrity(Path("runs/blase.db"))  # doctest: +SKIP
    []
    """
    if not path.is_file() or path.stat().st_size == 0:
        return []
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60.0)
    except sqlite3.Error as exc:
        return [str(exc)]
    try:
        return _problems(conn, full)
    finally:
        conn.close()


def _identity(path: Path) -> str:
    """What tells a file apart from the same file changed: device, inode, size, modification and change times
    (the change time cannot be set back by a program, so an edit that restores the modification time shows)."""
    st = path.stat()
    return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}\n"


class _Holders:
    """Who holds the index open, and how the last one left it: a shared ``flock`` on ``.blase.db.clean`` beside it
    per open ``Database``, and in that file the index's ``_identity`` when the last holder closed it cleanly. Where
    locks cannot be taken (a file system without ``flock``), every opener compares and every closer stamps: a
    stamp written while another process still works shows as a change, checked next time, which is only slower."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.path = db_path.with_name(f".{db_path.name}.clean")
        self.fh: IO[bytes] | None = None
        self.locking = fcntl is not None
        self.pid = os.getpid()  # a forked child shares the lock: only the process that took it lets it go

    def _lock(self, how: int) -> bool:
        """``flock`` the file; False when ``LOCK_NB`` meets another holder."""
        if self.fh is None or not self.locking:
            return True
        try:
            fcntl.flock(self.fh.fileno(), how)
            return True
        except BlockingIOError:
            return False
        except OSError:  # no locks on this file system
            self.locking = False
            return True

    def enter(self) -> bool:
        """Hold the index; True when no other process held it (exclusively held until ``shared()``)."""
        try:  # not O_APPEND: Linux appends a pwrite to such a file wherever it is told to write
            self.fh = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666), "r+b", buffering=0)
        except OSError:  # a folder we cannot write in: no holds, every changed index is checked
            return True
        # shared first, waiting while another process checks the index or a rebuild swaps it
        self._lock(fcntl.LOCK_SH if fcntl else 0)
        if self.exclusive():
            return True
        # a conversion that fails may have let the shared hold go (flock(2)): take it again
        self._lock(fcntl.LOCK_SH if fcntl else 0)
        return False

    def exclusive(self) -> bool:
        """Hold the index alone if no other process holds it (otherwise maybe not held at all any more, so call
        it only when entering or leaving)."""
        return self._lock(fcntl.LOCK_EX | fcntl.LOCK_NB if fcntl else 0)

    def shared(self) -> None:
        self._lock(fcntl.LOCK_SH if fcntl else 0)

    def left_clean(self) -> bool:
        """Whether the index is as the last holder left it, closed cleanly (nothing in ``-wal`` to replay)."""
        try:
            stamp = self.path.read_text(encoding="ascii", errors="replace")
            wal = self.db_path.with_name(self.db_path.name + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                return False
            return stamp == _identity(self.db_path)
        except OSError:
            return False

    def stamp(self, identity: str | None) -> None:
        """Write (None: forget) the identity of the index as it is left now."""
        if self.fh is None:
            return
        text = (identity or "").encode("ascii")
        try:
            fd = self.fh.fileno()
            if os.pread(fd, 4096, 0) != text:  # most closes leave it as it was: no write at all
                os.pwrite(fd, text, 0)
                os.ftruncate(fd, len(text))
        except OSError:  # a full disk: the next open checks the index, which is only slower
            pass

    def leave(self) -> None:
        if self.fh is not None:
            self.fh.close()  # releases the flock
            self.fh = None


def _leave(conn: sqlite3.Connection, holders: _Holders, path: Path, lock: threading.RLock) -> None:
    """When a ``Database`` is dropped or the process ends without ``close()``: if no other process holds the
    index, checkpoint it and stamp it as left clean, so the next first opener skips the check. The connection is
    not closed here (an ``atexit`` hook of the caller may still write; the index then differs from the stamp and
    is checked next time, which is only slower)."""
    if holders.fh is None or holders.pid != os.getpid() or not lock.acquire(timeout=1.0):
        return
    try:
        if holders.exclusive():
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            holders.stamp(None if busy else _identity(path))
    except (sqlite3.Error, OSError):  # leaving, not working: the next open checks the index instead
        pass
    finally:
        holders.leave()
        lock.release()


class Database:
    """One connection to ``blase.db``, safe to share between the threads of one process. ``shared=False``: a file
    no other process opens (a rebuild's), without holds or checks."""

    def __init__(self, path: Path, *, timeout: float = 60.0, shared: bool = True) -> None:
        self.path = path
        self._depth = 0  # nested write() calls: savepoints inside the outer transaction
        self._holders = _Holders(path) if shared else None
        try:
            self._open(path, timeout)
        except sqlite3.DatabaseError as exc:
            self._give_up()
            error = translate(path, exc)
            if error is None:
                raise
            raise error from None
        except BaseException:
            self._give_up()
            raise
        # run when this object is dropped, or at exit, whichever comes first
        self._leave = (weakref.finalize(self, _leave, self.conn, self._holders, path, self._lock)
                       if self._holders is not None else None)

    def _give_up(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()
        if self._holders is not None:
            self._holders.leave()

    def _open(self, path: Path, timeout: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        first = self._holders.enter() if self._holders is not None else False
        existed = path.is_file() and path.stat().st_size > 0
        self._lock = threading.RLock()
        self.conn = sqlite3.connect(
            str(path), timeout=timeout, isolation_level=None, check_same_thread=False
        )
        self.conn.row_factory = sqlite3.Row
        if first and existed and self._holders is not None and not self._holders.left_clean():
            problems = _problems(self.conn, full=False)
            if problems:
                raise damaged(path, problems[0])
        if self._holders is not None:
            self._holders.shared()
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
                for table, column, kind in ADDED_COLUMNS:  # CREATE TABLE IF NOT EXISTS leaves an older table as it was
                    if column not in {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}:
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
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
        """A write transaction that takes the database lock up front; inside another ``write()`` of this
        connection, a savepoint: what it wrote is undone alone when it raises, and kept only if the outer
        transaction commits."""
        with self._lock:
            if self._depth:
                yield from self._savepoint()
                return
            try:
                self._retry(lambda: self.conn.execute("BEGIN IMMEDIATE"))
                self._depth = 1
                try:
                    yield self.conn
                except BaseException:
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    raise
                else:
                    self._retry(lambda: self.conn.execute("COMMIT"))
                finally:
                    self._depth = 0
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

    def _savepoint(self) -> Iterator[sqlite3.Connection]:
        name = f"blase_{self._depth}"
        self.conn.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield self.conn
        except BaseException:
            self.conn.execute(f"ROLLBACK TO {name}")
            self.conn.execute(f"RELEASE {name}")
            raise
        else:
            self.conn.execute(f"RELEASE {name}")
        finally:
            self._depth -= 1

    def query(self, sql: str, args: tuple | list = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self.conn.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                error = translate(self.path, exc)
                if error is None:
                    raise
                raise error from exc

    def problems(self, full: bool = False) -> list[str]:
        """What SQLite's check finds wrong in this index (``check_integrity`` on the open connection)."""
        with self._lock:
            return _problems(self.conn, full)

    def close(self) -> None:
        if self._leave is not None:
            self._leave.detach()
        with self._lock:
            holders = self._holders if self._holders is not None and self._holders.pid == os.getpid() else None
            last = holders is not None and holders.fh is not None and holders.exclusive()
            self.conn.close()
            if holders is not None:
                if last:
                    wal = self.path.with_name(self.path.name + "-wal")
                    try:
                        left = None if wal.exists() and wal.stat().st_size else _identity(self.path)
                    except OSError:
                        left = None
                    holders.stamp(left)
                holders.leave()
