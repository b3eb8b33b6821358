"""Security and integrity (issue 24): nothing a run folder says can reach outside the project, an artifact edited
in place is named wherever it is read, and artifacts are never more readable than the files they came from.

Each crafted input is checked against a decoy folder outside the project, hashed byte for byte and mode for mode
before and after."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import unicodedata
from pathlib import Path

import pytest
from conftest import make_project, runs_json, show_json
from hypothesis import given, settings
from hypothesis import strategies as st

from blase_tui.store.safepath import UnsafePath, inside, relative_name

STEPS = '''
from pathlib import Path

from blase_tui import step


@step
def make(ctx):
    """An artifact, and an output that is also an artifact."""
    (ctx.artifact_dir / "report.txt").write_text("the report")
    Path("data").mkdir(exist_ok=True)
    Path("data/out.txt").write_text("the output")
    ctx.log_dataset("data/out.txt", role="output")


@step
def secret(ctx):
    """Keeps a file only its owner may read."""
    Path("key.txt").write_text("s3cret")
    Path("key.txt").chmod(0o600)
    ctx.log_artifact("key.txt")
'''


def _snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder``: a file's content hash, mode and inode, a folder's mode, where a link points
    (so a folder or link made inside it shows, as well as a file changed)."""
    out: dict[str, tuple] = {}
    for path in sorted(folder.rglob("*")):
        st_ = path.lstat()
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path))
        elif path.is_file():
            out[rel] = (hashlib.sha256(path.read_bytes()).hexdigest(), stat.S_IMODE(st_.st_mode), st_.st_ino)
        else:
            out[rel] = ("folder", stat.S_IMODE(st_.st_mode))
    return out


@pytest.fixture
def world(tmp_path: Path, blase) -> tuple[Path, Path]:
    """A project with one run of `make`, and a decoy folder beside it."""
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "secret.txt").write_text("do not touch")
    (decoy / "secret.txt").chmod(0o600)
    (decoy / "restored.txt").write_text("mine")
    root = make_project(tmp_path / "proj", main_src=STEPS, toml='[project]\nname = "proj"\n')
    blase("step", "make", cwd=root, check=True)
    return root, decoy


def _imported_copy(root: Path, edit) -> str:
    """A copy of the project's run under a new id, its run.json changed by ``edit`` (as a colleague's would be),
    reindexed; returns the new id."""
    source = next(p for p in (root / "runs").iterdir() if (p / "run.json").is_file())
    desc = json.loads((source / "run.json").read_text())
    desc["id"] = desc["id"][:-6] + "zzzzzz"
    edit(desc)
    target = root / "runs" / desc["id"]
    shutil.copytree(source, target, copy_function=shutil.copy)
    (target / "run.json").write_text(json.dumps(desc))
    return desc["id"]


def test_reindex_follows_no_name_out_of_the_run(world, blase) -> None:
    root, decoy = world
    before = _snapshot(decoy)
    secret_hash = hashlib.sha256((decoy / "secret.txt").read_bytes()).hexdigest()

    def edit(desc: dict) -> None:
        arts = desc["steps"][0]["artifacts"]
        arts.append({"name": "../../../../decoy/secret.txt", "hash": secret_hash, "size": 12})
        arts.append({"name": "/etc/hostname", "hash": secret_hash, "size": 12})
        arts.append({"name": "fine.txt", "hash": "../../../../decoy/secret", "size": 12})
        arts.append({"name": "line\nbreak.txt", "hash": secret_hash, "size": 12})

    run_id = _imported_copy(root, edit)
    proc = blase("runs", "reindex", cwd=root)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    assert _snapshot(decoy) == before, "nothing outside the project changed"
    names = {a["name"] for a in show_json(blase, root, run_id)["steps"][0]["artifacts"]}
    assert names == {"report.txt"}, "only the genuine artifact was taken in"
    assert "climbs out with '..'" in proc.stdout + proc.stderr


