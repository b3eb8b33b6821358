"""Failures at the edges, each probed as an attacker or a careless user would (issue 11): nothing escapes the
project, nothing acknowledged is lost, every failure is one clear line. Real processes, files and signals."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import _env, make_project, runs_json, show_json, wait_for

STEPS = '''
import os
import signal
import sys
from pathlib import Path

from blase_tui import main, step


@step
def keep(ctx, name: str = "x.txt"):
    """Log an artifact under the name given."""
    Path("out.txt").write_text("mine")
    ctx.log_artifact("out.txt", name=name)


@step
def linked(ctx, target: str = "", folder: str = ""):
    """Links in the artifact folder to a file and a folder outside the project."""
    os.symlink(target, ctx.artifact_dir / "outside.txt")
    os.symlink(folder, ctx.artifact_dir / "outside_dir")
    (ctx.artifact_dir / "own.txt").write_text("own")


@step
def twice(ctx):
    """SIGTERM itself, and again while blase records the end of the step."""
    store = ctx.tracker.store
    real = store.finish_step

    def finish_step(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # the second signal, in the middle of finishing
        return real(*args, **kwargs)

    store.finish_step = finish_step
    for i in range(50):
        (ctx.artifact_dir / f"part{i}.txt").write_text(str(i))
    os.kill(os.getpid(), signal.SIGTERM)


@step
def chatty(ctx, lines: int = 20000):
    """Print many lines."""
    for i in range(lines):
        print(f"line {i}")
    ctx.log_metric("printed", lines)


@step
def leave(ctx, code: int = 0):
    """Call sys.exit."""
    ctx.log_metric("before_exit", 1)
    sys.exit(code)


@step
def typed(ctx, n: int = 1, flag: bool = False, rate: float = 0.5):
    """Params with types."""
    ctx.log_params({"seen_n": n, "seen_flag": flag, "seen_rate": rate})


@step
def hold(ctx):
    """Wait for the file `release`."""
    import time

    Path("started").write_text("")
    while not Path("release").exists():
        time.sleep(0.02)


@step
def b(ctx):
    """Another step."""
    ctx.log_metric("b", 1)


@step
def stream(ctx):
    """Log metrics as fast as it can until killed."""
    import time

    i = 0
    while True:
        ctx.log_metric("v", float(i), iteration=i)
        i += 1
        if i % 500 == 0:
            time.sleep(0.001)


if __name__ == "__main__":
    main()
'''


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj", main_src=STEPS, toml='[project]\nname = "rel"\n')


@pytest.mark.parametrize("name", ["{outside}", "../../../escape.txt", "a/../../escape.txt", ""])
def test_artifact_names_stay_inside_the_run(proj: Path, tmp_path: Path, blase, name: str) -> None:
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    before = stat.S_IMODE(outside.stat().st_mode)
    proc = blase("step", "keep", "--set", f"name={name.format(outside=outside)}", cwd=proj)
    assert proc.returncode == 1
    assert "it must be a relative path inside its folder" in proc.stderr
    assert outside.read_text() == "keep me" and stat.S_IMODE(outside.stat().st_mode) == before
    assert not (tmp_path / "escape.txt").exists() and not (proj.parent / "escape.txt").exists()
    assert not any(p.name == "escape.txt" for p in tmp_path.rglob("*"))
    run = runs_json(blase, proj)[0]
    assert run["status"] == "failed"


def test_artifact_names_are_normalised(proj: Path, blase) -> None:
    assert blase("step", "keep", "--set", "name=./reports//a.txt", cwd=proj).returncode == 0
    step = show_json(blase, proj, "latest")["steps"][0]
    assert [a["name"] for a in step["artifacts"]] == ["reports/a.txt"]


def test_links_in_the_artifact_folder_are_copied_never_touched(proj: Path, tmp_path: Path, blase) -> None:
    target = tmp_path / "outside.txt"
    target.write_text("outside content")
    folder = tmp_path / "outside_dir"
    folder.mkdir()
    (folder / "secret.txt").write_text("secret")
    mode = stat.S_IMODE(target.stat().st_mode)
    proc = blase("step", "linked", "--set", f"target={target}", "--set", f"folder={folder}", cwd=proj)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(target.stat().st_mode) == mode and os.access(target, os.W_OK), "the outside file is untouched"
    run = show_json(blase, proj, "latest")
    arts = {a["name"]: a for a in run["steps"][0]["artifacts"]}
    assert set(arts) == {"outside.txt", "own.txt"}, "the folder link is left out"
    kept = proj / "runs" / run["id"] / "linked" / "artifacts" / "outside.txt"
    assert not kept.is_symlink() and kept.read_text() == "outside content"
    target.write_text("changed later")  # the stored object is a copy: its hash still holds
    import hashlib

    obj = proj / ".blase" / "cas" / "objects" / arts["outside.txt"]["hash"][:2] / arts["outside.txt"]["hash"][2:]
    assert hashlib.sha256(obj.read_bytes()).hexdigest() == arts["outside.txt"]["hash"]
    assert (folder / "secret.txt").read_text() == "secret"
    assert not (proj / "runs" / run["id"] / "linked" / "artifacts" / "outside_dir").exists()
    log = (proj / "runs" / run["id"] / "linked" / "log.txt").read_text()
    assert "left out links to folders in artifacts/ (outside_dir)" in log


def test_a_second_sigterm_while_finishing_still_finishes(proj: Path, blase) -> None:
    proc = blase("step", "twice", "--start-run", cwd=proj)
    assert proc.returncode == 130, proc.stderr
    run = show_json(blase, proj, "latest")
    assert run["status"] == "interrupted" and run["steps"][0]["status"] == "interrupted"
    assert len(run["steps"][0]["artifacts"]) == 50, "every artifact recorded"
    assert (proj / "runs" / run["id"] / "run.json").is_file()


def test_a_closed_pipe_is_not_the_steps_failure(proj: Path, blase) -> None:
    cmd = f"{sys.executable} -m blase_tui step chatty | head -1"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=proj, env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout == "line 0\n"
    assert proc.returncode == 0, proc.stderr
    run = show_json(blase, proj, "latest")
    assert run["status"] == "succeeded" and run["steps"][0]["metrics"] == {"printed": 20000.0}
    log = (proj / "runs" / run["id"] / "chatty" / "log.txt").read_text()
    assert "line 19999" in log, "the step's log keeps what the pipe did not take"


def test_sys_exit_in_a_step(proj: Path, blase) -> None:
    assert blase("step", "leave", cwd=proj).returncode == 0
    assert runs_json(blase, proj)[0]["status"] == "succeeded"
    proc = blase("step", "leave", "--set", "code=3", cwd=proj)
    assert proc.returncode == 1 and "it called sys.exit(3)" in proc.stderr
    assert runs_json(blase, proj)[0]["status"] == "failed"


@pytest.mark.parametrize(("line", "expected"), [
    ('n = "many"', "[steps.typed] n = 'many' in blase.toml: `n` takes a whole number"),
    ('flag = "no"', "[steps.typed] flag = 'no' in blase.toml: `flag` takes true or false"),
    ("n = 2.5", "`n` takes a whole number"),
    ('rate = "fast"', "`rate` takes a number"),
])
def test_blase_toml_params_are_type_checked(tmp_path: Path, blase, line: str, expected: str) -> None:
    project = make_project(tmp_path / "p", main_src=STEPS, toml=f'[project]\nname = "rel"\n[steps.typed]\n{line}\n')
    proc = blase("step", "typed", cwd=project)
    assert proc.returncode == 2 and expected in proc.stderr
    assert not (project / "runs").exists() or runs_json(blase, project) == []


def test_a_whole_number_where_a_float_is_expected_is_a_float(tmp_path: Path, blase) -> None:
    project = make_project(tmp_path / "p", main_src=STEPS, toml='[project]\nname = "rel"\n[steps.typed]\nrate = 2\n')
    assert blase("step", "typed", cwd=project).returncode == 0
    assert show_json(blase, project, "latest")["steps"][0]["params"]["seen_rate"] == 2.0


def test_end_run_refuses_while_another_step_of_the_run_runs(proj: Path, spawn, blase) -> None:
    assert blase("step", "b", "--start-run", cwd=proj).returncode == 0
    holder = spawn("step", "hold", cwd=proj)
    wait_for(lambda: (proj / "started").exists(), what="the hold step to start")
    proc = blase("step", "b", "--end-run", cwd=proj)
    assert proc.returncode == 2 and "step `hold` of run" in proc.stderr and "still running" in proc.stderr
    (proj / "release").write_text("")
    assert holder.wait(timeout=60) == 0
    assert runs_json(blase, proj)[0]["status"] == "running", "the run is still open"
    assert blase("step", "b", "--end-run", cwd=proj).returncode == 0
    run = runs_json(blase, proj)[0]
    assert run["status"] == "succeeded" and [s["step"] for s in run["steps"]] == ["b", "hold", "b"]


def test_simultaneous_start_runs_open_one_run(proj: Path, blase) -> None:
    for attempt in range(10):
        procs = [subprocess.Popen([sys.executable, "-m", "blase_tui", "step", step, "--start-run"], cwd=proj,
                                  env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for step in ("b", "typed")]
        codes = sorted(p.wait(timeout=60) for p in procs)
        assert codes == [0, 2], f"try {attempt}: {[p.stderr.read() for p in procs]}"
        open_runs = [r for r in runs_json(blase, proj) if r["status"] == "running"]
        assert len(open_runs) == 1
        assert blase("runs", "close", open_runs[0]["id"], cwd=proj).returncode == 0


def test_a_damaged_store_is_one_line_and_reindex_rebuilds_it(proj: Path, blase) -> None:
    assert blase("step", "b", cwd=proj).returncode == 0
    first = runs_json(blase, proj)[0]["id"]
    db = proj / "runs" / "blase.db"
    for extra in ("-wal", "-shm"):
        db.with_name(db.name + extra).unlink(missing_ok=True)
    db.write_bytes(db.read_bytes()[:2048] + os.urandom(8192))
    proc = blase("runs", "list", cwd=proj)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "runs/blase.db is damaged" in proc.stderr and "blase runs reindex" in proc.stderr
    step = blase("step", "b", cwd=proj)
    assert step.returncode == 2 and "is damaged" in step.stderr and "Traceback" not in step.stderr
    fixed = blase("runs", "reindex", cwd=proj)
    assert fixed.returncode == 0, fixed.stderr
    assert "was damaged" in fixed.stdout and "1 run(s) added" in fixed.stdout
    assert [r["id"] for r in runs_json(blase, proj)] == [first]
    assert list((proj / "runs").glob("blase.db.damaged-*")), "the damaged file is kept"


@pytest.mark.parametrize("entry", ["../other/main.py", "/tmp/main.py"])
def test_the_entry_module_must_be_inside_the_project(tmp_path: Path, blase, entry: str) -> None:
    project = make_project(tmp_path / "p", main_src=STEPS, toml=f'[project]\nname = "rel"\nentry = "{entry}"\n')
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "main.py").write_text(STEPS)
    proc = blase("step", "b", cwd=project)
    assert proc.returncode == 2 and "is outside the project" in proc.stderr



# ------------------------------------------------------------------ readers: bad input is a bad record
def _png_claiming(path: Path, width: int, height: int) -> None:
    """A real 2x2 PNG whose header then claims another size (CRC fixed, so only the size is a lie)."""
    import struct
    import zlib

    from PIL import Image

    Image.new("L", (2, 2)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr:ihdr + 17])) & 0xFFFFFFFF
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))


def test_a_decompression_bomb_is_a_bad_record(tmp_path: Path) -> None:
    from PIL import Image

    from blase_tui import Extract
    from blase_tui.modules.extract import DataError

    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("L", (4, 4), 200).save(folder / "fine.png")
    _png_claiming(folder / "bomb.png", 100_000, 100_000)
    (folder / "junk.png").write_bytes(b"not a png at all")
    extractor = Extract()
    batches = list(extractor.load_images(folder))
    assert sum(len(b) for b in batches) == 1 and batches[0].keys == ["fine.png"]
    reasons = {b.record: b.reason for b in extractor.bad_records}
    assert "10,000,000,000 pixels, over Pillow's safety limit" in reasons["bomb.png"]
    assert reasons["junk.png"] == "not an image Pillow can read (not PNG/JPEG, or damaged)"
    assert not any("BytesIO" in r for r in reasons.values())
    with pytest.raises(DataError, match=r"bomb\.png: record bomb\.png cannot be read \(its header claims"):
        list(Extract(on_error="fail").load_images(folder))


def test_text_that_is_not_utf8_is_named_never_coerced(tmp_path: Path) -> None:
    from blase_tui import Extract
    from blase_tui.modules.extract import DataError

    csv = tmp_path / "people.csv"
    csv.write_bytes(b"name,age\nana,31\ncaf\xe9,40\nbo,22\n")
    extractor = Extract()
    table = next(iter(extractor.load_csv(csv)))
    assert table.data.schema.field("name").type == "string", "the column stays text"
    assert table["name"].tolist() == ["ana", "bo"] and table.keys == ["people.csv:0", "people.csv:2"]
    [bad] = extractor.bad_records
    assert bad.record == "people.csv:1" and "column `name` is not valid UTF-8" in bad.reason
    assert 'encoding="latin-1"' in bad.reason
    with pytest.raises(DataError, match=r"people\.csv: record people\.csv:1 cannot be read \(column `name`"):
        list(Extract(on_error="fail").load_csv(csv))
    latin = next(iter(Extract().load_csv(csv, encoding="latin-1")))
    assert latin["name"].tolist() == ["ana", "café", "bo"]


def test_a_damaged_parquet_file_is_named(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from blase_tui import Extract
    from blase_tui.modules.extract import DataError

    folder = tmp_path / "pool"
    folder.mkdir()
    pq.write_table(pa.table({"x": list(range(100))}), folder / "a.parquet")
    pq.write_table(pa.table({"x": list(range(100))}), folder / "b.parquet")
    damaged = folder / "b.parquet"
    damaged.write_bytes(damaged.read_bytes()[:-30])
    with pytest.raises(DataError, match=r"b\.parquet: not a readable Parquet file \(.+\); it may be damaged"):
        list(Extract().load_parquet(folder))


def test_an_object_npy_says_why_it_is_refused(tmp_path: Path) -> None:
    import numpy as np

    from blase_tui import Extract
    from blase_tui.modules.extract import DataError

    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"objects\.npy: not a readable \.npy file \(it holds Python objects") as err:
        list(Extract().load_npy(tmp_path / "objects.npy"))
    assert "pickle" not in str(err.value)


# ------------------------------------------------------------------ reindex and closing
def test_reindex_hashes_what_enters_the_store(tmp_path: Path, blase) -> None:
    """A truncated copy of a run folder never enters the content store under the full file's hash."""
    import shutil

    source = make_project(tmp_path / "a", main_src=STEPS, toml='[project]\nname = "a"\n')
    (source / "big.txt").write_text("x" * 10_000)
    assert blase("step", "keep", cwd=source).returncode == 0
    run = show_json(blase, source, "latest")
    target = make_project(tmp_path / "b", main_src=STEPS, toml='[project]\nname = "b"\n')
    (target / "runs").mkdir()
    copied = target / "runs" / run["id"]
    shutil.copytree(source / "runs" / run["id"], copied)
    art = copied / "keep" / "artifacts" / "x.txt"
    art.chmod(0o644)
    art.unlink()
    art.write_text("mi")  # a truncated copy of "mine"
    proc = blase("runs", "reindex", cwd=target)
    assert proc.returncode == 0, proc.stderr
    assert "left out" in proc.stdout and "keep/artifacts/x.txt: its content hashes to" in proc.stdout
    recorded = run["steps"][0]["artifacts"][0]["hash"]
    assert not (target / ".blase" / "cas" / "objects" / recorded[:2] / recorded[2:]).exists()
    assert show_json(blase, target, run["id"])["steps"][0]["artifacts"] == []
    # the genuine content, made later, is stored under its own hash
    assert blase("step", "keep", "--force", cwd=target).returncode == 0
    obj = target / ".blase" / "cas" / "objects" / recorded[:2] / recorded[2:]
    assert obj.read_text() == "mine"


