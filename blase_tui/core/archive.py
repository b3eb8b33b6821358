"""Deterministic archives of a folder (a deployment), their SHA-256 manifests, verification, and unpacking that
refuses what could write outside the target.

- **Same inputs, same bytes**: entries sorted by name, timestamps fixed (1980-01-01 for zip, 0 for tar and the
  gzip header), owners empty, modes normalised (``0644``, ``0755`` for programs), fixed compression level.
- **Manifest**: ``MANIFEST.sha256`` inside (``sha256sum`` format, one line per file) and ``ARCHIVE.sha256``
  beside it (the archive's own hash), so ``sha256sum -c`` works on both.
- **Verify and unpack check the same things**, because an archive comes from elsewhere: one top folder holding
  everything; every name relative, inside, printable (:mod:`blase_tui.store.safepath`) and there once; plain
  files and folders only (no symbolic or hard link, device, fifo); every file listed in the manifest under its
  full path and every listed file there with that content. Contents are hashed as they stream, never read
  whole, within a size limit and a compression-ratio limit, so a small archive that inflates to gigabytes (a
  zip bomb) is refused after a few megabytes.
- **Unpack** writes nothing until the whole archive passed, then writes into a fresh folder, hashing again as
  it writes (an archive changed in between is caught), and moves the result into place.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from blase_tui.errors import BlaseError, ConfigError
from blase_tui.store.hashing import hash_file
from blase_tui.store.safepath import UnsafePath, inside, relative_name, shown

MANIFEST = "MANIFEST.sha256"
FORMATS = {"zip": ".zip", "tar.gz": ".tar.gz"}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
CHUNK = 1 << 20
# Limits for what an archive may inflate to. A deployment's files compress about 1-4x (models are numbers, the
# rest is small text); deflate cannot exceed ~1030x, which only runs of one byte reach: a file more than 200x
# its compressed size (past the first MiB) is a zip bomb, not a model.
MAX_BYTES = 16 << 30  # everything in one archive, unpacked
MAX_RATIO = 200
RATIO_SLACK = 1 << 20  # small files compress well (a JSON of zeros): the ratio counts past this
MAX_ENTRIES = 10_000  # a deployment holds a few dozen files
MAX_KEPT = 4 << 20  # the manifest and the small files a caller asks to read (deployment.json)
MAX_TAR_HEADER = 1 << 20  # a long name or PAX header; tarfile reads one whole, so it is bounded first


class ArchiveError(ConfigError):
    """A crafted, damaged or unreadable archive (exit code 2: the input is at fault)."""


def _files(folder: Path, include: Iterable[str] | None = None) -> list[tuple[str, Path]]:
    """The regular files under ``folder`` by relative POSIX name, sorted: all of them, or those ``include``
    names; links are refused (an archive of a deployment holds files only)."""
    if include is None:
        candidates = [p for p in folder.rglob("*") if p.is_symlink() or p.is_file()]
    else:
        candidates = [inside(folder, rel, what=f"file listed for the archive of {folder}") for rel in include]
    out = []
    for path in candidates:
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            raise BlaseError(f"{path} is a link; an archive holds plain files only: replace it with the file.")
        if not path.is_file():
            raise BlaseError(f"{path} is listed for the archive but is not a file; deploy again.")
        if rel != MANIFEST:
            out.append((rel, path))
    return sorted(set(out))


def archive_path(folder: Path, fmt: str) -> Path:
    if fmt not in FORMATS:
        raise ConfigError(f"archive format must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    folder = folder.resolve()
    return folder.parent / f"{folder.name}{FORMATS[fmt]}"


def build(folder: Path, fmt: str = "zip", target: Path | None = None, include: Iterable[str] | None = None) -> Path:
    """Archive ``folder`` (its contents under the folder's name; only the files ``include`` names, when given) as
    ``target`` (default: beside it); writes the manifest inside and ``target.sha256`` beside it. Returns the
    archive's path. Files are streamed, never held whole."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"cannot archive {folder}: no such folder.")
    target = Path(target) if target is not None else archive_path(folder, fmt)
    files = _files(folder, include)
    manifest = "".join(f"{hash_file(path)}  {rel}\n" for rel, path in files).encode()
    entries: list[tuple[str, Path | bytes, int]] = [
        (rel, path, 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644) for rel, path in files]
    entries.append((MANIFEST, manifest, 0o644))
    entries.sort(key=lambda e: e[0])
    prefix = folder.resolve().name
    tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    try:
        if fmt == "zip":
            with zipfile.ZipFile(tmp, "w") as zf:
                for rel, source, mode in entries:
                    info = zipfile.ZipInfo(f"{prefix}/{rel}", date_time=_ZIP_TIME)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.create_system = 3  # unix, so the mode bits below are read back
                    info.external_attr = (stat.S_IFREG | mode) << 16
                    if isinstance(source, bytes):
                        zf.writestr(info, source, compresslevel=6)
                        continue
                    info.file_size = source.stat().st_size
                    info._compresslevel = 6  # what writestr(compresslevel=6) sets: the same bytes, streamed
                    with open(source, "rb") as src, zf.open(info, "w", force_zip64=info.file_size > (1 << 31)) as dst:
                        shutil.copyfileobj(src, dst, CHUNK)
        else:
            with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                                       compresslevel=6) as gz, \
                    tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf:
                for rel, source, mode in entries:
                    info = tarfile.TarInfo(f"{prefix}/{rel}")
                    info.mode, info.mtime = mode, 0
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    if isinstance(source, bytes):
                        import io

                        info.size = len(source)
                        tf.addfile(info, io.BytesIO(source))
                    else:
                        info.size = source.stat().st_size
                        with open(source, "rb") as src:
                            tf.addfile(info, src)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    Path(f"{target}.sha256").write_text(f"{hash_file(target)}  {target.name}\n")
    return target