def test_restore_writes_nothing_outside_the_project(world, blase) -> None:
    root, decoy = world
    import xxhash

    from blase_tui.store.hashing import hash_json

    before = _snapshot(decoy)
    report = (root / "runs").glob("*/make/artifacts/report.txt").__next__().read_bytes()
    crafted = "xxh3:" + hash_json([("restored.txt", xxhash.xxh3_128(report).hexdigest())])

    def edit(desc: dict) -> None:
        desc["steps"][0]["datasets"].append({"role": "output", "name": "../decoy/restored.txt",
                                             "path": "../decoy/restored.txt", "hash": crafted, "fingerprint": None,
                                             "records": None, "bytes": 10})

    run_id = _imported_copy(root, edit)
    blase("runs", "reindex", cwd=root, check=True)
    proc = blase("runs", "restore", run_id, "--force", cwd=root)
    assert proc.returncode == 1 and "refused" in proc.stdout and "climbs out with '..'" in proc.stdout, proc.stdout
    assert _snapshot(decoy) == before


def test_an_artifact_edited_in_place_is_named(world, blase) -> None:
    root, _ = world
    run_id = runs_json(blase, root)[0]["id"]
    copy = root / "runs" / run_id / "make" / "artifacts" / "report.txt"
    assert blase("verify", cwd=root).returncode == 0
    copy.chmod(0o644)
    with open(copy, "a") as fh:  # the store's own object: every run holding it changes
        fh.write(" changed")
    proc = blase("verify", cwd=root)
    assert proc.returncode == 1 and "no longer has the content it was stored under" in proc.stdout
    assert f"run {run_id} artifact report.txt" in proc.stdout
    restored = blase("runs", "restore", run_id, "--force", cwd=root)
    assert restored.returncode == 1 and "edited in place" in restored.stdout
    (root / "runs" / "blase.db").unlink()
    for extra in ("blase.db-wal", "blase.db-shm"):
        (root / "runs" / extra).unlink(missing_ok=True)
    rebuilt = blase("runs", "reindex", cwd=root)
    assert "report.txt: its content hashes to" in rebuilt.stdout + rebuilt.stderr, "reindex hashes even a link"


def test_an_artifact_is_never_more_readable_than_its_source(world, blase) -> None:
    root, _ = world
    blase("step", "secret", cwd=root, check=True)
    run_id = runs_json(blase, root)[0]["id"]
    kept = root / "runs" / run_id / "secret" / "artifacts" / "key.txt"
    assert stat.S_IMODE(kept.stat().st_mode) & 0o077 == 0, oct(kept.stat().st_mode)
    assert kept.read_text() == "s3cret"


def test_gc_now_frees_young_orphans_but_not_while_a_step_runs(world, blase) -> None:
    root, _ = world
    run_id = runs_json(blase, root)[0]["id"]
    blase("runs", "delete", run_id, "--yes", cwd=root, check=True)
    kept = blase("gc", cwd=root, check=True).stdout
    assert "unused but written in the last 1 h, kept for now" in kept
    freed = blase("gc", "--now", cwd=root, check=True).stdout
    assert "removed 0 object(s)" not in freed and "kept for now" not in freed
    assert not [p for p in (root / ".blase" / "cas" / "objects").rglob("*") if p.is_file()
                and "report" in p.read_bytes().decode(errors="ignore")]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_the_guard_keeps_every_name_inside_and_printable(tmp_path_factory, text: str) -> None:
    base = tmp_path_factory.getbasetemp() / "guard-base"
    base.mkdir(exist_ok=True)
    try:
        name = relative_name(text)
    except UnsafePath as exc:
        assert "\n" not in str(exc)  # the refusal is one line, whatever the name held
        return
    path = inside(base, name)
    assert os.path.normpath(path).startswith(str(base) + os.sep)
    assert not {unicodedata.category(ch) for ch in name} & {"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp"}, repr(name)


def test_the_guard_refuses_a_link_out(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "out").symlink_to(tmp_path)
    with pytest.raises(UnsafePath, match="leads out of"):
        inside(base, "out/x.txt")
    assert inside(base, "in/x.txt") == base / "in" / "x.txt"
