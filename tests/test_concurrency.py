"""Four processes write to one store at the same time: nothing is lost, nothing reports a locked database."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import _env, wait_for

WRITER = """
import sys, time
from pathlib import Path
from blase_tui import Track

project, name = sys.argv[1], sys.argv[2]
Path(project, f"ready-{name}").write_text("")
while not Path(project, "go").exists():
    time.sleep(0.005)
track = Track(project=project)
track.start_run(name=name)
for i in range(1000):
    track.log_metric("value", i, iteration=i)
    if i % 100 == 0:
        track.log_param(f"p{i}", i)      # interleave single-row write transactions
        track.set_tag("progress", i)
        track._run().flush()             # and force many small metric batches too
track.end_run()
print("done", track.run_id)
"""


def test_four_writers_lose_nothing(project: Path) -> None:
    script = project / "writer.py"
    script.write_text(WRITER)
    procs = [
        subprocess.Popen([sys.executable, str(script), str(project), f"w{i}"], env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    wait_for(lambda: all((project / f"ready-w{i}").exists() for i in range(4)), what="writers to be ready")
    (project / "go").write_text("")
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err.lower()
        assert out.startswith("done")
    db = sqlite3.connect(project / "runs" / "blase.db")
    per_run = db.execute(
        "SELECT r.name, count(m.rowid), count(DISTINCT m.iteration), sum(m.value) FROM runs r"
        " JOIN metrics m ON m.run_id = r.id GROUP BY r.id ORDER BY r.name"
    ).fetchall()
    assert per_run == [(f"w{i}", 1000, 1000, sum(range(1000))) for i in range(4)]
    assert db.execute("SELECT count(*) FROM params").fetchone()[0] == 40
    assert db.execute("SELECT DISTINCT status FROM runs").fetchall() == [("succeeded",)]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