# ------------------------------------------------------------------------------------------ reading entries
@dataclass
class Entry:
    """One entry of an archive as its header describes it (the content is read by the walk, streamed)."""

    name: str  # as written in the archive
    kind: str  # "file", "dir", "symlink", "hardlink", "device", "fifo", "other"
    mode: int
    size: int  # the size its header declares
    packed: int | None = None  # its compressed size (zip), for the ratio limit


class _Budget:
    """What the files of one archive may inflate to as they stream: ``MAX_BYTES`` in all, and ``MAX_RATIO``
    times its compressed size per zip entry (a tar.gz, whose entries share one compressed stream, is measured
    whole by ``_tar_prescan`` before tarfile reads it)."""

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self.total = 0
        size = archive.stat().st_size
        # in all, too: a zip's sizes are its own word, and many entries each inflating 200x add up
        self.limit = min(MAX_BYTES, max(MAX_RATIO * size, RATIO_SLACK))
        self.size = size

    def chunks(self, fh: IO[bytes], entry: Entry) -> Iterator[bytes]:
        limit = max(MAX_RATIO * entry.packed, RATIO_SLACK) if entry.packed is not None else None
        read = 0
        while chunk := fh.read(CHUNK):
            read += len(chunk)
            self.total += len(chunk)
            if limit is not None and read > limit:
                raise ArchiveError(f"archive entry {shown(entry.name)} inflates to more than {MAX_RATIO} times its"
                                   f" compressed size ({entry.packed} bytes): a zip bomb, not a deployment")
            if self.total > self.limit:
                raise ArchiveError(f"{self.archive.name} holds more than {MAX_BYTES >> 30} GiB once unpacked, more"
                                   " than blase unpacks" if self.total > MAX_BYTES else
                                   f"{self.archive.name} inflates to more than {MAX_RATIO} times its size"
                                   f" ({self.size} bytes): a zip bomb, not a deployment")
            yield chunk


def _zip_kind(info: zipfile.ZipInfo) -> tuple[str, int]:
    mode = info.external_attr >> 16 if info.create_system == 3 else 0
    if info.is_dir():
        return "dir", stat.S_IMODE(mode)
    fmt = stat.S_IFMT(mode)
    kind = {stat.S_IFLNK: "symlink", stat.S_IFCHR: "device", stat.S_IFBLK: "device", stat.S_IFIFO: "fifo",
            stat.S_IFSOCK: "other", stat.S_IFDIR: "dir"}.get(fmt, "file")
    return kind, stat.S_IMODE(mode)


