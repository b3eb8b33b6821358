"""``Load``: write batches to disk as shards (``.npy``, Parquet) or image files, atomically, with a manifest.

Each file is written under a temporary name (``.tmp-...``, which readers ignore) and renamed when complete, so
a crash never leaves a half file that looks whole. ``_manifest.json`` lists only complete shards, with their
record counts and content hashes, and the whole dataset's hash; it is recorded as the step's output.

>>> loader = Load()
>>> for batch in extractor.load_images(directory="data/raw/images"):
...     loader.save_to_filesystem(batch, directory="data/interim/images", format="png")
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from blase_tui.errors import BlaseError
from blase_tui.modules import recording
from blase_tui.modules.batch import Batch
from blase_tui.modules.partitions import DeferredBatch, drain

FORMATS = ("npy", "parquet", "png")
MANIFEST = "_manifest.json"  # "_" so pyarrow and other readers of the folder skip it
SHARD_LISTS = ".shards"
PARTIAL = ".partial-"  # a shard a worker wrote, before the step's process renames it into place


def _xxh(path: Path) -> str:
    from blase_tui.store.filehash import file_hash

    return file_hash(path)


def atomic_write(path: Path, write: Any, *, durable: bool = False) -> None:
    """Call ``write(tmp_path)`` and rename the result to ``path`` once it is complete. The rename is what keeps
    a killed process from leaving a half file under the real name; ``durable`` also flushes the file to the disk
    first (fsync), against power loss, at a cost in throughput."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        write(tmp)
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class _Output:
    def __init__(self, directory: Path, fmt: str | None) -> None:
        self.directory = directory
        self.format = fmt
        self.shards: list[dict[str, Any]] = []
        self.records = 0
        self.pending = 0  # batches sent to an executor's workers and not written here yet
        self.files: dict[str, str] = {}  # every data file written here: name -> xxh3 (the dataset's hash)
        self.foreign: bool | None = None  # the folder holds files this Load did not write (checked once)
        self.finishing = False  # its hash and record are left to the end of the step (png: a file per record)


