"""The run store: the SQLite index, the self-describing run folders and the content store, kept in step.

Layout inside a project::

    runs/blase.db                  the index (WAL)
    runs/<run_id>/run.json         everything about the run, enough to rebuild the index (``reindex``)
    runs/<run_id>/env.json         environment snapshot; git.patch when the tree was dirty
    runs/<run_id>/metrics.jsonl    metrics logged outside any step
    runs/<run_id>/<step>/          events.jsonl, log.txt, artifacts/ (hard links into the content store)
    .blase/cas/objects/ab/cdef...  content-addressed artifacts, shared by all runs
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from blase_tui.errors import ConfigError
from blase_tui.store import procs
from blase_tui.store.cas import ContentStore
from blase_tui.store.db import Database
from blase_tui.store.hashing import canonical_json, hash_json
from blase_tui.store.ids import new_run_id
from blase_tui.store.records import (
    Artifact,
    Dataset,
    MetricPoint,
    Run,
    RunDescription,
    StepDescription,
    StepRun,
)
from blase_tui.store.values import (  # noqa: F401  (re-exported: the statuses' old home)
    FAILED,
    INTERRUPTED,
    RUNNING,
    SKIPPED,
    STATUSES,
    SUCCEEDED,
)

STEP_COMMAND = "command.json"


def to_json_value(value: Any) -> str:
    return canonical_json(value)


def from_json_value(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # compact: the C encoder is ~10x faster than indented output, and `blase runs show --json` pretty-prints
    tmp.write_text(json.dumps(data, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


CODE_USED, CODE_IMPORTED, CODE_LOADED = 0, 1, 2  # step_code.imported: how an execution came to a part of the code
REPRODUCES = "reproduces"  # the tag of a run `blase runs reproduce` made: the id of the run it reproduces
# those runs stay aside: never found by `runs find` (unless asked), never reused, never a lineage's writer
REPRODUCTIONS = f"(SELECT run_id FROM tags WHERE key = '{REPRODUCES}')"
NOT_REPRODUCTION = f"run_id NOT IN {REPRODUCTIONS}"


INDEX = "blase.db"


class IndexLost(ConfigError):
    """``runs/blase.db`` is missing (or empty) in a project whose run folders or journal say it had runs
    (``state``: ``"missing"`` or ``"empty"``)."""

    state = "missing"


def lost_index(runs_dir: Path) -> IndexLost | None:
    """Why the index must be rebuilt before anything records into it: it is missing or empty while run folders
    (each with a ``run.json``) or ``runs/journal.jsonl`` are there. A new index over them would show an empty
    project, take the next step as its first run, and let ``gc`` take every stored object for an orphan. None
    when the index is there, or nothing says it was ever needed (a new project)."""
    from blase_tui.store import journal

    path = runs_dir / INDEX
    try:
        if path.stat().st_size > 0:
            return None
        state = "empty"
    except FileNotFoundError:
        state = "missing"
    except OSError:  # unreadable: opening it says why
        return None
    try:
        runs = sum(1 for p in runs_dir.iterdir() if (p / "run.json").is_file())
    except OSError:
        runs = 0
    journal_file = journal.path_of(runs_dir)
    kept = journal_file.is_file() and journal_file.stat().st_size > 0
    if not runs and not kept:
        return None
    held = " and ".join(([f"{runs} run folder(s)"] if runs else []) + (["runs/journal.jsonl"] if kept else []))
    lost = IndexLost(f"the run store {path} is {state} but runs/ holds {held}; rebuild it from them with `blase"
                     " runs reindex` (no command records into a new, empty index meanwhile).")
    lost.state = state
    return lost


class RunStore:
    """All reads and writes of a project's runs go through here."""

    def __init__(self, project_root: Path, *, index: Path | None = None) -> None:
        """Open the project's index, refusing one that is lost (``lost_index``) and checking one that was not
        closed cleanly (``db.Database``). ``index``: a file of its own to build into instead (``runs reindex``
        rebuilding from scratch); the run folders and content store stay the project's."""
        self.root = project_root
        self.runs_dir = project_root / "runs"
        self.cas = ContentStore(project_root / ".blase" / "cas")
        if index is None and (lost := lost_index(self.runs_dir)) is not None:
            raise lost
        self.db = Database(self.runs_dir / INDEX if index is None else index, shared=index is None)
        self._env_hashes: dict[int, tuple[dict[str, Any], str]] = {}
        # an output dataset up to this many bytes is kept by content (``[project] keep_outputs``; set by Project)
        self.keep_outputs = 2 * 1024**3

    def close(self) -> None:
        self.db.close()

    def check(self, full: bool = False) -> None:
        """Read the whole index once (SQLite's quick check; ``full``: its integrity check); a damaged one raises
        ``StoreDamaged``."""
        from blase_tui.store.db import damaged

        problems = self.db.problems(full)
        if problems:
            raise damaged(self.db.path, problems[0])

    # A little space kept free on the project's disk: when the disk fills up during a step, releasing it lets
    # blase still record how the step ended, so the store never says `running` for a step that failed.
    RESERVE_BYTES = 1 << 20

    @property
    def reserve_path(self) -> Path:
        return self.root / ".blase" / "reserve"

    def ensure_reserve(self) -> None:
        path = self.reserve_path
        if path.exists():
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".reserve.{os.getpid()}")
            with open(tmp, "wb") as fh:
                fh.write(b"\0" * self.RESERVE_BYTES)
            os.replace(tmp, path)
        except OSError:  # the disk is full already: nothing to keep back
            try:
                tmp.unlink(missing_ok=True)
            except (OSError, UnboundLocalError):
                pass

    def release_reserve(self) -> bool:
        """Free the reserved space; True when there was some to free."""
        try:
            self.reserve_path.unlink()
            return True
        except OSError:
            return False

    # ----------------------------------------------------------------- runs
    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def create_run(
        self,
        *,
        name: str | None = None,
        explicit: bool = False,
        owner_pid: int | None = None,
        owner_started: float | None = None,
        tags: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        started: float | None = None,
        env: dict[str, Any] | None = None,
        exclusive: bool = False,
    ) -> str | None:
        """Insert a new running run and make its folder; a duplicate id (same millisecond, same random part) is
        refused by the primary key and drawn again. ``exclusive`` (with ``explicit``): only when no other
        explicit run is open, checked in the same transaction, so of two simultaneous ``--start-run``s one wins;
        returns None when another is open."""
        started = time.time() if started is None else started
        host = procs.hostname() if owner_pid else None
        env_hash = self._env_object(env) if env is not None else None
        for _ in range(100):
            run_id = new_run_id(started)
            try:
                with self.db.write() as conn:
                    if exclusive and conn.execute(
                        "SELECT 1 FROM runs WHERE status = ? AND explicit = 1 LIMIT 1", (RUNNING,)
                    ).fetchone():
                        return None
                    conn.execute(
                        "INSERT INTO runs (id, name, status, explicit, started, owner_pid, owner_host, owner_started,"
                        " env_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (run_id, name, RUNNING, int(explicit), started, owner_pid, host, owner_started, env_hash),
                    )
                    if tags:
                        conn.executemany(
                            "INSERT OR REPLACE INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                            [(run_id, k, str(v)) for k, v in tags.items()],
                        )
                    if params:
                        conn.executemany(
                            "INSERT OR REPLACE INTO params (run_id, key, step_run_id, value) VALUES (?, ?, 0, ?)",
                            [(run_id, k, to_json_value(v)) for k, v in params.items()],
                        )
                break
            except sqlite3.IntegrityError:
                continue
        else:  # pragma: no cover - 100 collisions in a row means the clock or the RNG is broken
            raise RuntimeError("could not draw a unique run id")
        self.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        if env_hash is not None:
            self.cas.link_into(env_hash, self.run_dir(run_id) / "env.json")
        return run_id

    def record_environment(self, run_id: str, env: dict[str, Any], git: Any | None) -> str:
        """Store the environment snapshot (and git state) on the run and in its folder; returns the env hash."""
        env_hash = self._env_object(env)
        folder = self.run_dir(run_id)
        self.cas.link_into(env_hash, folder / "env.json")
        if git is None:
            with self.db.write() as conn:
                conn.execute("UPDATE runs SET env_hash = ? WHERE id = ?", (env_hash, run_id))
            return env_hash
        patch_hash = None
        if git is not None and git.patch:
            patch_hash = self.cas.put_bytes(git.patch.encode())
            (folder / "git.patch").write_text(git.patch)
        with self.db.write() as conn:
            conn.execute(
                "UPDATE runs SET env_hash = ?, git_commit = ?, git_dirty = ?, git_patch_hash = ? WHERE id = ?",
                (env_hash, git.commit if git else None, int(git.dirty) if git else None, patch_hash, run_id),
            )
        return env_hash

    def _env_object(self, env: dict[str, Any]) -> str:
        """The snapshot's content-store hash; computed once per process (it does not change while we run)."""
        key = id(env)
        cached = self._env_hashes.get(key)
        if cached is None or cached[0] is not env:
            digest = self.cas.put_bytes(json.dumps(env, sort_keys=True).encode())
            cached = (env, digest)
            self._env_hashes[key] = cached
        elif not self.cas.has(cached[1]):
            self.cas.put_bytes(json.dumps(env, sort_keys=True).encode())
        return cached[1]

    def run_ids(self) -> list[str]:
        """Every run's id, oldest first."""
        return [r["id"] for r in self.db.query("SELECT id FROM runs ORDER BY started, id")]

    def get_run(self, run_id: str) -> Run | None:
        rows = self.db.query("SELECT * FROM runs WHERE id = ?", (run_id,))
        return Run.from_row(rows[0]) if rows else None

    def resolve_run(self, ref: str) -> str:
        """A full id, any unique prefix of one, its random tail, a run's name (the newest run of that name), or
        ``latest``."""
        ref = ref.strip()
        if ref in ("latest", "last"):
            rows = self.db.query("SELECT id FROM runs ORDER BY id DESC LIMIT 1")
            if not rows:
                raise ConfigError("there are no runs yet; run a step first with `blase step NAME`.")
            return rows[0]["id"]
        if not ref:
            raise ConfigError("give a run id (or a unique prefix of one, or `latest`).")
        escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.db.query("SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT 6", (escaped + "%",))
        if not rows and "-" not in ref:  # the random tail is the memorable part: `blase runs show q2cx`
            rows = self.db.query("SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT 6",
                                 ("%-" + escaped + "%",))
        if not rows:  # a name given with `blase runs edit --name` (or `e` in the TUI): the newest run with it
            rows = self.db.query("SELECT id FROM runs WHERE name = ? ORDER BY id DESC LIMIT 1", (ref,))
        if not rows:
            gone = self.db.query(
                "SELECT run_id, at FROM run_changes WHERE deleted = 1 AND (run_id LIKE ? ESCAPE '\\'"
                " OR run_id LIKE ? ESCAPE '\\') ORDER BY run_id DESC LIMIT 2", (escaped + "%", "%-" + escaped + "%"))
            if len(gone) == 1:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(gone[0]["at"]))
                raise ConfigError(f"run {gone[0]['run_id']} was deleted ({when}); `blase runs list` shows the runs"
                                  " there are.")
            raise ConfigError(f"no run matches `{ref}` (an id, a prefix or tail of one, a run's name, or `latest`);"
                              " `blase runs list` shows them.")
        if len(rows) > 1:
            shown = ", ".join(r["id"] for r in rows[:5])
            raise ConfigError(f"`{ref}` matches several runs ({shown}...); type more of the id.")
        return rows[0]["id"]

    def open_explicit_run(self) -> Run | None:
        rows = self.db.query(
            "SELECT * FROM runs WHERE status = ? AND explicit = 1 ORDER BY id DESC LIMIT 1", (RUNNING,)
        )
        return Run.from_row(rows[0]) if rows else None

    def promote_explicit(self, run_id: str) -> bool:
        """Make ``run_id`` the project's open explicit run, unless another one is open (checked in the same
        transaction); returns whether it is."""
        with self.db.write() as conn:
            cur = conn.execute(
                "UPDATE runs SET explicit = 1 WHERE id = ? AND status = ? AND NOT EXISTS"
                " (SELECT 1 FROM runs WHERE explicit = 1 AND status = ? AND id != ?)",
                (run_id, RUNNING, RUNNING, run_id))
            return cur.rowcount == 1

    def set_run_name(self, run_id: str, name: str) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE runs SET name = ? WHERE id = ?", (name, run_id))

    def edit_run(self, run_id: str, *, name: str | None = None, note: str | None = None,
                 tags: dict[str, Any] | None = None, untag: Iterable[str] = ()) -> None:
        """Change what a person says about a run: its name and note ("" clears them), tags set or removed. One
        transaction; the run folder's ``run.json`` follows."""
        with self.db.write() as conn:
            if name is not None:
                conn.execute("UPDATE runs SET name = ? WHERE id = ?", (name or None, run_id))
            if note is not None:
                conn.execute("UPDATE runs SET note = ? WHERE id = ?", (note or None, run_id))
            if tags:
                conn.executemany("INSERT OR REPLACE INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                                 [(run_id, str(k), str(v)) for k, v in tags.items()])
            for key in untag:
                conn.execute("DELETE FROM tags WHERE run_id = ? AND key = ?", (run_id, key))
            _changed(conn, run_id)
        self.write_run_json(run_id)

    def delete_run(self, run_id: str) -> None:
        """Remove a finished run: its folder and its records (params, metrics, tags, datasets, artifacts). Its
        objects stay in the content store until ``blase gc``; a model registered from it stays loadable (the
        model's file is its own reference). A running run is refused."""
        from blase_tui.errors import BlaseError
        from blase_tui.store.gc import TRASH, remove_tree

        row = self.get_run(run_id)
        if row is None:
            raise BlaseError(f"no run {run_id}; `blase runs list` shows the run ids.")
        if row.status == RUNNING:
            raise BlaseError(f"run {run_id} is running; stop it first (`blase runs cancel {run_id}`), or close it"
                             " (`blase runs close`) if it is an open run between steps.")
        folder = self.run_dir(run_id)
        trash = self.runs_dir / f"{TRASH}{run_id}"
        if folder.exists():
            os.replace(folder, trash)  # one rename: the run folder is gone at once, or not at all
        try:
            with self.db.write() as conn:
                conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
                _changed(conn, run_id, deleted=True)
        except BaseException:
            if trash.exists():
                os.replace(trash, folder)
            raise
        if trash.exists():
            remove_tree(trash)  # if this is cut short, `blase gc` finishes it

    def set_run_owner(self, run_id: str, pid: int | None, started: float | None) -> None:
        """While a step runs, its process owns the run; between steps an open run has no owner."""
        with self.db.write() as conn:
            conn.execute(
                "UPDATE runs SET owner_pid = ?, owner_started = ?, owner_host = ? WHERE id = ?",
                (pid, started, procs.hostname() if pid else None, run_id),
            )

    def close_run(self, run_id: str, status: str | None = None, *, ended: float | None = None) -> str:
        """End a run. Without ``status`` it is failed when the latest execution of any of its steps failed or
        was interrupted, else succeeded."""
        if status is None:
            rows = self.db.query(
                "SELECT status FROM step_runs WHERE id IN (SELECT MAX(id) FROM step_runs WHERE run_id = ? GROUP BY step)",
                (run_id,),
            )
            statuses = {r["status"] for r in rows}
            status = INTERRUPTED if INTERRUPTED in statuses else FAILED if FAILED in statuses else SUCCEEDED
        ended = time.time() if ended is None else ended
        # run.json first: a process killed between the two writes leaves a folder that says how the run ended
        # and an index row still `running`, which the next command finds dead and repairs, never the reverse
        desc = self.describe_run(run_id)
        if desc.run.status == RUNNING:
            run = replace(desc.run, status=status, ended=ended, owner_pid=None, owner_host=None, owner_started=None)
            write_json_atomic(self.run_dir(run_id) / "run.json", replace(desc, run=run).to_json())
        with self.db.write() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, ended = ?, owner_pid = NULL, owner_host = NULL, owner_started = NULL"
                " WHERE id = ? AND status = ?",
                (status, ended, run_id, RUNNING),
            )
        return status

    def recover_dead(self) -> list[str]:
        """Mark interrupted every running step execution and run whose owning process is gone. Returns the ids
        of the runs closed that way."""
        closed: list[str] = []
        now = time.time()
        dead_steps = [
            r for r in self.db.query("SELECT id, run_id, pid, pid_started, host FROM step_runs WHERE status = ?", (RUNNING,))
            if not procs.is_alive(r["pid"], r["pid_started"], r["host"])
        ]
        runs = self.db.query(
            "SELECT id, explicit, owner_pid, owner_started, owner_host FROM runs WHERE status = ?", (RUNNING,)
        )
        dead_step_runs = {r["run_id"] for r in dead_steps}
        for run in runs:
            owner_dead = run["owner_pid"] is not None and not procs.is_alive(
                run["owner_pid"], run["owner_started"], run["owner_host"]
            )
            if owner_dead or run["id"] in dead_step_runs:
                closed.append(run["id"])
        if not dead_steps and not closed:
            return []
        with self.db.write() as conn:
            for r in dead_steps:
                conn.execute(
                    "UPDATE step_runs SET status = ?, ended = ?, error = ? WHERE id = ? AND status = ?",
                    (INTERRUPTED, now, f"process {r['pid']} died while the step was running", r["id"], RUNNING),
                )
            for run_id in closed:
                finished = self._closed_in_folder(run_id) if run_id not in dead_step_runs else None
                if finished is not None:  # killed between writing run.json and the index: run.json says how
                    conn.execute(
                        "UPDATE runs SET status = ?, ended = ?, owner_pid = NULL, owner_host = NULL,"
                        " owner_started = NULL WHERE id = ? AND status = ?", (*finished, run_id, RUNNING))
                    continue
                conn.execute(
                    "UPDATE runs SET status = ?, ended = ?, owner_pid = NULL,"
                    " note = COALESCE(note, 'its process died while it was open') WHERE id = ? AND status = ?",
                    (INTERRUPTED, now, run_id, RUNNING),
                )
        for run_id in closed:
            self.write_run_json(run_id)
        return closed

    def _closed_in_folder(self, run_id: str) -> tuple[str, float] | None:
        """``(status, ended)`` when the run's ``run.json`` says it ended (close_run writes it first)."""
        try:
            text = (self.run_dir(run_id) / "run.json").read_text(encoding="utf-8")
            run = RunDescription.from_json(json.loads(text)).run
        except (OSError, ValueError, KeyError, TypeError, AttributeError):  # no run.json, or not one blase wrote
            return None
        if run.status in (SUCCEEDED, FAILED, INTERRUPTED) and run.ended:
            return run.status, float(run.ended)
        return None

    # -------------------------------------------------------- step executions
    def begin_step(self, run_id: str, step: str, *, pid: int, pid_started: float | None,
                   started: float | None = None) -> tuple[int, Path]:
        """Add a running execution of ``step`` to the run (``started``: now, unless it is an import of an
        execution made elsewhere); returns its id and its folder."""
        run_folder = self.run_dir(run_id)
        with self.db.write() as conn:
            used = {r[0] for r in conn.execute("SELECT folder FROM step_runs WHERE run_id = ?", (run_id,))}
            folder, n = step, 1
            while folder in used or (run_folder / folder).exists():
                n += 1
                folder = f"{step}-{n}"
            cur = conn.execute(
                "INSERT INTO step_runs (run_id, step, folder, status, started, pid, pid_started, host)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, step, folder, RUNNING, time.time() if started is None else started, pid, pid_started,
                 procs.hostname()),
            )
            step_run_id = int(cur.lastrowid)
            (run_folder / folder).mkdir(parents=True, exist_ok=True)
        self.write_run_json(run_id)  # a run killed in its first step still has a folder reindex can read
        return step_run_id, run_folder / folder

    def set_step_signature(self, step_run_id: int, sig: Any, digest: str, git: Any | None) -> None:
        with self.db.write() as conn:
            conn.execute(
                "UPDATE step_runs SET signature = ?, code_hash = ?, func_hash = ?, params_hash = ?, env_hash = ?,"
                " git_commit = ?, git_patch_hash = ? WHERE id = ?",
                (digest, sig.code_hash, sig.func_hash, sig.params_hash, sig.env_hash,
                 git.commit if git else None, git.patch_hash if git else None, step_run_id),
            )

    def set_step_code(self, step_run_id: int, parts: dict[str, str], *, how: int = CODE_USED) -> None:
        """The parts of the project's code an execution used (``core/codeuse.py``), with their hashes; ``how``:
        found statically (``CODE_USED``), seen imported as it ran (``CODE_IMPORTED``), or only loaded in its
        process (``CODE_LOADED``: kept with the run so it can be reproduced, not part of what it used)."""
        if not parts:
            return
        with self.db.write() as conn:
            conn.executemany("INSERT OR IGNORE INTO step_code (step_run_id, part, hash, imported) VALUES (?, ?, ?, ?)",
                             [(step_run_id, k, v, how) for k, v in sorted(parts.items())])

    def step_code(self, step_run_id: int) -> dict[str, str]:
        """``{part: hash}`` of the code an execution used (empty for one recorded before blase kept it)."""
        return {r["part"]: r["hash"] for r in self.db.query(
            "SELECT part, hash FROM step_code WHERE step_run_id = ? AND imported < ? ORDER BY part",
            (step_run_id, CODE_LOADED))}

    def run_code_parts(self, run_id: str) -> list[str]:
        """Every code part the run's executions used."""
        return [r["part"] for r in self.db.query(
            "SELECT DISTINCT c.part FROM step_code c JOIN step_runs s ON s.id = c.step_run_id WHERE s.run_id = ?",
            (run_id,))]

    def code_changed(self, step_run_id: int) -> list[str]:
        """The project modules an execution imported as it ran, unseen by the static analysis, that are gone or
        differ now: such an execution is not reused. (What the analysis found is in the signature itself.)"""
        from blase_tui.store.hashing import hash_file

        changed = []
        for r in self.db.query("SELECT part, hash FROM step_code WHERE step_run_id = ? AND imported = ?",
                               (step_run_id, CODE_IMPORTED)):
            path = (self.root / r["part"]).resolve()
            # a part naming a file outside the project (a crafted run.json) is never a reason to reuse
            if not path.is_relative_to(self.root.resolve()) or not path.is_file() or hash_file(path) != r["hash"]:
                changed.append(r["part"])
        return changed

    def rehash_step_params(self, step_run_id: int) -> None:
        """A step's ``params_hash`` over every param it recorded: its own and those its module calls recorded as
        they ran (the seed's steps have no params of their own), so two steps whose params differ never show one
        hash. The signature, computed before the step ran, keeps the hash of its own params."""
        with self.db.write() as conn:
            params = {r[0]: from_json_value(r[1]) for r in conn.execute(
                "SELECT key, value FROM params WHERE step_run_id = ?", (step_run_id,))}
            conn.execute("UPDATE step_runs SET params_hash = ? WHERE id = ?", (hash_json(params), step_run_id))

    def finish_step(
        self,
        step_run_id: int,
        status: str,
        *,
        exit_code: int,
        error: str | None = None,
        peak_rss: int | None = None,
        cpu_seconds: float | None = None,
        skipped_from: int | None = None,
        ended: float | None = None,
    ) -> None:
        with self.db.write() as conn:
            conn.execute(
                "UPDATE step_runs SET status = ?, ended = ?, exit_code = ?, error = ?, peak_rss = ?,"
                " cpu_seconds = ?, skipped_from = ? WHERE id = ?",
                (status, time.time() if ended is None else ended, exit_code, error, peak_rss, cpu_seconds,
                 skipped_from, step_run_id),
            )

    def write_step_command(self, folder: Path, invocation: dict[str, Any]) -> None:
        """How a step execution was started (``command.json`` in its folder), for ``runs reproduce``."""
        write_json_atomic(folder / STEP_COMMAND, invocation)

    def step_command(self, run_id: str, folder: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.run_dir(run_id) / folder / STEP_COMMAND).read_text())
        except (OSError, ValueError):
            return None

    def step_run(self, step_run_id: int) -> StepRun | None:
        rows = self.db.query("SELECT * FROM step_runs WHERE id = ?", (step_run_id,))
        return StepRun.from_row(rows[0]) if rows else None

    def step_runs(self, run_id: str) -> list[StepRun]:
        """The run's step executions, oldest first."""
        return [StepRun.from_row(r) for r in self.db.query(
            "SELECT * FROM step_runs WHERE run_id = ? ORDER BY id", (run_id,))]

    def find_reusable(self, digest: str, *, need_inputs: bool = True) -> StepRun | None:
        """A succeeded execution with the signature ``digest`` whose inputs are unchanged and whose outputs still
        exist. Executions that recorded no outputs are never reused (there would be nothing to reuse), nor,
        with ``need_inputs``, those that recorded no input: a step whose inputs blase cannot see (a download, a
        clock, a folder it did not record) must run each time."""
        for row in self.db.query(
            f"SELECT * FROM step_runs WHERE signature = ? AND status = ? AND {NOT_REPRODUCTION} ORDER BY id DESC"
            " LIMIT 5", (digest, SUCCEEDED)
        ):
            prev = StepRun.from_row(row)
            if next(self._obstacles(prev, need_inputs), None) is None:  # the first is enough: no more hashing
                return prev
        return None

    def reuse_obstacles(self, prev: StepRun, *, need_inputs: bool = True) -> list[str]:
        """Why the outputs of ``prev`` (an execution with the signature asked for) cannot be reused, one short
        phrase each (``blase status`` says them); empty when they can."""
        return list(self._obstacles(prev, need_inputs))

    def _obstacles(self, prev: StepRun, need_inputs: bool) -> Iterator[str]:
        from blase_tui.store import remote
        from blase_tui.store.hashing import fingerprint

        arts = self.db.query("SELECT name, hash FROM artifacts WHERE step_run_id = ?", (prev.id,))
        sets = [Dataset.from_row(r) for r in self.db.query("SELECT * FROM datasets WHERE step_run_id = ?",
                                                           (prev.id,))]
        if not arts and not any(s.role == "output" for s in sets):
            yield "its last execution recorded no output, so there is nothing to reuse"
            return
        if need_inputs and not any(s.role == "input" for s in sets):
            yield ("it records no input blase can see (a download, a clock, a folder it did not name), so it runs"
                   " every time")
            return
        gone = [a["name"] for a in arts if not self.cas.has(a["hash"])]
        if gone:
            yield f"its artifact {gone[0]} is no longer stored" + (f" (and {len(gone) - 1} more)" if len(gone) > 1
                                                                   else "")
        if self.code_changed(self.producer(prev).id):
            yield "project code it imported as it ran has changed"
        for s in sets:
            if not (s.path and self._unchanged(s, fingerprint)):
                here = s.path and (s.path.startswith(remote.SCHEMES) or (self.root / s.path).exists())
                yield f"its {s.role} {s.path or s.name} " + ("changed" if here else "is gone")

    def dataset_paths(self, step_run_id: int, role: str) -> set[str]:
        """The project paths an execution recorded as its inputs or outputs (``role``)."""
        return {r["path"] for r in self.db.query("SELECT path FROM datasets WHERE step_run_id = ? AND role = ?"
                                                  " AND path IS NOT NULL", (step_run_id, role))}

    def _unchanged(self, dataset: Dataset, fingerprint: Any) -> bool:
        """Whether a recorded dataset is on disk as it was: the same sizes and times, or, when those moved (a
        ``touch``, a copy, a file downloaded again), the same content hash."""
        from blase_tui.store import exclusions, remote
        from blase_tui.store.filehash import dataset_hash

        path_text = dataset.path or ""
        if remote.is_url(path_text):  # the objects the server holds now against those it held then
            return remote.unchanged(path_text, dataset.fingerprint)
        if exclusions.is_exclusion_set(path_text):
            ref = (dataset.name if dataset.role == "input" else path_text)[len(exclusions.DATASET):]
            return exclusions.unchanged(self, ref, dataset.hash)
        path = self.root / path_text
        if dataset.fingerprint == fingerprint(path):
            return True
        return bool(dataset.hash) and path.exists() and dataset_hash(self, path) == dataset.hash

    def producer(self, step_run: StepRun) -> StepRun:
        """The execution that computed what ``step_run`` holds: itself, or the one its reuse chain started at."""
        seen = set()
        while step_run.skipped_from and step_run.id not in seen:
            seen.add(step_run.id)
            earlier = self.step_run(step_run.skipped_from)
            if earlier is None:
                break
            step_run = earlier
        return step_run

    def copy_step_records(self, source_step_run: int, run_id: str, step_run_id: int, folder: Path) -> None:
        """A reused execution: the earlier one's artifacts (linked), metrics, params of its module calls and
        dataset records."""
        from blase_tui.store.safepath import inside

        arts = self.db.query("SELECT name, hash, size FROM artifacts WHERE step_run_id = ?", (source_step_run,))
        for a in arts:
            self.cas.link_into(a["hash"], inside(folder / "artifacts", a["name"], what="artifact name"))
        self.add_artifacts(run_id, step_run_id, [(a["name"], a["hash"], a["size"]) for a in arts])
        self.log_metrics(
            (run_id, step_run_id, m["key"], m["value"], m["iteration"], m["ts"])
            for m in self.db.query(
                "SELECT key, value, iteration, ts FROM metrics WHERE step_run_id = ? ORDER BY rowid", (source_step_run,))
        )
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO params (run_id, key, step_run_id, value) SELECT ?, key, ?, value FROM params"
                " WHERE step_run_id = ?", (run_id, step_run_id, source_step_run))
            conn.execute(
                "INSERT OR IGNORE INTO step_code (step_run_id, part, hash, imported) SELECT ?, part, hash, imported"
                " FROM step_code WHERE step_run_id = ?", (step_run_id, source_step_run))
        for row in self.db.query("SELECT * FROM datasets WHERE step_run_id = ?", (source_step_run,)):
            self.record_dataset(run_id, step_run_id, Dataset.from_row(row))

    def newest_step_runs(self) -> list[StepRun]:
        """The newest execution of each step, whatever its run (one query, however many runs)."""
        rows = self.db.query("SELECT * FROM step_runs WHERE id IN (SELECT MAX(id) FROM step_runs GROUP BY step)"
                             " ORDER BY id")
        return [StepRun.from_row(r) for r in rows]

    def previous_step_runs(self, step: str, before: int, *, status: str | None = None) -> list[StepRun]:
        """Earlier executions of ``step`` (ids below ``before``), newest first."""
        if status is None:
            rows = self.db.query(f"SELECT * FROM step_runs WHERE step = ? AND id < ? AND {NOT_REPRODUCTION}"
                                 " ORDER BY id DESC", (step, before))
        else:
            rows = self.db.query(f"SELECT * FROM step_runs WHERE step = ? AND id < ? AND status = ? AND"
                                 f" {NOT_REPRODUCTION} ORDER BY id DESC", (step, before, status))
        return [StepRun.from_row(r) for r in rows]

    def step_run_params(self, step_run_id: int) -> dict[str, Any]:
        """Every param one step execution recorded: its own and those its module calls recorded."""
        return {r["key"]: from_json_value(r["value"]) for r in self.db.query(
            "SELECT key, value FROM params WHERE step_run_id = ?", (step_run_id,))}

    def step_metrics(self, step_run_id: int, keys: list[str] | None = None) -> dict[str, float]:
        """The last value of each metric (or of ``keys``) an execution logged."""
        rows = self.db.query(
            "SELECT key, value FROM metrics WHERE step_run_id = ? ORDER BY rowid", (step_run_id,))
        return {r["key"]: r["value"] for r in rows if keys is None or r["key"] in keys}

    def step_datasets(self, run_id: str, step_run_id: int, role: str | None = None) -> list[Dataset]:
        """The datasets one execution (0: the run, outside any step) read and wrote, or those of ``role``."""
        rows = self.db.query("SELECT * FROM datasets WHERE run_id = ? AND step_run_id = ?", (run_id, step_run_id))
        return [d for d in map(Dataset.from_row, rows) if role is None or d.role == role]

    def metric_keys(self, run_id: str) -> list[tuple[int, str]]:
        """``(step_run_id, key)`` of every metric of the run (0: logged outside any step)."""
        return [(int(r["step_run_id"]), r["key"]) for r in self.db.query(
            "SELECT DISTINCT step_run_id, key FROM metrics WHERE run_id = ? ORDER BY step_run_id, key", (run_id,))]

    def metric_series(self, run_id: str, step_run_id: int, key: str) -> list[MetricPoint]:
        """Every value of one metric of one execution, in logging order."""
        return [MetricPoint.from_row(r) for r in self.db.query(
            "SELECT iteration, value, ts FROM metrics WHERE run_id = ? AND step_run_id = ? AND key = ? ORDER BY rowid",
            (run_id, step_run_id, key))]

    def artifact_hash(self, run_id: str, name: str) -> str | None:
        """The hash of artifact ``name`` of the run (of its latest step that has one)."""
        rows = self.db.query(
            "SELECT hash FROM artifacts WHERE run_id = ? AND name = ? ORDER BY step_run_id DESC LIMIT 1", (run_id, name))
        return rows[0]["hash"] if rows else None

    def running_steps(self, run_id: str) -> list[str]:
        return [r["step"] for r in self.db.query(
            "SELECT step FROM step_runs WHERE run_id = ? AND status = ?", (run_id, RUNNING))]

    def running_step_runs(self, run_id: str | None = None) -> list[StepRun]:
        """The step executions still running (of ``run_id``, else of every run), oldest first."""
        where, args = ("status = ? AND run_id = ?", (RUNNING, run_id)) if run_id else ("status = ?", (RUNNING,))
        return [StepRun.from_row(r) for r in self.db.query(f"SELECT * FROM step_runs WHERE {where} ORDER BY id", args)]

    def newest_running_run(self) -> str | None:
        rows = self.db.query("SELECT id FROM runs WHERE status = ? ORDER BY id DESC LIMIT 1", (RUNNING,))
        return rows[0]["id"] if rows else None

    def step_run_of_process(self, pid: int, step: str, *, since: float = 0.0) -> StepRun | None:
        """The newest execution of ``step`` that process ``pid`` began (at or after ``since``)."""
        rows = self.db.query("SELECT * FROM step_runs WHERE pid = ? AND step = ? AND started >= ? ORDER BY id DESC"
                             " LIMIT 1", (pid, step, since))
        return StepRun.from_row(rows[0]) if rows else None

    def step_runs_of_process(self, pid: int, *, since: float = 0.0) -> list[StepRun]:
        """Every execution process ``pid`` began at or after ``since``, in order (a `blase run` goes from step to
        step in one process)."""
        return [StepRun.from_row(r) for r in self.db.query(
            "SELECT * FROM step_runs WHERE pid = ? AND started >= ? ORDER BY id", (pid, since))]

    def snapshot_code(self, run_id: str, files: list[tuple[str, Path]]) -> None:
        """Keep the project's code files with the run (run-level artifacts ``code/<path>``)."""
        items = []
        for rel, path in files:
            digest, size = self.cas.put_file(path)
            self.cas.link_into(digest, self.run_dir(run_id) / "artifacts" / "code" / rel)
            items.append((f"code/{rel}", digest, size))
        with self.db.write() as conn:
            conn.execute("DELETE FROM artifacts WHERE run_id = ? AND step_run_id = 0 AND name LIKE 'code/%'", (run_id,))
        self.add_artifacts(run_id, 0, items)

    # ------------------------------------------------ params, metrics, tags, artifacts
    def log_params(self, run_id: str, params: dict[str, Any], step_run_id: int = 0) -> None:
        with self.db.write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO params (run_id, key, step_run_id, value) VALUES (?, ?, ?, ?)",
                [(run_id, str(k), step_run_id, to_json_value(v)) for k, v in params.items()],
            )

    def log_metrics(self, rows: Iterable[tuple[str, int, str, float, int | None, float]]) -> None:
        """Insert ``(run_id, step_run_id, key, value, iteration, ts)`` rows in one transaction."""
        rows = list(rows)
        if rows:
            with self.db.write() as conn:
                conn.executemany(
                    "INSERT INTO metrics (run_id, step_run_id, key, value, iteration, ts) VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
                conn.executemany(
                    "INSERT OR IGNORE INTO metric_keys (step, key) SELECT step, ? FROM step_runs WHERE id = ?",
                    sorted({(r[2], r[1]) for r in rows if r[1]}),
                )

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        with self.db.write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                [(run_id, str(k), str(v)) for k, v in tags.items()],
            )

    def add_artifacts(self, run_id: str, step_run_id: int, items: Iterable[tuple[str, str, int]]) -> None:
        with self.db.write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO artifacts (run_id, step_run_id, name, hash, size) VALUES (?, ?, ?, ?, ?)",
                [(run_id, step_run_id, name, digest, size) for name, digest, size in items],
            )

    def add_dataset(
        self, run_id: str, step_run_id: int, *, role: str, name: str, path: str | None, digest: str | None,
        fingerprint: str | None = None, records: int | None = None, size: int | None = None,
    ) -> None:
        """Record a dataset the step read (``role="input"``) or wrote (``role="output"``)."""
        self.record_dataset(run_id, step_run_id, Dataset(role=role, name=name, path=path, hash=digest,
                                                         fingerprint=fingerprint, records=records, bytes=size))

    def record_dataset(self, run_id: str, step_run_id: int, dataset: Dataset) -> None:
        """Record ``dataset`` (as another execution or a run.json has it) as one of ``step_run_id``'s."""
        if dataset.role not in ("input", "output"):
            raise ValueError(f"dataset role must be 'input' or 'output', not {dataset.role!r}")
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO datasets (run_id, step_run_id, role, name, path, hash, fingerprint, records, bytes)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, step_run_id, dataset.role, dataset.name, dataset.path, dataset.hash, dataset.fingerprint,
                 dataset.records, dataset.bytes),
            )

    # ------------------------------------------------------------- description
    def describe_run(self, run_id: str) -> RunDescription:
        """Everything about one run: what ``runs show --json`` prints and ``run.json`` holds (``to_json()``)."""
        run = self.get_run(run_id)
        if run is None:
            raise ConfigError(f"no run `{run_id}` in this project.")
        params = self.db.query("SELECT key, step_run_id, value FROM params WHERE run_id = ? ORDER BY key", (run_id,))
        # the last value of each metric, not the whole history (a run may hold millions of values)
        metric_rows = self.db.query(
            "SELECT step_run_id, key, value FROM metrics WHERE rowid IN (SELECT MAX(rowid) FROM metrics"
            " WHERE run_id = ? GROUP BY step_run_id, key) ORDER BY rowid", (run_id,)
        )
        arts = self.db.query(
            "SELECT step_run_id, name, hash, size FROM artifacts WHERE run_id = ? ORDER BY name", (run_id,)
        )
        sets = self.db.query("SELECT * FROM datasets WHERE run_id = ? ORDER BY role, name", (run_id,))
        tags = {r["key"]: r["value"] for r in self.db.query("SELECT key, value FROM tags WHERE run_id = ?", (run_id,))}

        def last_metrics(step_run_id: int) -> dict[str, float]:
            out: dict[str, float] = {}
            for r in metric_rows:
                if r["step_run_id"] == step_run_id:
                    out[r["key"]] = r["value"]
            return out

        def params_of(step_run_id: int) -> dict[str, Any]:
            return {p["key"]: from_json_value(p["value"]) for p in params if p["step_run_id"] == step_run_id}

        def artifacts_of(step_run_id: int) -> tuple[Artifact, ...]:
            return tuple(Artifact.from_row(a) for a in arts if a["step_run_id"] == step_run_id)

        def datasets_of(step_run_id: int) -> tuple[Dataset, ...]:
            return tuple(Dataset.from_row(d) for d in sets if d["step_run_id"] == step_run_id)

        step_runs = self.step_runs(run_id)
        code: dict[int, dict[str, str]] = {}
        imported: dict[int, list[str]] = {}
        loaded: dict[int, dict[str, str]] = {}
        for r in self.db.query("SELECT c.step_run_id, c.part, c.hash, c.imported FROM step_code c JOIN step_runs s"
                               " ON s.id = c.step_run_id WHERE s.run_id = ? ORDER BY c.part", (run_id,)):
            if r["imported"] == CODE_LOADED:
                loaded.setdefault(r["step_run_id"], {})[r["part"]] = r["hash"]
                continue
            code.setdefault(r["step_run_id"], {})[r["part"]] = r["hash"]
            if r["imported"] == CODE_IMPORTED:
                imported.setdefault(r["step_run_id"], []).append(r["part"])
        reused = [s.skipped_from for s in step_runs if s.skipped_from]
        reused_runs = {r["id"]: r["run_id"] for r in self.db.query(
            f"SELECT id, run_id FROM step_runs WHERE id IN ({','.join('?' * len(reused))})", reused)} if reused else {}
        steps = tuple(
            StepDescription(
                id=s.id, step=s.step, folder=s.folder, status=s.status, started=s.started, ended=s.ended,
                exit_code=s.exit_code, error=s.error, pid=s.pid, host=s.host, peak_rss=s.peak_rss,
                cpu_seconds=s.cpu_seconds, skipped_from=s.skipped_from, reused_from_run=reused_runs.get(s.skipped_from),
                signature=s.signature, code_hash=s.code_hash, func_hash=s.func_hash, params_hash=s.params_hash,
                env_hash=s.env_hash, git_commit=s.git_commit, git_patch_hash=s.git_patch_hash,
                code=code.get(s.id, {}), code_imported=tuple(imported.get(s.id, ())), code_loaded=loaded.get(s.id, {}),
                params=params_of(s.id), metrics=last_metrics(s.id), artifacts=artifacts_of(s.id),
                datasets=datasets_of(s.id),
            )
            for s in step_runs
        )
        return RunDescription(run=run, tags=tags, params=params_of(0), metrics=last_metrics(0),
                              artifacts=artifacts_of(0), datasets=datasets_of(0), steps=steps)

    def write_run_json(self, run_id: str) -> None:
        write_json_atomic(self.run_dir(run_id) / "run.json", self.describe_run(run_id).to_json())


def _changed(conn: Any, run_id: str, *, deleted: bool = False) -> None:
    """Note that a person edited or deleted ``run_id`` now (``query.run_rows`` and ``query.deleted_runs`` read
    it back for a watching TUI)."""
    conn.execute("INSERT OR REPLACE INTO run_changes (run_id, at, deleted) VALUES (?, ?, ?)",
                 (run_id, time.time(), int(deleted)))
