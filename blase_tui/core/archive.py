"""Deterministic archives of a folder (a deployment), their SHA-256 manifests, verification, and unpacking that
refuses what could write outside the target.

- **Same inputs, same bytes**: entries sorted by name, timestamps fixed (1980-01-01 for zip, 0 for tar and the
  gzip header), owners empty, modes normalised (``0644``, ``0755`` for programs), fixed compression level.
- **Manifest**: ``MANIFEST.sha256`` inside (``sha256sum`` format, one line per file) and ``ARCHIVE.sha256``
  beside it (the archive's own hash), so ``sha256sum -c`` works on both.
- **Unpack** checks every entry before writing anything: an absolute path, a ``..`` that climbs out, a link, a
  device or fifo is refused with one line naming the entry; so is an entry whose content does not match the
  manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from blase_tui.errors import BlaseError, ConfigError

MANIFEST = "MANIFEST.sha256"
FORMATS = {"zip": ".zip", "tar.gz": ".tar.gz"}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class ArchiveError(ConfigError):
    """A crafted, damaged or unreadable archive (exit code 2: the input is at fault)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _files(folder: Path) -> list[tuple[str, Path]]:
    """Every regular file under ``folder`` by its relative POSIX name, sorted; links are refused (an archive of
    a deployment holds files only)."""
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            raise BlaseError(f"{path} is a link; an archive holds plain files only: replace it with the file.")
        if path.is_file() and rel != MANIFEST:
            out.append((rel, path))
    return sorted(out)


def archive_path(folder: Path, fmt: str) -> Path:
    if fmt not in FORMATS:
        raise ConfigError(f"archive format must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    folder = folder.resolve()
    return folder.parent / f"{folder.name}{FORMATS[fmt]}"


def build(folder: Path, fmt: str = "zip", target: Path | None = None) -> Path:
    """Archive ``folder`` (its contents under the folder's name) as ``target`` (default: beside it); writes the
    manifest inside and ``target.sha256`` beside it. Returns the archive's path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"cannot archive {folder}: no such folder.")
    target = Path(target) if target is not None else archive_path(folder, fmt)
    files = _files(folder)
    entries: list[tuple[str, bytes, int]] = []
    lines = []
    for rel, path in files:
        data = path.read_bytes()
        mode = 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644
        entries.append((rel, data, mode))
        lines.append(f"{_sha256(data)}  {rel}\n")
    manifest = "".join(lines).encode()
    entries.append((MANIFEST, manifest, 0o644))
    entries.sort(key=lambda e: e[0])
    prefix = folder.resolve().name
    tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    try:
        if fmt == "zip":
            with zipfile.ZipFile(tmp, "w") as zf:
                for rel, data, mode in entries:
                    info = zipfile.ZipInfo(f"{prefix}/{rel}", date_time=_ZIP_TIME)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.create_system = 3  # unix, so the mode bits below are read back
                    info.external_attr = (stat.S_IFREG | mode) << 16
                    zf.writestr(info, data, compresslevel=6)
        else:
            with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                                       compresslevel=6) as gz, \
                    tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf:
                for rel, data, mode in entries:
                    info = tarfile.TarInfo(f"{prefix}/{rel}")
                    info.size, info.mode, info.mtime = len(data), mode, 0
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    tf.addfile(info, io.BytesIO(data))
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    Path(f"{target}.sha256").write_text(f"{_sha256_file(target)}  {target.name}\n")
    return target


# ------------------------------------------------------------------------------------------ reading entries
@dataclass
class Entry:
    name: str
    kind: str  # "file", "dir", "link", "device", "other"
    mode: int
    read: object = field(repr=False, default=None)  # () -> bytes


def _entries(path: Path) -> list[Entry]:
    name = path.name
    try:
        if zipfile.is_zipfile(path):
            zf = zipfile.ZipFile(path)
            out = []
            for info in zf.infolist():
                mode = info.external_attr >> 16
                kind = "dir" if info.is_dir() else "link" if stat.S_ISLNK(mode) else (
                    "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) else "file")
                out.append(Entry(info.filename, kind, stat.S_IMODE(mode), (lambda i=info: zf.read(i))))
            return out
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            tf = tarfile.open(path)
            out = []
            for member in tf.getmembers():
                kind = ("dir" if member.isdir() else "link" if member.issym() or member.islnk() else
                        "file" if member.isfile() else "device" if member.isdev() else "other")
                out.append(Entry(member.name, kind, member.mode,
                                 (lambda m=member: tf.extractfile(m).read())))  # type: ignore[union-attr]
            return out
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError(f"{path} is not a readable archive ({exc}); make it again with archive_deployment.") from None
    raise ArchiveError(f"{path} is neither a zip nor a tar.gz archive.")


def _check_name(name: str) -> PurePosixPath:
    """The entry's path relative to the target, or an ``ArchiveError`` naming it."""
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise ArchiveError(f"archive entry {name!r} has an absolute path; refused, nothing was unpacked.")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"archive entry {name!r} would land outside the target folder; refused, nothing was"
                           " unpacked.")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


