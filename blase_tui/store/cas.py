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

    # ------------------------------------------------------------- outputs kept by content
    def dataset_record(self, dataset_hash: str) -> Path:
        """Where the file list of output dataset ``dataset_hash`` is kept (``.blase/cas/datasets/``)."""
        return self.root / "datasets" / (dataset_hash.replace(":", "-") + ".json")

    def dataset_files(self, dataset_hash: str) -> dict | None:
        """The kept file list of a dataset (``{"kind", "files": [[name, sha256, size, executable]]}``), or None
        when its content was not kept (or an object of it is gone)."""
        import json

        record = self.dataset_record(dataset_hash)
        try:
            data = json.loads(record.read_text())
        except (OSError, ValueError):
            return None
        if data.get("hash") != dataset_hash or not all(self.has(f[1]) for f in data.get("files", [])):
            return None
        return data

    def keep_dataset(self, path: Path, dataset_hash: str, limit: int) -> str | None:
        """Keep the content of output dataset ``path`` (a file or a folder) under its hash, so ``runs restore``
        can put it back; returns why it was not kept (over ``limit`` bytes), or None. Files are copied into the
        store (never linked: the step's output stays the user's, writable); an unchanged output is kept once."""
        import json

        if self.dataset_files(dataset_hash) is not None:
            return None
        if path.is_file():
            files = [(path.name, path)]
        else:
            files = sorted((p.relative_to(path).as_posix(), p) for p in path.rglob("*")
                           if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
        total = sum(p.stat().st_size for _, p in files)
        if total > limit:
            return f"{total / 1024**3:.1f} GiB is over the {limit / 1024**3:.1f} GiB kept per output"
        listed = []
        for name, p in files:
            digest, size = self.put_file(p)
            listed.append([name, digest, size, bool(p.stat().st_mode & stat.S_IXUSR)])
        record = self.dataset_record(dataset_hash)
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_name(f".tmp-{os.getpid()}-{record.name}")
        tmp.write_text(json.dumps({"hash": dataset_hash, "kind": "file" if path.is_file() else "folder",
                                   "files": listed}))
        os.replace(tmp, record)
        return None

    def adopt_dataset(self, other: ContentStore, dataset_hash: str) -> bool:
        """Copy dataset ``dataset_hash``'s kept content from another content store (a reproduction's)."""
        kept = other.dataset_files(dataset_hash)
        if kept is None or self.dataset_files(dataset_hash) is not None:
            return kept is not None
        for _name, digest, _size, _executable in kept["files"]:
            if not self.has(digest):
                self.put_file(other.path_of(digest), digest=digest)
        record = self.dataset_record(dataset_hash)
        record.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(other.dataset_record(dataset_hash), record)
        return True