class Load:
    """Writes batches to folders. The first write to a folder in this ``Load`` replaces what an earlier
    ``Load`` wrote there (the files its manifest lists); later writes add shards. ``durable=True`` flushes every
    file to the disk before it is renamed (survives power loss, not only a crashed process; slower)."""

    def __init__(self, durable: bool = False, *, record: bool = True) -> None:
        self._outputs: dict[Path, _Output] = {}
        self.durable = durable
        self.record = record  # False for blase's own caches: they are not outputs of the step

    def save_to_filesystem(self, data: Batch, directory: str | Path, format: str | None = None) -> Path:  # noqa: A002
        """Write one batch as the next shard of ``directory``; returns the manifest path. ``format``: ``npy``
        (one file per column, the default for arrays), ``parquet`` (the default for tables) or ``png`` (the
        ``image`` column, one file per record at its key's relative path)."""
        if not isinstance(data, Batch):
            raise TypeError(f"save_to_filesystem takes a Batch, not a {type(data).__name__}")
        directory = Path(directory)
        deferred = isinstance(data, DeferredBatch) and data.pending
        # a deferred batch's data is known where it is read: without a format, the worker picks it as here
        fmt = format or (None if deferred else ("parquet" if data.is_table else "npy"))
        if fmt is not None and fmt not in FORMATS:
            raise BlaseError(f"format {fmt!r} is not one of {', '.join(FORMATS)}; pick one of those.")
        out = self._outputs.get(directory.resolve())
        if out is None:
            out = _Output(directory, fmt)
            self._clear(directory)
            self._outputs[directory.resolve()] = out
        self._check_format(out, fmt)
        if deferred:
            # under an executor: a worker reads, transforms and writes this batch; its shards join in order
            out.pending += 1
            data.send(functools.partial(write_shard, fmt, str(directory), self.durable),
                      functools.partial(self._merge, out))
            return directory / MANIFEST
        if out.pending:  # batches sent to workers before this one take their shards first
            drain()
        if len(data) == 0:
            return directory / MANIFEST
        shard = len(out.shards)
        files = getattr(self, f"_write_{fmt}")(data, directory, f"part-{shard:05d}")
        self._add_shard(out, files, len(data))
        self._written(out)
        return directory / MANIFEST

    def _check_format(self, out: _Output, fmt: str | None) -> None:
        if fmt is None:
            return
        if out.format is None:
            out.format = fmt
        elif out.format != fmt:
            raise BlaseError(f"{out.directory} already holds {out.format} shards from this step; write {fmt} elsewhere.")
        if self.record:
            recording.params("save_to_filesystem", **{"save_to_filesystem.directory": out.directory,
                                                      "save_to_filesystem.format": fmt})

    def _add_shard(self, out: _Output, files: list[dict[str, Any]], records: int) -> None:
        from blase_tui.store.hashing import hash_json

        shard = len(out.shards)
        entry: dict[str, Any] = {"shard": shard, "records": records, "bytes": sum(f["bytes"] for f in files),
                                 "hash": hash_json([(f["name"], f["hash"]) for f in files])}
        if out.format == "png":
            # one file per record: list them beside the manifest, once, instead of in it (rewritten per shard)
            listing = out.directory / SHARD_LISTS / f"part-{shard:05d}.json"
            atomic_write(listing, lambda tmp: tmp.write_text(json.dumps(files), encoding="utf-8"))
            entry["file_list"] = listing.relative_to(out.directory).as_posix()
        else:
            entry["files"] = files
        out.shards.append(entry)
        out.records += records
        out.files.update((f["name"], f["hash"]) for f in files)
        recording.remember_files(out.directory, files)

    def _dataset_hash(self, out: _Output) -> str:
        """The folder's hash as every reader computes it (``filehash.dataset_hash``), from the files written here
        without listing or reading the folder again, unless it holds files of its own (then it is hashed)."""
        from blase_tui.store.filehash import dataset_files, dataset_hash, is_data_file, pairs_hash

        if out.foreign is None:
            root = out.directory.resolve()
            out.foreign = any(Path(os.path.relpath(f.resolve(), root)).as_posix() not in out.files
                              for f in dataset_files(out.directory))
        if out.foreign:
            return dataset_hash(recording.store(), out.directory)
        return pairs_hash((n, h) for n, h in out.files.items() if is_data_file(n))

    def _written(self, out: _Output) -> None:
        if out.format == "png" and not out.finishing:
            # a file per record: hashing and recording the folder after every shard would grow with the square of
            # the records, so inside a step that is done once, as it ends (the manifest says no hash until then)
            out.finishing = recording.at_end(lambda: self._finish(out))
        if out.finishing:
            self._write_manifest(out, digest=False)
        else:
            self._finish(out)

    def _finish(self, out: _Output) -> None:
        manifest = self._write_manifest(out)
        if self.record:
            recording.dataset(out.directory, role="output", digest=manifest["hash"], records=out.records)

    def _merge(self, out: _Output, pieces: list[dict[str, Any]]) -> None:
        """A worker's shards of one batch (``write_shard``), renamed into place as the next shards, in order."""
        out.pending -= 1
        for piece in pieces:
            self._check_format(out, piece.get("format"))
            files = piece.get("files")
            if not piece["records"] or not files:
                continue
            stem = f"part-{len(out.shards):05d}"
            if out.format != "png":
                for f in files:
                    final = stem + f["name"][len(piece["stem"]):]
                    os.replace(out.directory / f["name"], out.directory / final)
                    f["name"] = final
            self._add_shard(out, files, piece["records"])
        self._written(out)

    # --------------------------------------------------------------- writers
    def _write_npy(self, batch: Batch, directory: Path, stem: str) -> list[dict[str, Any]]:
        files = []
        columns = {name: batch.column(name) for name in batch.columns}
        columns["key"] = np.asarray(batch.keys)
        for name, values in columns.items():
            array = np.asarray(values)
            if array.dtype == object:
                raise BlaseError(
                    f"column `{name}` holds records of different shapes; .npy needs one shape: resize them"
                    " (e.g. load_images(size=...)) or save as parquet."
                )
            path = directory / f"{stem}.{name}.npy"
            atomic_write(path, lambda tmp, a=array: np.save(tmp, a, allow_pickle=False), durable=self.durable)
            files.append({"name": path.name, "column": name, "bytes": path.stat().st_size, "hash": _xxh(path),
                          "shape": list(array.shape), "dtype": str(array.dtype)})
        return files

    def _write_parquet(self, batch: Batch, directory: Path, stem: str) -> list[dict[str, Any]]:
        import pyarrow.parquet as pq

        table = batch.to_table()
        path = directory / f"{stem}.parquet"
        # Keys are unique strings that share long prefixes ("file.parquet:123"): delta encoding writes them
        # faster and smaller than a dictionary that is bound to overflow. Floating-point columns rarely repeat
        # a value either: trying a dictionary on them cost 4x the whole write, for a file no smaller.
        import pyarrow as pa

        options = {"use_dictionary": [f.name for f in table.schema
                                      if f.name != "key" and not pa.types.is_floating(f.type)],
                   "column_encoding": {"key": "DELTA_BYTE_ARRAY"}}
        atomic_write(path, lambda tmp: pq.write_table(table, tmp, **options), durable=self.durable)
        return [{"name": path.name, "bytes": path.stat().st_size, "hash": _xxh(path), "rows": table.num_rows}]

    def _write_png(self, batch: Batch, directory: Path, stem: str) -> list[dict[str, Any]]:
        from PIL import Image

        if "image" not in batch.columns:
            raise BlaseError("format='png' writes the `image` column, and this batch has none.")
        files = []
        images = batch.column("image")
        for key, image in zip(batch.keys, images, strict=True):
            rel = Path(key).with_suffix(".png")
            if rel.is_absolute() or ".." in rel.parts:
                raise BlaseError(f"record key {key!r} is not a relative path; save as npy or parquet instead.")
            path = directory / rel
            array = np.asarray(image)
            if array.dtype != np.uint8:
                array = np.clip(array, 0, 255).astype(np.uint8)
            atomic_write(path, lambda tmp, a=array: Image.fromarray(a).save(tmp, format="PNG"), durable=self.durable)
            files.append({"name": rel.as_posix(), "bytes": path.stat().st_size, "hash": _xxh(path)})
        return files

    # -------------------------------------------------------------- manifest
    def _write_manifest(self, out: _Output, *, digest: bool = True) -> dict[str, Any]:
        digest = self._dataset_hash(out) if digest else None
        manifest = {"format": out.format, "records": out.records, "shards": out.shards, "hash": digest,
                    "written": time.time()}
        atomic_write(out.directory / MANIFEST,
                     lambda tmp: tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8"), durable=self.durable)
        return manifest

    @staticmethod
    def _clear(directory: Path) -> None:
        for leftover in directory.glob(f"{PARTIAL}*") if directory.is_dir() else ():
            leftover.unlink()  # a worker's shard that never joined the manifest (a step that failed)
        manifest = directory / MANIFEST
        if not manifest.is_file():
            return
        try:
            old = json.loads(manifest.read_text())
        except ValueError:
            return
        for shard in old.get("shards", []):
            files = shard.get("files")
            if files is None and shard.get("file_list"):
                listing = directory / shard["file_list"]
                files = json.loads(listing.read_text()) if listing.is_file() else []
                if listing.is_file():
                    listing.unlink()
            for f in files or []:
                path = directory / f["name"]
                if path.is_file():
                    path.unlink()
        manifest.unlink()


def read_manifest(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise BlaseError(f"{path} does not exist; write the dataset with Load.save_to_filesystem first.")
    return json.loads(path.read_text())


def write_shard(fmt: str | None, directory: str, durable: bool, batch: Batch, stem: str) -> dict[str, Any]:
    """Write ``batch`` as files named ``stem...`` in ``directory`` (on an executor's worker: ``Load._merge`` then
    renames them into place); returns the format and the files' entries for the manifest."""
    fmt = fmt or ("parquet" if batch.is_table else "npy")
    return {"format": fmt, "stem": stem,
            "files": getattr(Load(durable, record=False), f"_write_{fmt}")(batch, Path(directory), stem)}