CLOSE_AND_DIE = """
import os, sys
from pathlib import Path
from blase_tui.store.runstore import RunStore
from blase_tui.store import procs

store = RunStore(Path(sys.argv[1]))
run_id = store.create_run(name="dies", owner_pid=os.getpid(), owner_started=procs.process_started())
store.begin_step(run_id, "s", pid=os.getpid(), pid_started=procs.process_started())
store.finish_step(store.step_runs(run_id)[0].id, "succeeded", exit_code=0)
print(run_id, flush=True)
store.db.write = lambda: os._exit(9)   # killed right after run.json is written, before the index says so
store.close_run(run_id)
"""


def test_killed_while_closing_the_index_is_repaired_from_run_json(proj: Path, blase) -> None:
    import json

    proc = subprocess.run([sys.executable, "-c", CLOSE_AND_DIE, str(proj)], env=_env(), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 9
    run_id = proc.stdout.strip()
    assert json.loads((proj / "runs" / run_id / "run.json").read_text())["status"] == "succeeded"
    listed = runs_json(blase, proj)  # the next command notices the dead owner
    assert [(r["id"], r["status"]) for r in listed] == [(run_id, "succeeded")]
    (proj / "runs" / "blase.db").unlink()
    for extra in ("blase.db-wal", "blase.db-shm"):
        (proj / "runs" / extra).unlink(missing_ok=True)
    assert blase("runs", "reindex", cwd=proj).returncode == 0
    assert [(r["id"], r["status"]) for r in runs_json(blase, proj)] == [(run_id, "succeeded")]


def test_a_run_killed_in_its_first_step_survives_reindex(proj: Path, spawn, blase) -> None:
    holder = spawn("step", "hold", cwd=proj)
    wait_for(lambda: (proj / "started").exists(), what="the step to start")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    (proj / "runs" / "blase.db").unlink()
    for extra in ("blase.db-wal", "blase.db-shm"):
        (proj / "runs" / extra).unlink(missing_ok=True)
    assert blase("runs", "reindex", cwd=proj).returncode == 0
    run = runs_json(blase, proj)[0]
    assert run["status"] == "interrupted" and run["steps"] == [{"step": "hold", "status": "interrupted"}]


# ------------------------------------------------------------------ a full disk
FILL = '''
from pathlib import Path
from blase_tui import main, step


@step
def fill(ctx):
    """Write until the disk is full."""
    ctx.log_metric("started", 1)
    with open("filler.bin", "wb") as fh:
        while True:
            fh.write(b"x" * (1 << 16))
            fh.flush()


@step
def b(ctx):
    """A small step."""
    ctx.log_metric("b", 1)
    (ctx.artifact_dir / "b.txt").write_text("b")


if __name__ == "__main__":
    main()
'''


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 24 MiB tmpfs, removed after the test (needs root, as on our machines and CI)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode}); it needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _integrity(project: Path) -> str:
    import sqlite3

    with sqlite3.connect(project / "runs" / "blase.db") as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def test_a_disk_that_fills_mid_step(small_disk: Path, blase) -> None:
    project = make_project(small_disk / "p", main_src=FILL, toml='[project]\nname = "full"\n')
    assert blase("step", "b", cwd=project).returncode == 0
    proc = blase("step", "fill", cwd=project)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    run = runs_json(blase, project)[0]
    assert last.startswith("blase: step `fill` failed: no space left on the disk holding")
    assert run["id"] in last and str(project) in last
    assert "Traceback" not in proc.stderr
    assert run["status"] == "failed" and run["steps"] == [{"step": "fill", "status": "failed"}]
    assert _integrity(project) == "ok"
    (project / "filler.bin").unlink()
    assert blase("step", "b", cwd=project).returncode == 0, "the next step after freeing space works"
    assert runs_json(blase, project)[0]["status"] == "succeeded"


