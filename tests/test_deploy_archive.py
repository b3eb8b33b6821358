"""Deployment archives (issues 13 and 24): the same folder gives the same bytes; `blase deploy verify` catches a
flipped byte and checks every entry as `blase deploy unpack` does; both refuse crafted archives (another top
folder, a duplicate, a file the manifest does not list, links, devices, fifos, `..`, absolute names, control
characters, zip bombs) in little memory, without writing anything, and a decoy folder outside stays byte-for-byte
and mode-for-mode as it was; `archive_deployment` leaves out the prediction log and files the deployment did
not write."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import pytest
from conftest import _env

from blase_tui.core import archive


def _deployment(root: Path) -> Path:
    folder = root / "deployments" / "m"
    (folder / "model").mkdir(parents=True)
    (folder / "deployment.json").write_text('{"format": 1}\n')
    (folder / "model" / "m.pkl").write_bytes(bytes(range(256)) * 40)
    run = folder / "run.sh"
    run.write_text("#!/bin/sh\necho serve\n")
    run.chmod(0o755)
    return folder


# ------------------------------------------------------------------------------------------ the decoy folder
@pytest.fixture
def decoy(tmp_path: Path):
    """A folder outside everything the archives are unpacked into, with files of several modes; the fixture
    asserts afterwards that nothing in it changed (content, mode, kind) and nothing was added."""
    folder = tmp_path / "decoy"
    (folder / "sub").mkdir(parents=True)
    for name, data, mode in (("secret.txt", b"secret\n", 0o600), ("run.sh", b"#!/bin/sh\n", 0o755),
                             ("sub/data.bin", bytes(range(256)), 0o644)):
        (folder / name).write_bytes(data)
        (folder / name).chmod(mode)
    before = _snapshot(folder)
    yield folder
    assert _snapshot(folder) == before, "the decoy folder outside changed"


def _snapshot(folder: Path) -> dict[str, tuple]:
    out: dict[str, tuple] = {".": (stat.S_IMODE(folder.lstat().st_mode),)}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        content = (hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else
                   os.readlink(path) if stat.S_ISLNK(st.st_mode) else None)
        out[path.relative_to(folder).as_posix()] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), content,
                                                    st.st_ino)
    return out


# ------------------------------------------------------------------------------------------ honest archives
@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_the_same_folder_gives_the_same_bytes(tmp_path: Path, fmt: str) -> None:
    folder = _deployment(tmp_path)
    first = archive.build(folder, fmt).read_bytes()
    # the same content written again, later, with other times and umask: the archive does not change
    for path in folder.rglob("*"):
        os.utime(path, (1_900_000_000, 1_900_000_000))
    (folder / "model" / "m.pkl").chmod(0o600)
    second = archive.build(folder, fmt).read_bytes()
    assert first == second
    (folder / "model" / "m.pkl").write_bytes(b"other")
    assert archive.build(folder, fmt).read_bytes() != first, "different content, different bytes"


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_verify_catches_a_flipped_byte(tmp_path: Path, blase, fmt: str) -> None:
    folder = _deployment(tmp_path)
    path = archive.build(folder, fmt)
    ok = blase("deploy", "verify", str(path), cwd=tmp_path)
    assert ok.returncode == 0 and "3 files match its manifest" in ok.stdout
    beside = Path(f"{path}.sha256").read_text().split()
    assert beside[1] == path.name and len(beside[0]) == 64
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    bad = blase("deploy", "verify", str(path), cwd=tmp_path)
    assert bad.returncode == 1 and f"{path.name}: its SHA-256 is" in bad.stdout
    # a damaged file is said to be damaged, not said to be missing from the archive
    assert all("not found in the archive" not in line or "it is damaged" in line for line in bad.stdout.splitlines())
    Path(f"{path}.sha256").unlink()
    alone = blase("deploy", "verify", str(path), cwd=tmp_path)
    assert alone.returncode == 1 and "sha256" not in alone.stdout.split("bad", 1)[0]
    rebuilt = archive.build(folder, fmt)
    Path(f"{rebuilt}.sha256").unlink()
    unsigned = blase("deploy", "verify", str(rebuilt), cwd=tmp_path)
    assert unsigned.returncode == 0 and "the archive's own hash was not checked" in unsigned.stdout
    folder_given = blase("deploy", "verify", str(folder), cwd=tmp_path)
    assert folder_given.returncode == 2 and "is a folder; verify takes an archive" in folder_given.stderr


def test_unpack_restores_files_and_modes(tmp_path: Path, blase) -> None:
    folder = _deployment(tmp_path)
    path = archive.build(folder, "zip")
    proc = blase("deploy", "unpack", str(path), str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    unpacked = tmp_path / "out" / "m"
    assert (unpacked / "model" / "m.pkl").read_bytes() == (folder / "model" / "m.pkl").read_bytes()
    assert (unpacked / "run.sh").stat().st_mode & stat.S_IXUSR
    assert (unpacked / archive.MANIFEST).is_file()
    again = blase("deploy", "unpack", str(path), str(tmp_path / "out"), cwd=tmp_path)
    assert again.returncode == 2 and "already exists; remove it" in again.stderr


# ----------------------------------------------------------------------------------------- crafted archives
EVIL = b"import os; os.system('echo owned')\n"


def _honest_entries(root: Path, top: str = "m") -> list[tuple[str, str, bytes | str]]:
    """The entries archive.build writes for ``_deployment``: files and the manifest, under ``top``."""
    folder = _deployment(root)
    files = sorted((p.relative_to(folder).as_posix(), p.read_bytes()) for p in folder.rglob("*") if p.is_file())
    manifest = "".join(f"{hashlib.sha256(data).hexdigest()}  {rel}\n" for rel, data in files).encode()
    return [(f"{top}/{rel}", "file", data) for rel, data in [*files, (archive.MANIFEST, manifest)]]


_ZIP_TYPES = {"file": stat.S_IFREG, "symlink": stat.S_IFLNK, "fifo": stat.S_IFIFO, "chr": stat.S_IFCHR,
              "blk": stat.S_IFBLK, "dir": stat.S_IFDIR}
_TAR_TYPES = {"file": tarfile.REGTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
              "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "dir": tarfile.DIRTYPE}


def _write(path: Path, entries: list[tuple[str, str, bytes | str]]) -> Path:
    """An archive of exactly ``entries`` (name, kind, content or link target), as an attacker would write it."""
    if path.name.endswith(".zip"):
        with warnings.catch_warnings(), zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            warnings.simplefilter("ignore")  # "Duplicate name": the point of one case
            for name, kind, data in entries:
                info = zipfile.ZipInfo(name)
                info.create_system = 3
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (_ZIP_TYPES[kind] | 0o644) << 16
                zf.writestr(info, data)
        return path
    with tarfile.open(path, "w:gz") as tf:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            info.type = _TAR_TYPES[kind]
            info.mode = 0o644
            if kind == "file":
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))  # type: ignore[arg-type]
            else:
                info.linkname = data if isinstance(data, str) else ""
                tf.addfile(info)
    return path


def _other_top(entries, decoy):  # the case: evil under diag/, the honest file again under zzz/
    out = [(name.replace("m/", "diag/", 1), kind, EVIL if name == "m/model/m.pkl" else data)
           for name, kind, data in entries]
    honest = next(data for name, _, data in entries if name == "m/model/m.pkl")
    return [*out, ("zzz/model/m.pkl", "file", honest)]


CASES = {
    "another top folder": (_other_top, "outside the archive's one top folder 'diag'"),
    "the same name twice": (lambda e, d: [*e, ("m/model/m.pkl", "file", EVIL)], "is there twice"),
    "a file the manifest does not list": (lambda e, d: [*e, ("m/extra.sh", "file", EVIL)],
                                          "m/extra.sh: in the archive but not in MANIFEST.sha256"),
    "a symbolic link": (lambda e, d: [*e, ("m/model/link", "symlink", str(d / "secret.txt"))], "is a symbolic link"),
    "a hard link": (lambda e, d: [*e, ("m/hard", "hardlink", "../../decoy/secret.txt")], "is a hard link"),
    "a fifo": (lambda e, d: [*e, ("m/fifo", "fifo", b"")], "is a fifo"),
    "a character device": (lambda e, d: [*e, ("m/dev", "chr", b"")], "is a device file"),
    "a block device": (lambda e, d: [*e, ("m/disk", "blk", b"")], "is a device file"),
    "..": (lambda e, d: [*e, ("m/../../decoy/secret.txt", "file", EVIL)], "climbs out with '..'"),
    "an absolute name": (lambda e, d: [*e, (str(d / "secret.txt"), "file", EVIL)], "is an absolute path"),
    "a control character": (lambda e, d: [*e, ("m/model/m.pkl\nok   m/model/m.pkl", "file", EVIL)],
                            "control character U+000A"),
    "no top folder": (lambda e, d: [*e, ("loose.sh", "file", EVIL)], "is not inside a folder"),
}


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
@pytest.mark.parametrize("case", list(CASES))
def test_verify_and_unpack_refuse_a_crafted_archive(tmp_path: Path, decoy: Path, case: str, fmt: str) -> None:
    make, words = CASES[case]
    if fmt == "zip" and case == "a hard link":
        pytest.skip("zip has no hard links")
    crafted = _write(tmp_path / f"crafted.{fmt}", make(_honest_entries(tmp_path / "src"), decoy))
    report = archive.verify(crafted)
    assert not report.ok, f"verify said ok to {case}"
    assert any(words in p for p in report.all_problems), report.all_problems
    target = tmp_path / "sandbox" / "out"
    with pytest.raises(archive.ArchiveError) as refused:
        archive.unpack(crafted, target)
    assert "refused, nothing was unpacked" in str(refused.value) and "\n" not in str(refused.value)
    assert not target.exists() or not any(target.rglob("*")), "nothing is written when one entry is refused"
    assert not (tmp_path / "escaped.txt").exists()


def test_the_cli_names_what_is_wrong_in_one_line_each(tmp_path: Path, decoy: Path, blase) -> None:
    crafted = _write(tmp_path / "crafted.zip", _other_top(_honest_entries(tmp_path / "src"), decoy)
                     + [("diag/../../decoy/secret.txt", "file", EVIL)])
    proc = blase("deploy", "verify", str(crafted), cwd=tmp_path)
    assert proc.returncode == 1 and "ok " not in proc.stdout
    lines = proc.stdout.strip().splitlines()
    assert all(line.startswith("bad  ") for line in lines)
    assert any("'zzz/model/m.pkl' is outside the archive's one top folder 'diag'" in line for line in lines)
    assert any("'diag/../../decoy/secret.txt' cannot be used: it climbs out with '..'" in line for line in lines)
    assert any("model/m.pkl: its content does not match MANIFEST.sha256" in line for line in lines)
    proc = blase("deploy", "unpack", str(crafted), str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("blase: archive entry") and "refused, nothing was unpacked" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_an_archive_without_manifest_is_refused(tmp_path: Path, blase) -> None:
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("m/deployment.json", b"{}")
    proc = blase("deploy", "unpack", str(plain), str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2 and "does not match its manifest (no MANIFEST.sha256 inside" in proc.stderr
    assert not (tmp_path / "out").exists()
    proc = blase("deploy", "verify", str(tmp_path / "missing.zip"), cwd=tmp_path)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    not_an_archive = tmp_path / "notes.zip"
    not_an_archive.write_text("hello")
    proc = blase("deploy", "verify", str(not_an_archive), cwd=tmp_path)
    assert proc.returncode == 1 and "neither a zip nor a tar.gz" in proc.stdout


# ------------------------------------------------------------------------------------------------ zip bombs
class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


BOMB = 200 << 20


def _bomb(path: Path) -> Path:
    """An otherwise honest archive whose model is 200 MiB of zeros (about 200 KB compressed), its manifest
    listing the right hash."""
    digest = hashlib.sha256()
    for _ in range(BOMB >> 20):
        digest.update(bytes(1 << 20))
    manifest = f"{digest.hexdigest()}  model/m.pkl\n".encode()
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("m/MANIFEST.sha256", manifest)
            info = zipfile.ZipInfo("m/model/m.pkl")
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as fh:
                for _ in range(BOMB >> 20):
                    fh.write(bytes(1 << 20))
        return path
    with tarfile.open(path, "w:gz", compresslevel=1) as tf:
        info = tarfile.TarInfo("m/MANIFEST.sha256")
        info.size = len(manifest)
        tf.addfile(info, io.BytesIO(manifest))
        info = tarfile.TarInfo("m/model/m.pkl")
        info.size = BOMB
        tf.addfile(info, io.BufferedReader(_Zeros(BOMB)))
    return path


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_a_zip_bomb_is_refused_in_little_memory(tmp_path: Path, decoy: Path, fmt: str) -> None:
    bomb = _bomb(tmp_path / f"bomb.{fmt}")
    assert bomb.stat().st_size < 2 << 20, "a small archive..."
    target = tmp_path / "out"
    tracemalloc.start()
    try:
        report = archive.verify(bomb)
        with pytest.raises(archive.ArchiveError, match="bomb"):
            archive.unpack(bomb, target)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not report.ok and "bomb" in report.refused[0], report.all_problems
    assert peak < 24 << 20, f"...read in {peak >> 20} MiB, not the member's {BOMB >> 20} MiB"
    assert not target.exists() or not any(target.rglob("*"))


# -------------------------------------------------------------------------------- what archive_deployment takes
def test_archive_deployment_leaves_out_the_prediction_log_and_foreign_files(tmp_path: Path) -> None:
    folder = tmp_path / "deployments" / "tab"
    (folder / "model").mkdir(parents=True)
    written = {"model/tab.skops": b"model", "model/card.json": b"{}", "signature.json": b"{}", "api.py": b"app"}
    for rel, data in written.items():
        (folder / rel).write_bytes(data)
    (folder / "deployment.json").write_text(json.dumps({"format": 1, "model": {"name": "tab"},
                                                        "files": sorted([*written, "deployment.json"])}))
    logged = folder / "predictions" / "tab" / "2026-11-30"
    logged.mkdir(parents=True)
    for i in range(3):
        (logged / f"{i}.parquet").write_bytes(b"patient measurements")
    (folder / "notes.txt").write_text("mine")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "api.cpython-311.pyc").write_bytes(b"\0")
    proc = subprocess.run([sys.executable, "-c", "from blase_tui import Deploy\n"
                           "print(Deploy().archive_deployment('deployments/tab', format='tar.gz'))"],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("blase:")]
    assert len(lines) == 1 and "left out __pycache__/ (1 file), predictions/ (3 files: the prediction log)," \
        " notes.txt (not written by the deployment)" in lines[0], proc.stderr
    made = Path(proc.stdout.strip())
    with tarfile.open(made) as tf:
        names = sorted(tf.getnames())
    assert names == sorted(f"tab/{rel}" for rel in [*written, "deployment.json", archive.MANIFEST])
    assert archive.verify(made).ok
