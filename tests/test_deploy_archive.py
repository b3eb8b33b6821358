"""Deployment archives (issue 13): the same folder gives the same bytes, `blase deploy verify` catches a flipped
byte, and `blase deploy unpack` refuses crafted archives (`../` entries, absolute paths, links, devices) without
writing anything."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

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
    assert again.returncode == 2 and "is not empty" in again.stderr


def _crafted_zip(path: Path, name: str, *, link: bool = False) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("m/deployment.json", b"{}")
        info = zipfile.ZipInfo(name)
        info.create_system = 3
        if link:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
        else:
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, b"evil")
    return path


def _crafted_tar(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        ok = tarfile.TarInfo("m/deployment.json")
        ok.size = 2
        tf.addfile(ok, io.BytesIO(b"{}"))
        tf.addfile(member, io.BytesIO(data) if data else None)
    return path


def _tar_member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"evil", target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.linkname = target
    return info


@pytest.mark.parametrize(("make", "expected"), [
    (lambda p: _crafted_zip(p / "a.zip", "../../escaped.txt"), "would land outside the target folder"),
    (lambda p: _crafted_zip(p / "b.zip", "/tmp/absolute.txt"), "has an absolute path"),
    (lambda p: _crafted_zip(p / "c.zip", "m/passwd", link=True), "is a link"),
    (lambda p: _crafted_tar(p / "d.tar.gz", _tar_member("m/../../escaped.txt"), b"evil"), "would land outside"),
    (lambda p: _crafted_tar(p / "e.tar.gz", _tar_member("/tmp/absolute.txt"), b"evil"), "has an absolute path"),
    (lambda p: _crafted_tar(p / "f.tar.gz", _tar_member("m/link", tarfile.SYMTYPE, target="/etc/passwd")), "is a link"),
    (lambda p: _crafted_tar(p / "g.tar.gz", _tar_member("m/hard", tarfile.LNKTYPE, target="../../x")), "is a link"),
    (lambda p: _crafted_tar(p / "h.tar.gz", _tar_member("m/dev", tarfile.CHRTYPE)), "is a device"),
])
def test_unpack_refuses_crafted_archives_and_writes_nothing(tmp_path: Path, blase, make, expected: str) -> None:
    crafted = make(tmp_path)
    target = tmp_path / "sandbox" / "out"
    proc = blase("deploy", "unpack", str(crafted), str(target), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("blase: archive entry") and expected in lines[0]
    assert not target.exists(), "nothing is unpacked when one entry is refused"
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/absolute.txt").exists()


def test_an_archive_without_manifest_is_refused(tmp_path: Path, blase) -> None:
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("m/deployment.json", b"{}")
    proc = blase("deploy", "unpack", str(plain), str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2 and "does not match its manifest (no MANIFEST.sha256 inside" in proc.stderr
    assert not (tmp_path / "out").exists()
    proc = blase("deploy", "verify", str(tmp_path / "missing.zip"), cwd=tmp_path)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