def _tar_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.isdir():
        return "dir"
    if member.ischr() or member.isblk():
        return "device"
    if member.isfifo():
        return "fifo"
    if member.isfile() and not member.issparse():
        return "file"
    return "other"


_DAMAGED = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, OSError, EOFError, RuntimeError, zlib.error)


def _tar_prescan(path: Path) -> str:
    """Walk a tar's headers (inflating a tar.gz once, in chunks) before tarfile does: tarfile reads a long-name
    or PAX header whole into memory, and inflates whatever the stream holds. Refuses a header over
    ``MAX_TAR_HEADER``, and a stream past ``MAX_BYTES`` or ``MAX_RATIO`` times the archive's size. Returns the
    mode to open it with: gzip or plain tar, nothing else (no other decompressor runs unbounded)."""
    size = path.stat().st_size
    limit = min(MAX_BYTES, max(MAX_RATIO * size, RATIO_SLACK))
    with open(path, "rb") as raw:
        magic = raw.read(2)
    gzipped = magic == b"\x1f\x8b"
    total = 0
    with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as fh:
        first = fh.read(512)
        if first[257:262] != b"ustar":
            raise ArchiveError(f"{path} is neither a zip nor a tar.gz archive.")
        block = first
        while True:
            total += len(block)
            if len(block) < 512 or block == bytes(512):
                break  # the end (or damage, which tarfile names)
            try:
                length = tarfile.nti(block[124:136])
            except tarfile.TarError:
                break
            if block[156:157] in (b"x", b"g", b"L", b"K") and length > MAX_TAR_HEADER:
                raise ArchiveError(f"{path.name} has a header of {length} bytes, more than the {MAX_TAR_HEADER} blase"
                                   " reads: a crafted archive")
            left = -(-max(length, 0) // 512) * 512
            while left > 0:
                chunk = fh.read(min(left, CHUNK))
                if not chunk:
                    return "r:gz" if gzipped else "r:"
                left -= len(chunk)
                total += len(chunk)
                if total > limit:
                    raise ArchiveError(f"{path.name} inflates to more than {MAX_RATIO} times its size ({size} bytes):"
                                       " a compression bomb, not a deployment" if total <= MAX_BYTES else
                                       f"{path.name} holds more than {MAX_BYTES >> 30} GiB once unpacked, more than"
                                       " blase unpacks")
            block = fh.read(512)
    return "r:gz" if gzipped else "r:"


@contextmanager
def _opened(path: Path) -> Iterator[Iterator[tuple[Entry, IO[bytes] | None]]]:
    """The archive's entries, in order, each with a stream of its content (files only; valid until the next
    entry). One pass: a tar.gz is inflated once, front to back."""
    name = path.name
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                infos = zf.infolist()
                if len(infos) > MAX_ENTRIES:
                    raise ArchiveError(f"{name} holds {len(infos)} entries, more than the {MAX_ENTRIES} blase reads.")

                def walk_zip() -> Iterator[tuple[Entry, IO[bytes] | None]]:
                    for info in infos:
                        kind, mode = _zip_kind(info)
                        entry = Entry(info.filename, kind, mode, info.file_size, info.compress_size)
                        if kind != "file":
                            yield entry, None
                            continue
                        with zf.open(info) as fh:
                            yield entry, fh

                yield walk_zip()
                return
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(path, _tar_prescan(path)) as tf:

                def walk_tar() -> Iterator[tuple[Entry, IO[bytes] | None]]:
                    for count, member in enumerate(tf, start=1):
                        if count > MAX_ENTRIES:
                            raise ArchiveError(f"{name} holds more than the {MAX_ENTRIES} entries blase reads.")
                        entry = Entry(member.name, _tar_kind(member), member.mode, member.size)
                        yield entry, (tf.extractfile(member) if entry.kind == "file" else None)

                yield walk_tar()
                return
    except (*_DAMAGED, ValueError) as exc:
        raise ArchiveError(f"{path} is not a readable archive ({exc}); make it again with archive_deployment.") from None
    raise ArchiveError(f"{path} is neither a zip nor a tar.gz archive.")


_KIND_WORDS = {"symlink": "a symbolic link", "hardlink": "a hard link", "device": "a device file",
               "fifo": "a fifo", "other": "a special file (socket or sparse file)"}


def _entry_problem(entry: Entry, top: list[str]) -> tuple[str | None, str | None]:
    """``(relative name inside the top folder, None)`` for an entry that may be unpacked, or ``(None, why)``."""
    try:
        rel = relative_name(entry.name, what="archive entry")
    except UnsafePath as exc:
        return None, str(exc).rstrip(".")
    if entry.kind in _KIND_WORDS:
        return None, (f"archive entry {shown(entry.name)} is {_KIND_WORDS[entry.kind]}: a deployment holds plain"
                      " files only (a link or device can reach outside the folder it is unpacked into)")
    first, _, inner = rel.partition("/")
    if not inner and entry.kind == "file":
        return None, (f"archive entry {shown(entry.name)} is not inside a folder: a deployment archive holds one"
                      " top folder")
    if not top:
        top.append(first)
    if first != top[0]:
        return None, (f"archive entry {shown(entry.name)} is outside the archive's one top folder {top[0]!r}: a"
                      " deployment archive holds one folder")
    return inner, None


@dataclass
class Verified:
    archive: Path
    files: int
    problems: list[str]  # files whose content does not match the manifest, or that it does not list
    sidecar: bool = True  # whether ARCHIVE.sha256 lay beside it (the archive's own hash was checked)
    refused: list[str] = field(default_factory=list)  # entries unpack refuses whatever the manifest says
    top: str | None = None
    manifest: dict[str, str] = field(default_factory=dict)  # name inside the top folder -> sha256, as listed
    kept: dict[str, bytes] = field(default_factory=dict)  # the small files asked for, by name inside the top

    @property
    def ok(self) -> bool:
        return not self.problems and not self.refused

    @property
    def all_problems(self) -> list[str]:
        return [*self.refused, *self.problems]


def _parse_manifest(text: bytes, problems: list[str]) -> dict[str, str]:
    listed: dict[str, str] = {}
    for number, raw in enumerate(text.decode("utf-8", errors="replace").splitlines(), start=1):
        digest, sep, name = raw.partition("  ")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            problems.append(f"line {number} of {MANIFEST} is not 'SHA256  NAME': {shown(raw)}")
            continue
        try:
            rel = relative_name(name, what=f"the name on line {number} of {MANIFEST}")
        except UnsafePath as exc:
            problems.append(str(exc).rstrip("."))
            continue
        if rel in listed:
            problems.append(f"{rel}: listed twice in {MANIFEST}")
        listed[rel] = digest
    return listed


def verify(path: Path, keep: Iterable[str] = ()) -> Verified:
    """Check an archive against the manifest beside it (its own hash) and the one inside (every file, by its
    full path), and every entry as ``unpack`` checks it; ``keep``: names inside the top folder whose content
    (a few MiB at most) the caller wants back in ``Verified.kept``."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; verify takes an archive of a deployment (.zip or .tar.gz, made by"
                          " archive_deployment).")
    if not path.is_file():
        raise ConfigError(f"{path} does not exist.")
    keep = set(keep) | {MANIFEST}
    problems: list[str] = []
    refused: list[str] = []
    beside = Path(f"{path}.sha256")
    if beside.is_file():
        words = beside.read_text(errors="replace").split()
        expected = words[0] if words else ""
        actual = hash_file(path)
        if expected != actual:
            problems.append(f"{path.name}: its SHA-256 is {actual[:16]}…, not {expected[:16]}… as {beside.name} says")
    top: list[str] = []
    files: dict[str, str] = {}
    kept: dict[str, bytes] = {}
    unreadable: set[str] = set()
    budget = _Budget(path)
    try:
        with _opened(path) as entries:
            for entry, fh in entries:
                inner, why = _entry_problem(entry, top)
                if why is not None:
                    refused.append(why)
                    continue
                if entry.kind != "file" or fh is None:
                    continue
                assert inner is not None
                if inner in files or inner in unreadable:
                    refused.append(f"archive entry {shown(entry.name)} is there twice: which one would be unpacked"
                                   " is not what was checked")
                    continue
                digest = hashlib.sha256()
                held = bytearray() if inner in keep else None
                try:
                    for chunk in budget.chunks(fh, entry):
                        digest.update(chunk)
                        if held is not None and len(held) <= MAX_KEPT:
                            held += chunk
                except (*_DAMAGED, ValueError) as exc:
                    problems.append(f"{inner}: cannot be read, damaged ({exc})")
                    unreadable.add(inner)
                    continue
                files[inner] = digest.hexdigest()
                if held is not None and len(held) <= MAX_KEPT:
                    kept[inner] = bytes(held)
    except ArchiveError as exc:
        refused.append(str(exc).rstrip("."))
        return Verified(path, len(files), problems, sidecar=beside.is_file(), refused=refused,
                        top=top[0] if top else None)
    manifest_text = kept.pop(MANIFEST, None)
    listed: dict[str, str] = {}
    if manifest_text is None:
        if MANIFEST not in unreadable:
            problems.append(f"no {MANIFEST} inside{f' {top[0]}/' if top else ''}: not an archive made by"
                            " archive_deployment")
    else:
        listed = _parse_manifest(manifest_text, problems)
        files.pop(MANIFEST, None)
        for name, digest in sorted(listed.items()):
            if name in unreadable:
                continue  # said above: it is there, and damaged
            if name not in files:
                problems.append(f"{name}: listed in {MANIFEST} but not found in the archive"
                                + (" (it is damaged: what follows the damage cannot be read)" if problems else ""))
            elif files[name] != digest:
                problems.append(f"{name}: its content does not match {MANIFEST}")
        for name in sorted(set(files) - set(listed)):
            problems.append(f"{top[0]}/{name}: in the archive but not in {MANIFEST}")
    return Verified(path, len(files), problems, sidecar=beside.is_file(), refused=refused,
                    top=top[0] if top else None, manifest=listed, kept=kept)


def unpack(path: Path, target: Path) -> Path:
    """Unpack ``path`` into ``target`` (new, or a folder without the archive's top folder in it) after checking
    every entry (``verify``); returns the unpacked deployment folder (``target/<the archive's top folder>``).
    Nothing is written when anything is refused."""
    path, target = Path(path), Path(target)
    report = verify(path)
    if report.refused:
        raise ArchiveError(f"{report.refused[0]}; refused, nothing was unpacked.")
    if not report.ok:
        raise ArchiveError(f"{path.name} does not match its manifest ({report.problems[0]}); refused, nothing"
                           " was unpacked.")
    assert report.top is not None
    if (target / report.top).exists():  # the rest of the folder is left as it is: only this one is written
        raise ConfigError(f"{target / report.top} already exists; remove it, or unpack into another folder.")
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target))
    try:
        root = staging / report.top
        root.mkdir()
        budget = _Budget(path)
        written: set[str] = set()
        with _opened(path) as entries:
            for entry, fh in entries:
                if entry.kind != "file" or fh is None:
                    continue
                inner = relative_name(entry.name, what="archive entry").partition("/")[2]
                if inner in written or (inner != MANIFEST and inner not in report.manifest):
                    raise ArchiveError(f"{path.name} changed while it was unpacked ({shown(entry.name)}); refused,"
                                       " nothing was unpacked.")
                dest = inside(root, inner, what="archive entry")
                dest.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with open(dest, "xb") as out:  # "x": a fresh file, never through something already there
                    for chunk in budget.chunks(fh, entry):
                        digest.update(chunk)
                        out.write(chunk)
                os.chmod(dest, 0o755 if entry.mode & stat.S_IXUSR else 0o644)
                written.add(inner)
                if inner != MANIFEST and digest.hexdigest() != report.manifest[inner]:
                    raise ArchiveError(f"{path.name} changed while it was unpacked ({inner} no longer matches its"
                                       " manifest); refused, nothing was unpacked.")
        if written - {MANIFEST} != set(report.manifest):
            raise ArchiveError(f"{path.name} changed while it was unpacked; refused, nothing was unpacked.")
        os.replace(root, target / report.top)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / report.top