@dataclass
class Verified:
    archive: Path
    files: int
    problems: list[str]
    sidecar: bool = True  # whether ARCHIVE.sha256 lay beside it (the archive's own hash was checked)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(path: Path) -> Verified:
    """Check an archive against the manifest beside it (its own hash) and the one inside (every file)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; verify takes an archive of a deployment (.zip or .tar.gz, made by"
                          " archive_deployment).")
    if not path.is_file():
        raise ConfigError(f"{path} does not exist.")
    problems = []
    unreadable: set[str] = set()
    beside = Path(f"{path}.sha256")
    if beside.is_file():
        expected = beside.read_text().split()[0] if beside.read_text().split() else ""
        actual = _sha256_file(path)
        if expected != actual:
            problems.append(f"{path.name}: its SHA-256 is {actual[:16]}…, not {expected[:16]}… as {beside.name} says")
    try:
        entries = _entries(path)
        files = {}
        manifest_text = None
        for e in entries:
            if e.kind != "file":
                continue
            rel = _check_name(e.name)
            inner = PurePosixPath(*rel.parts[1:]).as_posix() if len(rel.parts) > 1 else rel.as_posix()
            try:
                data = e.read()  # type: ignore[operator]
            except (zipfile.BadZipFile, OSError, EOFError, tarfile.TarError, ValueError) as exc:
                problems.append(f"{e.name}: cannot be read, damaged ({exc})")
                unreadable.add(inner)
                continue
            if inner == MANIFEST:
                manifest_text = data.decode(errors="replace")
            else:
                files[inner] = _sha256(data)
    except ArchiveError as exc:
        return Verified(path, 0, [*problems, str(exc)])
    if manifest_text is None:
        problems.append(f"no {MANIFEST} inside: not an archive made by archive_deployment")
    else:
        listed = {}
        for line in manifest_text.splitlines():
            digest, _, name = line.partition("  ")
            listed[name] = digest
        for name, digest in sorted(listed.items()):
            if name in unreadable:
                continue  # said above: it is there, and damaged
            if name not in files:
                problems.append(f"{name}: listed in {MANIFEST} but not found in the archive"
                                + (" (it is damaged: what follows the damage cannot be read)" if problems else ""))
            elif files[name] != digest:
                problems.append(f"{name}: its content does not match {MANIFEST}")
        for name in sorted(set(files) - set(listed)):
            problems.append(f"{name}: in the archive but not in {MANIFEST}")
    return Verified(path, len(files), problems, sidecar=beside.is_file())


def unpack(path: Path, target: Path) -> Path:
    """Unpack ``path`` into ``target`` after checking every entry; returns the unpacked deployment folder (the
    archive's single top folder, or ``target``). Nothing is written when any entry is refused."""
    path, target = Path(path), Path(target)
    entries = _entries(path)
    checked: list[tuple[PurePosixPath, Entry]] = []
    for e in entries:
        rel = _check_name(e.name)
        if e.kind == "link":
            raise ArchiveError(f"archive entry {e.name!r} is a link; refused (a link can point outside the target),"
                               " nothing was unpacked.")
        if e.kind in ("device", "other"):
            raise ArchiveError(f"archive entry {e.name!r} is a device or special file; refused, nothing was unpacked.")
        if e.kind == "file" and rel != PurePosixPath("."):
            checked.append((rel, e))
    report = verify(path)
    if not report.ok:
        raise ArchiveError(f"{path.name} does not match its manifest ({report.problems[0]}); refused, nothing"
                           " was unpacked.")
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target} is not empty; unpack into a new or empty folder.")
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target))
    try:
        for rel, e in checked:
            dest = staging.joinpath(*rel.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(e.read())  # type: ignore[operator]
            os.chmod(dest, 0o755 if e.mode & stat.S_IXUSR else 0o644)
        for child in staging.iterdir():
            os.replace(child, target / child.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    tops = {rel.parts[0] for rel, _ in checked if len(rel.parts) > 1}
    return target / tops.pop() if len(tops) == 1 and not any(len(r.parts) == 1 for r, _ in checked) else target
