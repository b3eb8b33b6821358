"""A store that notices damage and rebuilds whole (issue 24, items 6 to 8): bad lines in events files and the
journal are skipped and named while everything good around them is indexed; a reindex that dies part way leaves
the index it found; bytes flipped inside ``runs/blase.db`` stop every command with one line; a lost index beside
run folders is refused, never silently replaced by an empty one; a damaged journal never hands a label round
number out twice. Real projects, real SQLite files, real ``blase`` processes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import _env, make_project, runs_json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

STEPS = '''
from blase_tui import main, step


@step
def a(ctx, n: int = 6):
    """A few metrics."""
    for i in range(n):
        ctx.log_metric("loss", 1.0 / (i + 1), iteration=i)


@step
def many(ctx, n: int = 600):
    """Hundreds of metric rows: an index of more than a few pages."""
    for i in range(n):
        ctx.log_metric("loss", 1.0 / (i + 1), iteration=i)
        ctx.log_metric("acc", i / n, iteration=i)


if __name__ == "__main__":
    main()
'''


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj", main_src=STEPS, toml='[project]\nname = "dmg"\n')


def _drop_index(project: Path) -> None:
    for name in ("blase.db", "blase.db-wal", "blase.db-shm"):
        (project / "runs" / name).unlink(missing_ok=True)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def _series(project: Path, run_id: str) -> list[tuple[int, float]]:
    con = sqlite3.connect(project / "runs" / "blase.db")
    try:
        return con.execute("SELECT iteration, value FROM metrics WHERE run_id = ? AND key = 'loss' ORDER BY iteration",
                           (run_id,)).fetchall()
    finally:
        con.close()


# ------------------------------------------------------------------------------------ item 6: bad lines
def test_bad_lines_of_an_events_file_are_named_and_every_good_metric_is_indexed(proj: Path, tmp_path: Path,
                                                                               blase) -> None:
    """Invalid UTF-8, a value that is not a number, a key that would fake a line: each line skipped and named,
    the run indexed with all its other metrics (it used to be a UnicodeDecodeError and a half-built index)."""
    for _ in range(3):
        assert blase("step", "a", cwd=proj).returncode == 0
    ids = sorted(r["id"] for r in runs_json(blase, proj))
    target = make_project(tmp_path / "target", main_src=STEPS, toml='[project]\nname = "t"\n')
    assert blase("step", "a", "--set", "n=2", cwd=target).returncode == 0  # an index that exists: runs are added
    for rid in ids:
        shutil.copytree(proj / "runs" / rid, target / "runs" / rid)
    events = target / "runs" / ids[1] / "a" / "events.jsonl"
    lines = events.read_bytes().split(b"\n")
    metric = [i for i, line in enumerate(lines) if b'"metric"' in line]
    assert len(metric) == 6
    lines[metric[2]] = lines[metric[2]].replace(b'"loss"', b'"lo\xffss"')
    lines[metric[4]:metric[4]] = [b'{"t": 1.0, "type": "metric", "key": "loss", "value": {"x": 1}, "iteration": 9}',
                                  b'{"t": 1.0, "type": "metric", "key": "fake\\nline", "value": 1.0}']
    events.write_bytes(b"\n".join(lines))
    numbers = [metric[2] + 1, metric[4] + 1, metric[4] + 2]

    proc = blase("runs", "reindex", cwd=target)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "3 run(s) added, 1 already indexed." in proc.stdout
    name = f"runs/{ids[1]}/a/events.jsonl"
    assert f"skipped {name} line {numbers[0]}: not UTF-8 text" in proc.stdout
    assert f"skipped {name} line {numbers[1]}: metric 'loss' without a number" in proc.stdout
    assert f"skipped {name} line {numbers[2]}: a metric whose key is not" in proc.stdout
    assert [i for i, _ in _series(target, ids[1])] == [0, 1, 3, 4, 5]  # every good one; only the damaged one lost
    assert len(_series(target, ids[0])) == len(_series(target, ids[2])) == 6
    assert "fake\nline" not in blase("runs", "show", ids[1], cwd=target).stdout


def _label(root: Path, keys: list[str], n: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blase_tui", "label", "--plain", "--labeller", "bo", "--n", str(n)],
                          cwd=root, env=_env(), input="".join(k + "\n" for k in keys), capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def al(tmp_path: Path) -> Path:
    from test_labelling import MAIN, TOML, write_pool

    root = make_project(tmp_path / "al", MAIN, TOML)
    write_pool(root)
    return root


def test_a_damaged_journal_is_rebuilt_without_its_bad_lines_and_no_round_number_comes_twice(al: Path, blase) -> None:
    """The lines of label round 1 are damaged (an invalid byte): reindex rebuilds every good line and names the
    others; the next `blase label` starts round 2, never a second round 1 that a later rebuild would merge with
    the first (it used to be a traceback, "No labels yet", then a new round 1)."""
    from blase_tui.core.project import Project
    from blase_tui.store import labels as label_store

    first = _label(al, ["r", "b", "r", "r"], 4)
    assert first.returncode == 0 and "round 1 done: 4/4 labelled" in first.stdout, first.stderr
    journal = al / "runs" / "journal.jsonl"
    lines = journal.read_bytes().split(b"\n")
    rounds = [i for i, line in enumerate(lines) if line.startswith(b'{"table": "label_rounds"')]
    label_lines = [i for i, line in enumerate(lines) if line.startswith(b'{"table": "labels"')]
    assert len(rounds) == 2 and len(label_lines) == 4
    for i in (*rounds, label_lines[1]):
        lines[i] = lines[i].replace(b'"row": {', b'"row": {"\xff\xfe": 0, ', 1)
    journal.write_bytes(b"\n".join(lines))
    damaged = sorted(i + 1 for i in (*rounds, label_lines[1]))
    _drop_index(al)

    refused = _label(al, ["r"], 2)  # a journal and no index: lost, refused, nothing created
    assert refused.returncode == 2 and "`blase runs reindex`" in _one_line(refused)
    assert not (al / "runs" / "blase.db").exists()
    proc = blase("runs", "reindex", cwd=al)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "runs/blase.db was missing" in proc.stdout
    for number in damaged:
        assert f"skipped runs/journal.jsonl line {number}: not UTF-8 text" in proc.stdout
    assert "rebuilt from runs/journal.jsonl: 3 labels" in proc.stdout  # the good ones

    second = _label(al, ["b", "b"], 2)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("round 2 started") and "round 2 done: 2/2 labelled" in second.stdout

    _drop_index(al)  # a second rebuild keeps the two rounds apart
    assert blase("runs", "reindex", cwd=al).returncode == 0
    store = Project.at(al).store
    try:
        by_round: dict[int | None, int] = {}
        for lab in label_store.current_labels(store):
            by_round[lab.round] = by_round.get(lab.round, 0) + 1
        assert by_round == {1: 3, 2: 2}
        assert [r.number for r in label_store.rounds(store)] == [2]
    finally:
        store.close()


def test_a_run_json_that_cannot_be_indexed_is_skipped_whole(proj: Path, blase) -> None:
    """A value of the wrong kind half-way through a run.json (an execution's start time as a list): that run is
    named and leaves no rows at all; the others are indexed."""
    for _ in range(2):
        assert blase("step", "a", cwd=proj).returncode == 0
    ids = sorted(r["id"] for r in runs_json(blase, proj))
    run_json = proj / "runs" / ids[0] / "run.json"
    desc = json.loads(run_json.read_text())
    desc["steps"][0]["started"] = [1, 2]
    run_json.write_text(json.dumps(desc))
    _drop_index(proj)
    proc = blase("runs", "reindex", cwd=proj)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert f"skipped runs/{ids[0]}: run.json holds a value of the wrong kind" in proc.stdout
    assert [r["id"] for r in runs_json(blase, proj)] == [ids[1]]
    con = sqlite3.connect(proj / "runs" / "blase.db")
    try:
        for table in ("runs", "step_runs", "params", "metrics"):
            column = "id" if table == "runs" else "run_id"
            assert con.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", (ids[0],)).fetchone()[0] == 0
    finally:
        con.close()


CRASH = """
import os, sys
from blase_tui.store import reindex

real, calls, how = reindex.import_run, [], sys.argv[1]


def dying(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:  # the first run is in, the second half-way
        real(*args, **kwargs)
        if how == "kill":
            os._exit(9)
        raise RuntimeError("a bug half-way through reindex")
    return real(*args, **kwargs)


reindex.import_run = dying
sys.argv = ["blase", "runs", "reindex"]
from blase_tui.cli.app import run
run()
"""


@pytest.mark.parametrize("how", ["kill", "raise"])
@pytest.mark.parametrize("index", ["there", "damaged"])
def test_a_reindex_that_dies_part_way_leaves_the_index_it_found(proj: Path, tmp_path: Path, blase, how: str,
                                                                index: str) -> None:
    """Killed (or failing) after the first of the runs it adds: with an index there, none of them is added; with a
    damaged one, it is still there byte for byte, nothing was set aside, and the next reindex rebuilds it whole."""
    from blase_tui.store.db import check_integrity

    other = make_project(tmp_path / "other", main_src=STEPS, toml='[project]\nname = "o"\n')
    for project in (proj, other):
        for _ in range(2):
            assert blase("step", "a", cwd=project).returncode == 0
    own = sorted(r["id"] for r in runs_json(blase, proj))
    copied = sorted(r["id"] for r in runs_json(blase, other))
    for rid in copied:
        shutil.copytree(other / "runs" / rid, proj / "runs" / rid)
    db = proj / "runs" / "blase.db"
    if index == "damaged":
        db.write_bytes(db.read_bytes()[:2048] + os.urandom(8192))
    before = _digest(db)

    proc = subprocess.run([sys.executable, "-c", CRASH, how], cwd=proj, env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == (9 if how == "kill" else 1), proc.stderr
    assert _digest(db) == before
    assert not list((proj / "runs").glob("blase.db.damaged-*")), "nothing is set aside before the new index is whole"
    if index == "there":
        assert sorted(r["id"] for r in runs_json(blase, proj)) == own
        assert check_integrity(db, full=True) == []
    else:
        assert blase("runs", "list", cwd=proj).returncode == 2
    fixed = blase("runs", "reindex", cwd=proj)
    assert fixed.returncode == 0, fixed.stderr
    assert sorted(r["id"] for r in runs_json(blase, proj)) == sorted(own + copied)
    assert not list((proj / "runs").glob(".blase.db.rebuild-*")), "a killed rebuild's file is cleaned up"


# ---------------------------------------------------------------------------- item 7: damage inside blase.db
def _flip(db: Path, table: str) -> int:
    """Flip 64 bytes of a b-tree leaf page of ``table`` (just past its header: the cell pointers); the offset."""
    con = sqlite3.connect(db)
    try:
        size = con.execute("PRAGMA page_size").fetchone()[0]
        pages = con.execute("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno",
                            (table,)).fetchall()
    finally:
        con.close()
    assert len(pages) >= 3, f"{table} should span a few pages"
    offset = (pages[len(pages) // 2][0] - 1) * size + 8
    with open(db, "r+b") as fh:
        fh.seek(offset)
        data = fh.read(64)
        fh.seek(offset)
        fh.write(bytes(b ^ 0xFF for b in data))
    return offset


@pytest.mark.parametrize("table", ["metrics", "runs"])
def test_flipped_bytes_inside_the_index_stop_every_command_with_one_line(proj: Path, blase, table: str) -> None:
    """64 bytes flipped inside a table's page of an index closed cleanly (its modification time even set back):
    `runs list`, `runs show`, `models list`, `gc` and `blase step` each give the one line with the fix and exit 2,
    and the step writes nothing into the damaged file; `blase runs reindex` keeps it aside and rebuilds."""
    from blase_tui.store.db import check_integrity

    for _ in range(3):
        assert blase("step", "many", cwd=proj).returncode == 0
    if table == "runs":  # rows enough for a few pages of runs, written the way steps write them
        script = ("import sys, os\nfrom pathlib import Path\nfrom blase_tui.store.runstore import RunStore\n"
                  "s = RunStore(Path(sys.argv[1]))\n"
                  "for i in range(300):\n"
                  "    rid = s.create_run(name=f'r{i}', params={'i': i})\n    s.close_run(rid, 'succeeded')\n")
        subprocess.run([sys.executable, "-c", script, str(proj)], env=_env(), check=True, timeout=120)
    db = proj / "runs" / "blase.db"
    assert check_integrity(db) == [] and check_integrity(db, full=True) == []
    st = db.stat()
    _flip(db, table)
    os.utime(db, ns=(st.st_atime_ns, st.st_mtime_ns))  # the same modification time: the change time still moved
    problems = check_integrity(db)
    assert problems and check_integrity(db, full=True)
    damaged = _digest(db)
    for command in (["runs", "list"], ["runs", "show", "latest"], ["models", "list"], ["gc"], ["step", "a"]):
        proc = blase(*command, cwd=proj)
        line = _one_line(proc)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert "runs/blase.db is damaged" in line and "`blase runs reindex`" in line, line
    assert _digest(db) == damaged, "nothing was written into the damaged file"
    fixed = blase("runs", "reindex", cwd=proj)
    assert fixed.returncode == 0, fixed.stderr
    assert "runs/blase.db was damaged" in fixed.stdout and "kept it as runs/blase.db.damaged-" in fixed.stdout
    assert len(runs_json(blase, proj)) == 3 + (300 if table == "runs" else 0)
    assert check_integrity(db, full=True) == []
    assert blase("step", "a", cwd=proj).returncode == 0


WRITE_AND_DIE = """
import os, sys
from pathlib import Path
from blase_tui.store.runstore import RunStore

store = RunStore(Path(sys.argv[1]))
store.create_run(name="dies with the index open")
os._exit(9)
"""


def test_the_last_process_stamps_the_index_and_a_writer_that_died_is_not_trusted(proj: Path, blase) -> None:
    """The common path is cheap because the last process to close the index stamps its identity; one that died
    with it open (pages in the -wal, a changed file) leaves it to be checked by the next first opener."""
    from blase_tui.store.db import _Holders, _identity

    db = proj / "runs" / "blase.db"
    stamp = proj / "runs" / ".blase.db.clean"
    for _ in range(2):
        assert blase("step", "a", cwd=proj).returncode == 0
        assert stamp.read_text() == _identity(db), "the last closer stamps what it left"
    assert _Holders(db).left_clean()
    proc = subprocess.run([sys.executable, "-c", WRITE_AND_DIE, str(proj)], env=_env(), capture_output=True,
                          timeout=60)
    assert proc.returncode == 9
    assert not _Holders(db).left_clean(), "a writer that died: checked next time"
    assert len(runs_json(blase, proj)) == 3  # the check finds nothing wrong; the run it wrote is there
    assert stamp.read_text() == _identity(db) and _Holders(db).left_clean()


# ------------------------------------------------------------------------------ item 8: a lost blase.db
@pytest.mark.parametrize("state", ["missing", "empty"])
def test_a_lost_index_beside_run_folders_is_refused_never_replaced(proj: Path, blase, state: str) -> None:
    """No `No runs yet.` over run folders, no new index the next step records into: one line with the fix for
    every command that opens the store, until `blase runs reindex` rebuilds it."""
    for _ in range(3):
        assert blase("step", "a", cwd=proj).returncode == 0
    ids = sorted(r["id"] for r in runs_json(blase, proj))
    _drop_index(proj)
    db = proj / "runs" / "blase.db"
    if state == "empty":
        db.write_bytes(b"")
    for command in (["runs", "list"], ["runs", "show", "latest"], ["models", "list"], ["gc"], ["step", "a"]):
        proc = blase(*command, cwd=proj)
        line = _one_line(proc)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert f"runs/blase.db is {state} but runs/ holds 3 run folder(s)" in line and "`blase runs reindex`" in line
        assert db.exists() == (state == "empty") and (state == "missing" or db.stat().st_size == 0)
    assert sorted(p.name for p in (proj / "runs").iterdir() if p.is_dir()) == ids, "no run folder was made"
    proc = blase("runs", "reindex", cwd=proj)
    assert proc.returncode == 0 and f"runs/blase.db was {state}" in proc.stdout and "3 run(s) added" in proc.stdout
    assert sorted(r["id"] for r in runs_json(blase, proj)) == ids
    assert len(_series(proj, ids[0])) == 6


# --------------------------------------------------------------------------- the journal as untrusted input
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.just(2**64) | st.floats() | st.text(max_size=12),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=6)
_COLUMNS = st.sampled_from(["id", "key", "label", "action", "ts", "round", "number", "target", "strategy", "status",
                            "started", "position", "name", "version", "file_hash", "file_name", "alias", "step_run_id",
                            "x); DROP TABLE runs; --", "\n", ""])
_ROW = st.dictionaries(_COLUMNS, _JSON, max_size=8)
_ENTRY = st.fixed_dictionaries({"table": st.sampled_from(["labels", "label_rounds", "label_queue", "models",
                                                          "model_aliases", "exclusions", "runs", "sqlite_master"]),
                                "row": _ROW})
_LINE = st.one_of(st.binary(max_size=40), _ENTRY.map(lambda e: json.dumps(e).encode()),
                  _JSON.map(lambda v: json.dumps(v).encode()))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_LINE, max_size=12))
def test_replaying_crafted_journal_lines_never_raises(tmp_path: Path, lines: list[bytes]) -> None:
    """Whatever the journal holds (bytes, JSON of any shape, rows with crafted columns or values), replaying it
    raises nothing: each line is replayed or named, and the index keeps its tables."""
    from blase_tui.store import journal
    from blase_tui.store.db import Database

    runs = tmp_path / "runs"
    runs.mkdir(exist_ok=True)
    raw = b"".join(line.replace(b"\n", b" ") + b"\n" for line in lines)
    journal.path_of(runs).write_bytes(raw)
    db = Database(runs / "blase.db", shared=False)
    try:
        bad: list[str] = []

        class Undo(Exception):
            pass

        with pytest.raises(Undo), db.write() as conn:
            counts = journal.replay(conn, runs, set(journal.TABLES), {}, bad)
            assert sum(counts.values()) + len(bad) == sum(1 for line in raw.split(b"\n")[:-1] if line.strip())
            assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
            raise Undo
        assert all(" line " in b and "\n" not in b for b in bad)
    finally:
        db.close()


def test_a_torn_journal_line_is_never_glued_to_the_next_row(tmp_path: Path) -> None:
    """A writer killed mid-line leaves a torn last line; the next row starts on a line of its own, so it is
    replayed, and the torn one is named."""
    from blase_tui.store import journal
    from blase_tui.store.db import Database

    runs = tmp_path / "runs"
    runs.mkdir()
    journal.path_of(runs).write_bytes(b'{"table": "labels", "row": {"id": 1, "key"')
    db = Database(runs / "blase.db", shared=False)
    try:
        with db.write() as conn:
            conn.execute("INSERT INTO labels (id, key, action, label, ts) VALUES (1, 'k', 'label', 'real', 1.0)")
            journal.record(conn, runs, "labels", "id = ?", (1,))
    finally:
        db.close()
    bad: list[str] = []
    assert [(table, row["key"]) for _, table, row in journal.entries(runs, bad)] == [("labels", "k")]
    assert bad == ["runs/journal.jsonl line 1: not JSON (cut short or damaged)"]


def test_run_folders_the_index_does_not_list_are_named_with_the_reindex_hint(proj: Path, blase) -> None:
    """Run folders copied in from another machine beside a sound index: `runs list` says how many the index does
    not list and how to add them, rather than looking as if they were not there."""
    assert blase("step", "a", cwd=proj).returncode == 0
    other = make_project(proj.parent / "other", main_src=STEPS, toml='[project]\nname = "other"\n')
    assert blase("step", "a", cwd=other).returncode == 0
    copied = next(p for p in (other / "runs").iterdir() if (p / "run.json").is_file())
    shutil.copytree(copied, proj / "runs" / copied.name)
    listed = blase("runs", "list", cwd=proj)
    assert listed.returncode == 0 and copied.name not in listed.stdout
    assert f"runs/ holds 1 run folder(s) the index does not list ({copied.name}): `blase runs reindex` adds them." \
        in listed.stderr
    assert blase("runs", "reindex", cwd=proj).returncode == 0
    again = blase("runs", "list", cwd=proj)
    assert copied.name in again.stdout and "does not list" not in again.stderr
