"""Reading a prepared split (the ``.npy`` shards that ``Prepare``/``Load`` write) for training: memory-mapped,
shuffled per epoch with a seed, in batches of a fixed number of records. Nothing is loaded into process memory
beyond the batch being built."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from blase_tui.errors import BlaseError
from blase_tui.modules.load import MANIFEST

INPUT_NAMES = ("image", "x", "features", "array", "audio")
TARGET_NAMES = ("label", "y", "target")


@dataclass(eq=False)
class SplitData:
    """One split: per column, a list of memory-mapped shard arrays; ``keys`` the record keys."""

    directory: Path
    columns: dict[str, list[np.ndarray]]
    keys: np.ndarray
    manifest_hash: str | None

    def __len__(self) -> int:
        return len(self.keys)

    @cached_property
    def offsets(self) -> np.ndarray:
        first = next(iter(self.columns.values()))
        return np.cumsum([0] + [len(a) for a in first])

    def input_column(self, name: str | None = None) -> str:
        return _pick(self, name, INPUT_NAMES, "input")

    def target_column(self, name: str | None = None) -> str | None:
        try:
            return _pick(self, name, TARGET_NAMES, "target")
        except BlaseError:
            if name:
                raise
            return None

    def gather(self, column: str, index: np.ndarray, which: np.ndarray | None = None) -> np.ndarray:
        """Records ``index`` (positions in the split) of ``column``, read from the memory maps in order.
        ``which`` (the shard of each position) can be passed in when several columns are read together."""
        shards = self.columns[column]
        if len(shards) == 1:
            return np.asarray(shards[0][index])
        offsets = self.offsets
        if which is None:
            which = np.searchsorted(offsets, index, side="right") - 1
        out = np.empty((len(index), *shards[0].shape[1:]), dtype=shards[0].dtype)
        for s in np.unique(which):
            mask = which == s
            out[mask] = shards[s][index[mask] - offsets[s]]
        return out

    def batches(self, batch_size: int, *, columns: list[str], shuffle: bool = False, seed: int = 0,
                epoch: int = 0) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """Yields ``(positions, {column: array})``. With ``shuffle`` the order is a permutation drawn from
        ``(seed, epoch)``: the same every time for the same epoch, different between epochs. Within a batch
        positions are sorted so reads from the memory map go forward."""
        n = len(self)
        order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
        offsets = self.offsets
        chosen = [(c, self.columns[c]) for c in columns]
        single = len(offsets) == 2
        for lo in range(0, n, batch_size):
            index = order[lo:lo + batch_size]
            if shuffle:
                index = np.sort(index)
            if single:
                yield index, {c: np.asarray(shards[0][index]) for c, shards in chosen}
                continue
            # which shard each record lives in, worked out once for all the columns of the batch
            which = np.searchsorted(offsets, index, side="right") - 1
            parts = [(s, mask, index[mask] - offsets[s]) for s in np.unique(which) for mask in [which == s]]
            batch = {}
            for c, shards in chosen:
                out = np.empty((len(index), *shards[0].shape[1:]), dtype=shards[0].dtype)
                for s, mask, local in parts:
                    out[mask] = shards[s][local]
                batch[c] = out
            yield index, batch


def _pick(split: SplitData, name: str | None, candidates: tuple[str, ...], what: str) -> str:
    if name:
        if name not in split.columns:
            raise BlaseError(f"{split.directory} has no column {name!r} (it has {', '.join(split.columns)}).")
        return name
    for c in candidates:
        if c in split.columns:
            return c
    raise BlaseError(
        f"cannot tell the {what} column of {split.directory} (columns: {', '.join(split.columns)});"
        f" name it with {what}_column=..."
    )


def open_split(directory: str | Path) -> SplitData:
    """Open ``directory`` (e.g. ``data/prepared/train``) written as npy shards."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BlaseError(f"{directory} does not exist; run the prepare step first (it writes the splits).")
    manifest_path = directory / MANIFEST
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") not in (None, "npy"):
            raise BlaseError(f"{directory} holds {manifest.get('format')} shards; training reads npy shards"
                             " (Prepare.convert(output_format=\"npy\")).")
        names = [f["name"] for s in manifest["shards"] for f in s.get("files", [])]
        digest = manifest.get("hash")
    else:
        names = sorted(p.name for p in directory.glob("part-*.npy"))
        digest = None
    columns: dict[str, list[np.ndarray]] = {}
    for name in sorted(names):
        parts = name.split(".")
        if len(parts) < 3 or parts[-1] != "npy":
            continue
        column = ".".join(parts[1:-1])
        columns.setdefault(column, []).append(np.load(directory / name, mmap_mode="r", allow_pickle=False))
    if not columns:
        raise BlaseError(f"no npy shards in {directory}; run the prepare step with output_format=\"npy\".")
    lengths = {c: sum(len(a) for a in arrays) for c, arrays in columns.items()}
    if len(set(lengths.values())) != 1:
        raise BlaseError(f"the shards of {directory} disagree on the record count ({lengths}); prepare them again.")
    keys = np.concatenate([np.asarray(a) for a in columns.pop("key")]) if "key" in columns else np.array(
        [f"{directory.name}:{i}" for i in range(next(iter(lengths.values())))])
    return SplitData(directory=directory, columns=columns, keys=keys, manifest_hash=digest)
