"""The project's content-addressed store (``.blase/cas``): every artifact once, whatever the number of runs
that hold it. Run folders hold hard links to the objects (a copy where links are not possible), so a run folder
copied elsewhere still carries its artifacts."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from blase_tui.store.hashing import hash_bytes, hash_file

_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_EXEC = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH  # an artifact that was a program stays one (run.sh)


def artifact_name(name: str) -> str:
    """``name`` as a normalised relative path inside a run's ``artifacts/`` folder; an absolute path, a ``..``
    that climbs out, a control character or an empty name is refused (``safepath.UnsafePath``, so the step
    fails and nothing is written)."""
    from blase_tui.store.safepath import relative_name

    return relative_name(name, what="artifact name")


_INTACT: dict[tuple[str, int, int, int], bool] = {}  # objects checked by this process


class ContentStore:
    """Objects live at ``objects/ab/cdef...`` named by their sha256; they are read-only once written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"

    def path_of(self, digest: str) -> Path:
        """Where object ``digest`` lives; a digest that is not 64 hexadecimal digits (one read from a crafted
        run.json: ``../../x``) is refused before it can name a path."""
        from blase_tui.store.safepath import UnsafePath, is_digest, shown

        if not is_digest(digest):
            raise UnsafePath(f"content hash {shown(digest)} is not a sha256 (64 hexadecimal digits); the record that"
                             " holds it is damaged or was made to mislead.")
        return self.objects / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        from blase_tui.store.safepath import is_digest

        return is_digest(digest) and self.path_of(digest).is_file()

    def intact(self, digest: str) -> bool:
        """Whether object ``digest`` is there with the content it was stored under. A run folder's artifact is
        a hard link to its object (stored once, however many runs hold it), so an edit in place of one (after a
        chmod, or as root) changes them all: what reads an object to restore, reindex or serve it checks it
        first. Hashed once per process while its size and modification time stay the same."""
        if not self.has(digest):
            return False
        st = self.path_of(digest).stat()
        key = (digest, st.st_size, st.st_mtime_ns, st.st_ino)
        if key not in _INTACT:
            _INTACT[key] = hash_file(self.path_of(digest)) == digest
        return _INTACT[key]

    def put_file(self, source: Path, *, move: bool = False, digest: str | None = None) -> tuple[str, int]:
        """Add ``source``; returns ``(hash, size)``. With ``move`` the source file may be renamed into the store."""
        digest = digest or hash_file(source)
        info = source.stat()
        size = info.st_size
        target = self.path_of(digest)
        executable = bool(info.st_mode & stat.S_IXUSR)
        # read-only, and never more readable than the file it came from (a mode-600 secret stays the owner's)
        readable = info.st_mode & _READ_ONLY | stat.S_IRUSR
        if target.exists():
            mode = stat.S_IMODE(target.stat().st_mode)
            read = mode & readable
            wanted = read | ((mode | (_EXEC if executable else 0)) & (read >> 2))
            if wanted != mode:
                # the same bytes kept once more: from a narrower source (it narrows), or as a program (exec bit)
                os.chmod(target, wanted)
        else:
            self._mkdir(target.parent)
            import tempfile  # (only when an object is written: not on every command's start)

            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            os.close(fd)
            try:
                if move:
                    os.replace(source, tmp)
                else:
                    shutil.copyfile(source, tmp)
                os.chmod(tmp, readable | (_EXEC & (readable >> 2) if executable else 0))
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):  # a copy cut short (a full disk): no partial object is left
                    os.unlink(tmp)
        return digest, size

    def _mkdir(self, folder: Path) -> None:
        """A folder of the store, as readable as the project folder it is in (a shared project stays shared, a
        private one private)."""
        if folder.is_dir():
            return
        folder.mkdir(parents=True, exist_ok=True)
        try:
            project = self.root.parent.parent
            os.chmod(folder, stat.S_IMODE(project.stat().st_mode) | stat.S_IRWXU)
        except OSError:  # a store outside any project folder (a reproduction's): the umask's mode
            pass

    def put_bytes(self, data: bytes) -> str:
        digest = hash_bytes(data)
        target = self.path_of(digest)
        if not target.exists():
            self._mkdir(target.parent)
            import tempfile  # (only when an object is written: not on every command's start)

            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                # what blase writes itself (environments, patches) is as readable as the project folder
                os.chmod(tmp, stat.S_IMODE(self.root.parent.parent.stat().st_mode) & _READ_ONLY | stat.S_IRUSR)
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
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
        """Where the file list of output dataset ``dataset_hash`` is kept (``.blase/cas/datasets/``); a hash that
        is not ``form:`` and 64 hexadecimal digits is refused before it can name a path."""
        from blase_tui.store.safepath import UnsafePath, is_digest, shown

        form, _, digest = str(dataset_hash).partition(":")
        if not (form.isalnum() and form.isascii() and is_digest(digest)):
            raise UnsafePath(f"dataset hash {shown(dataset_hash)} is not a blase hash (xxh3: and 64 hexadecimal"
                             " digits); the record that holds it is damaged or was made to mislead.")
        return self.root / "datasets" / f"{form}-{digest}.json"

    def dataset_files(self, dataset_hash: str) -> dict | None:
        """The kept file list of a dataset (``{"kind", "files": [[name, sha256, size, executable]]}``), or None
        when its content was not kept (or an object of it is gone)."""
        import json

        from blase_tui.store.safepath import UnsafePath, relative_name

        try:
            record = self.dataset_record(dataset_hash)
            data = json.loads(record.read_text())
            if data.get("hash") != dataset_hash or not all(self.has(f[1]) for f in data.get("files", [])):
                return None
            for f in data.get("files", []):  # the names files are laid out under come from disk: checked
                relative_name(f[0], what=f"file name in the kept dataset {dataset_hash}")
        except (OSError, ValueError, TypeError, IndexError, AttributeError, UnsafePath):
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
