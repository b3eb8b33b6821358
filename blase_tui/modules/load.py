"""``Load``: write batches to disk as shards (``.npy``, Parquet) or image files, atomically, with a manifest.

Each file is written under a temporary name (``.tmp-...``, which readers ignore) and renamed when complete, so
a crash never leaves a half file that looks whole. ``_manifest.json`` lists only complete shards, with their
record counts and content hashes, and the whole dataset's hash; it is recorded as the step's output.

>>> loader = Load()
>>> for batch in extractor.load_images(directory="data/raw/images"):
...     loader.save_to_filesystem(batch, directory="data/interim/images", format="png")
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from blase_tui.errors import BlaseError
from blase_tui.modules import recording
from blase_tui.modules.batch import Batch

FORMATS = ("npy", "parquet", "png")
MANIFEST = "_manifest.json"  # "_" so pyarrow and other readers of the folder skip it
SHARD_LISTS = ".shards"


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
    def __init__(self, directory: Path, fmt: str) -> None:
        self.directory = directory
        self.format = fmt
        self.shards: list[dict[str, Any]] = []
        self.records = 0


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
        fmt = format or ("parquet" if data.is_table else "npy")
        if self.record:
            recording.params("save_to_filesystem", **{"save_to_filesystem.directory": directory,
                                                      "save_to_filesystem.format": fmt})
        if fmt not in FORMATS:
            raise BlaseError(f"format {fmt!r} is not one of {', '.join(FORMATS)}; pick one of those.")
        out = self._outputs.get(directory.resolve())
        if out is None:
            out = _Output(directory, fmt)
            self._clear(directory)
            self._outputs[directory.resolve()] = out
        elif out.format != fmt:
            raise BlaseError(f"{directory} already holds {out.format} shards from this step; write {fmt} elsewhere.")
        if len(data) == 0:
            return directory / MANIFEST
        shard = len(out.shards)
        files = getattr(self, f"_write_{fmt}")(data, directory, shard)
        from blase_tui.store.hashing import hash_json

        entry: dict[str, Any] = {"shard": shard, "records": len(data), "bytes": sum(f["bytes"] for f in files),
                                 "hash": hash_json([(f["name"], f["hash"]) for f in files])}
        if fmt == "png":
            # one file per record: list them beside the manifest, once, instead of in it (rewritten per shard)
            listing = directory / SHARD_LISTS / f"part-{shard:05d}.json"
            atomic_write(listing, lambda tmp: tmp.write_text(json.dumps(files), encoding="utf-8"))
            entry["file_list"] = listing.relative_to(directory).as_posix()
        else:
            entry["files"] = files
        out.shards.append(entry)
        out.records += len(data)
        manifest = self._write_manifest(out)
        if self.record:
            recording.dataset(directory, role="output", digest=manifest["hash"], records=out.records)
        return directory / MANIFEST

    # --------------------------------------------------------------- writers
    def _write_npy(self, batch: Batch, directory: Path, shard: int) -> list[dict[str, Any]]:
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
            path = directory / f"part-{shard:05d}.{name}.npy"
            atomic_write(path, lambda tmp, a=array: np.save(tmp, a, allow_pickle=False), durable=self.durable)
            files.append({"name": path.name, "column": name, "bytes": path.stat().st_size, "hash": _xxh(path),
                          "shape": list(array.shape), "dtype": str(array.dtype)})
        return files

    def _write_parquet(self, batch: Batch, directory: Path, shard: int) -> list[dict[str, Any]]:
        import pyarrow.parquet as pq

        table = batch.to_table()
        path = directory / f"part-{shard:05d}.parquet"
        # Keys are unique strings that share long prefixes ("file.parquet:123"): delta encoding writes them
        # faster and smaller than a dictionary that is bound to overflow.
        options = {"use_dictionary": [c for c in table.column_names if c != "key"],
                   "column_encoding": {"key": "DELTA_BYTE_ARRAY"}}
        atomic_write(path, lambda tmp: pq.write_table(table, tmp, **options), durable=self.durable)
        return [{"name": path.name, "bytes": path.stat().st_size, "hash": _xxh(path), "rows": table.num_rows}]

    def _write_png(self, batch: Batch, directory: Path, shard: int) -> list[dict[str, Any]]:
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
    def _write_manifest(self, out: _Output) -> dict[str, Any]:
        from blase_tui.store.hashing import hash_json

        digest = "xxh3:" + hash_json([s["hash"] for s in out.shards])
        manifest = {"format": out.format, "records": out.records, "shards": out.shards, "hash": digest,
                    "written": time.time()}
        atomic_write(out.directory / MANIFEST,
                     lambda tmp: tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8"), durable=self.durable)
        return manifest

    @staticmethod
    def _clear(directory: Path) -> None:
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