def test_a_full_disk_at_step_start(small_disk: Path, blase) -> None:
    """The project's first step on a disk with no room for the run store: one line, nothing half-made."""
    project = make_project(small_disk / "p", main_src=FILL, toml='[project]\nname = "full"\n')
    filler = small_disk / "filler.bin"
    try:
        with open(filler, "wb") as fh:
            while True:
                fh.write(b"x" * (1 << 16))
                fh.flush()
    except OSError:  # the disk is full now
        pass
    proc = blase("step", "b", cwd=project)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("blase: step `b` could not be recorded: no space left on the disk holding")
    filler.unlink()
    assert blase("step", "b", cwd=project).returncode == 0, "the next step after freeing space works"
    runs = runs_json(blase, project)
    assert [r["status"] for r in runs] == ["succeeded"] and _integrity(project) == "ok"


def test_after_kill_9_every_indexed_metric_is_in_the_run_folder(proj: Path, spawn) -> None:
    """Metrics reach events.jsonl before the index, so a kill -9 never leaves the index with values the run
    folder (and `runs reindex`) does not have."""
    import json
    import sqlite3

    proc = spawn("step", "stream", cwd=proj)
    db_path = proj / "runs" / "blase.db"

    def indexed() -> int:
        if not db_path.exists():
            return 0
        with sqlite3.connect(db_path) as db:
            try:
                return db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
            except sqlite3.OperationalError:
                return 0

    wait_for(lambda: indexed() >= 5000, timeout=60, what="5000 metrics in the index")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db_path) as db:
        in_index = {row[0] for row in db.execute("SELECT iteration FROM metrics")}
    events = next((proj / "runs").glob("*/stream/events.jsonl")).read_text().splitlines()
    in_events = {e["iteration"] for e in map(json.loads, (line for line in events if line.endswith("}")))
                 if e.get("type") == "metric"}
    assert in_index and in_index <= in_events
