"""The project's content-addressed store (``.blase/cas``): every artifact once, whatever the number of runs
that hold it. Run folders hold hard links to the objects (a copy where links are not possible), so a run folder
copied elsewhere still carries its artifacts."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from blase_tui.store.hashing import hash_bytes, hash_file

_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_EXEC = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH  # an artifact that was a program stays one (run.sh)


def artifact_name(name: str) -> str:
    """``name`` as a normalised relative path inside a run's ``artifacts/`` folder; an absolute path, a ``..``
    that climbs out, or an empty name is refused (a ``BlaseError``, so the step fails and nothing is written)."""
    from blase_tui.errors import BlaseError

    text = str(name).replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not text.strip() or text.startswith("/") or (len(text) > 1 and text[1] == ":") or ".." in parts or not parts:
        raise BlaseError(f"artifact name {name!r} must be a relative path inside the run, without '..' or a"
                         " leading '/' (e.g. name=\"reports/summary.txt\").")
    return "/".join(parts)


class ContentStore:
    """Objects live at ``objects/ab/cdef...`` named by their sha256; they are read-only once written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"

    def path_of(self, digest: str) -> Path:
        return self.objects / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path_of(digest).is_file()

    def put_file(self, source: Path, *, move: bool = False, digest: str | None = None) -> tuple[str, int]:
        """Add ``source``; returns ``(hash, size)``. With ``move`` the source file may be renamed into the store."""
        digest = digest or hash_file(source)
        info = source.stat()
        size = info.st_size
        target = self.path_of(digest)
        executable = bool(info.st_mode & stat.S_IXUSR)
        if target.exists():
            if executable and not target.stat().st_mode & stat.S_IXUSR:
                # the same bytes kept once more as a program: the object keeps its exec bit from now on
                os.chmod(target, _READ_ONLY | _EXEC)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            os.close(fd)
            try:
                if move:
                    os.replace(source, tmp)
                else:
                    shutil.copyfile(source, tmp)
                os.chmod(tmp, _READ_ONLY | (_EXEC if executable else 0))
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return digest, size

    def put_bytes(self, data: bytes) -> str:
        digest = hash_bytes(data)
        target = self.path_of(digest)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            os.replace(tmp, target)
        return digest

    def read_bytes(self, digest: str) -> bytes:
        return self.path_of(digest).read_bytes()

    def link_into(self, digest: str, dest: Path) -> None:
        """Make ``dest`` hold object ``digest``: a hard link when the filesystem allows, else a copy."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        src = self.path_of(digest)
        if dest.exists() or dest.is_symlink():
            if dest.is_file() and os.path.samefile(src, dest):
                return
            dest.unlink()
        try:
            os.link(src, dest)
        except OSError:
            shutil.copyfile(src, dest)

    def ingest_tree(self, folder: Path) -> tuple[list[tuple[str, str, int]], list[str]]:
        """Move every file under ``folder`` into the store and link it back; returns ``(name, hash, size)`` of
        each, and the names of links to folders, which are left out. A link to a file is replaced by a copy
        of its content: the file it pointed to is never moved or made read-only."""
        found, skipped = [], []
        for top, dirs, names in os.walk(folder):
            here = Path(top)
            for d in list(dirs):
                if (here / d).is_symlink():
                    skipped.append((here / d).relative_to(folder).as_posix())
                    dirs.remove(d)
            for file in sorted(names):
                path = here / file
                if file.startswith(".tmp-") or not path.is_file():
                    continue
                name = path.relative_to(folder).as_posix()
                link = path.is_symlink()
                digest, size = hash_file(path), path.stat().st_size
                target = self.path_of(digest)
                if link or not (target.exists() and os.path.samefile(target, path)):
                    self.put_file(path, move=not link, digest=digest)
                    self.link_into(digest, path)
                found.append((name, digest, size))
        return sorted(found), sorted(skipped)
