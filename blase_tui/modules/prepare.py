"""``Prepare``: join sources by key, drop excluded keys, split deterministically, cut rolling windows, and write
training-ready shards per split with bounded memory.

>>> prepare = Prepare()
>>> prepare.register_source("features", extractor.load_images(directory="data/raw/images"))
>>> prepare.register_source("targets", extractor.load_csv("data/raw/labels.csv", key_column="path"))
>>> prepare.load_exclusion_keys("cleaned_v1")
>>> prepare.set_split(train=0.7, val=0.2, test=0.1, seed=42)
>>> prepare.convert(output_format="npy", output_dir="data/prepared/")
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from blase_tui.errors import BlaseError
from blase_tui.modules import recording
from blase_tui.modules.batch import Batch, BatchMeta
from blase_tui.modules.budget import JOIN_SHARE, resolve_budget, share_of
from blase_tui.modules.load import MANIFEST, Load, atomic_write

SPLITS = ("train", "val", "test")
FORMATS = ("npy", "parquet", "tfrecord")
NORMALIZATION = "_normalization.json"


def split_of(key: str, seed: int, fractions: tuple[float, float, float]) -> str:
    """The split of one key: a hash of (seed, key) mapped to [0, 1). Depends on nothing else, so a record
    keeps its split when the dataset grows."""
    u = int.from_bytes(hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=8).digest(), "big") / 2**64
    train, val, _ = fractions
    return "train" if u < train else "val" if u < train + val else "test"


class _Moments:
    """Running mean and std per feature (Chan's merge), for the training split's normalisation stats."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def update(self, values: np.ndarray) -> None:
        x = np.asarray(values, dtype=np.float64)
        if x.ndim == 0 or len(x) == 0:
            return
        if x.ndim == 1:
            flat = x.reshape(-1, 1)  # a scalar column
        elif x.ndim == 2 and x.shape[1] <= 256:
            flat = x  # a feature vector: one statistic per feature
        elif x.shape[-1] <= 4:
            flat = x.reshape(-1, x.shape[-1])  # images (n, h, w, c): one statistic per channel
        else:
            flat = x.reshape(-1, 1)  # anything else: one overall statistic
        b_n = flat.shape[0]
        b_mean = np.nanmean(flat, axis=0)
        b_m2 = np.nansum((flat - b_mean) ** 2, axis=0)
        if self.mean is None:
            self.n, self.mean, self.m2 = b_n, b_mean, b_m2
            return
        delta = b_mean - self.mean
        total = self.n + b_n
        self.mean = self.mean + delta * b_n / total
        self.m2 = self.m2 + b_m2 + delta**2 * self.n * b_n / total
        self.n = total

    def as_dict(self) -> dict[str, Any]:
        if self.mean is None:
            return {"count": 0}
        std = np.sqrt(self.m2 / max(self.n, 1))
        return {"count": int(self.n), "mean": self.mean.tolist(), "std": std.tolist()}


class Prepare:
    """Turns one or more keyed sources into train/val/test shards."""

    def __init__(self, memory_budget: int | str | None = None) -> None:
        self.memory_budget = resolve_budget(memory_budget)
        self._sources: list[tuple[str, Iterable[Batch], list[str] | None]] = []
        self._excluded: dict[str, str] = {}
        self._exclusion_sets: list[str] = []
        self._fractions: tuple[float, float, float] = (0.7, 0.2, 0.1)
        self._seed = 0
        self._stratify: str | None = None
        self._group: str | None = None
        self._windows: dict[str, Any] | None = None
        self.report: dict[str, Any] = {}

    # --------------------------------------------------------------- setup
    def register_source(self, name: str, batches: Iterable[Batch], columns: list[str] | None = None) -> None:
        """Add a source of batches. The first source drives the stream; later ones are joined to it by record
        key (their new columns are added; records missing from any source are dropped and counted)."""
        if any(n == name for n, _, _ in self._sources):
            raise BlaseError(f"a source named {name!r} is already registered; give each source its own name.")
        self._sources.append((name, batches, columns))

    def load_exclusion_keys(self, name: str) -> int:
        """Drop the keys of exclusion set ``name`` (``cleaned_v1``, or ``cleaned`` for the newest version)."""
        recording.params("load_exclusion_keys", exclusion_keys=name)
        keys = recording.load_exclusions(name)
        self._excluded.update(keys)
        self._exclusion_sets.append(name)
        return len(keys)

    def set_split(self, train: float = 0.7, val: float = 0.2, test: float = 0.1, seed: int = 0,
                  stratify: str | None = None, group: str | None = None) -> None:
        """Fractions of records per split, assigned per key by hash (or per ``group`` value, so that all the
        records of a patient or an object land in one split). ``stratify`` names the label column whose
        per-class split counts are reported (hash assignment keeps class proportions in expectation)."""
        fractions = (float(train), float(val), float(test))
        if any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
            raise BlaseError(f"split fractions must be >= 0 and add up to 1, not {train} + {val} + {test}.")
        recording.params("set_split", train=train, val=val, test=test, seed=seed,
                         **{k: v for k, v in (("stratify", stratify), ("group", group)) if v is not None})
        self._fractions, self._seed, self._stratify, self._group = fractions, int(seed), stratify, group

    def set_windows(self, window: int, horizon: int = 1, stride: int = 1, *, features: list[str] | None = None,
                    target: str | None = None, order_by: str | None = None, total: int | None = None) -> None:
        """Cut the (time-ordered) stream into rolling windows of ``window`` records, every ``stride`` records,
        with the target ``horizon`` records after each window's last one. Windows are split in time order
        (the first ``train`` share of windows, then val, then test) so that no future leaks into training; that
        needs the number of records (``total``) when the reader does not know it up front."""
        if window < 1 or horizon < 0 or stride < 1:
            raise BlaseError("window and stride must be >= 1 and horizon >= 0.")
        self._windows = {"window": int(window), "horizon": int(horizon), "stride": int(stride),
                         "features": features, "target": target, "order_by": order_by, "total": total}

    # -------------------------------------------------------------- joining
    def _secondary(self, primary_columns: set[str]) -> list[tuple[str, set[str], dict[str, dict[str, Any]]]]:
        """Read the joined sources: their key sets, and the values of the columns the primary lacks."""
        joined = []
        budget_left = share_of(self.memory_budget, JOIN_SHARE)  # held whole while the first source streams
        for name, batches, columns in self._sources[1:]:
            keys: set[str] = set()
            values: dict[str, dict[str, Any]] = {}
            for batch in batches:
                keys.update(batch.keys)
                extra = [c for c in (columns or batch.columns) if c != "key" and c not in primary_columns]
                for c in extra:
                    col = batch.column(c)
                    values.setdefault(c, {}).update(zip(batch.keys, col, strict=True))
                budget_left -= batch.nbytes if extra else 0
                if budget_left < 0:
                    raise BlaseError(
                        f"source {name!r} does not fit in half the memory budget; register the biggest source"
                        " first (it is streamed) or pass columns=[...] to keep only what you need from this one."
                    )
            joined.append((name, keys, values))
        return joined

    # ------------------------------------------------------------- convert
    def convert(self, output_format: str = "npy", output_dir: str | Path = "data/prepared") -> dict[str, Any]:
        """Stream the sources into ``output_dir/{train,val,test}`` shards (npy, parquet or tfrecord), write
        ``_manifest.json`` (split counts, hashes, missing keys) and ``_normalization.json`` (training-split
        mean and std per numeric column), and record them as the step's outputs."""
        if output_format not in FORMATS:
            raise BlaseError(f"output_format {output_format!r} is not one of {', '.join(FORMATS)}.")
        if not self._sources:
            raise BlaseError("no sources: call register_source(name, batches) before convert().")
        recording.params("convert", output_format=output_format, output_dir=output_dir,
                         sources=[n for n, _, _ in self._sources])
        out = Path(output_dir)
        _, primary_source, _ = self._sources[0]
        primary_iter = iter(primary_source)
        first = next(primary_iter, None)  # its columns tell which columns the other sources add
        secondary = self._secondary(set(first.columns) if first is not None else set())
        primary = itertools.chain([first], primary_iter) if first is not None else iter(())
        writers: dict[str, Any] = {}
        loader = Load()
        counts = dict.fromkeys(SPLITS, 0)
        per_class: dict[str, dict[str, int]] = {}
        excluded = 0
        missing: dict[str, list[str]] = {name: [] for name, _, _ in secondary}
        missing_count = dict.fromkeys(missing, 0)
        norm: dict[str, _Moments] = {}
        windows = _Windower(self._windows, self._fractions) if self._windows else None
        bar = recording.progress(f"prepare {out}", total=None)

        def write(split: str, batch: Batch) -> None:
            if len(batch) == 0:
                return
            counts[split] += len(batch)
            if split == "train":
                for c in batch.columns:
                    values = batch.column(c)
                    if c != "key" and isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
                        norm.setdefault(c, _Moments()).update(values)
            if self._stratify and self._stratify in batch.columns:
                for v in batch.column(self._stratify):
                    per_class.setdefault(str(v), dict.fromkeys(SPLITS, 0))[split] += 1
            if output_format == "tfrecord":
                from blase_tui.modules.tfrecord import TFRecordWriter

                if split not in writers:
                    writers[split] = TFRecordWriter(out / split / "data.tfrecord")
                writers[split].write_batch(batch)
            else:
                with recording.internal():
                    loader.save_to_filesystem(batch, out / split, format=output_format)

        for batch in primary:
            bar.update(len(batch))
            keep = np.ones(len(batch), dtype=bool)
            for i, k in enumerate(batch.keys):
                if k in self._excluded:
                    keep[i] = False
                    excluded += 1
            for name, keys, _ in secondary:
                for i, k in enumerate(batch.keys):
                    if keep[i] and k not in keys:
                        keep[i] = False
                        missing_count[name] += 1
                        if len(missing[name]) < 20:
                            missing[name].append(k)
            if not keep.all():
                batch = batch.select(keep)
            if secondary and len(batch):
                batch = _add_columns(batch, secondary)
            if windows is not None:
                for split, wbatch in windows.feed(batch):
                    write(split, wbatch)
                continue
            if len(batch) == 0:
                continue
            group_values = batch.column(self._group) if self._group else batch.keys
            splits = np.array([split_of(str(g), self._seed, self._fractions) for g in group_values])
            for split in SPLITS:
                mask = splits == split
                if mask.any():
                    write(split, batch.select(mask))
        bar.close()
        for w in writers.values():
            w.close()

        out.mkdir(parents=True, exist_ok=True)
        normalization = {c: m.as_dict() for c, m in norm.items()}
        atomic_write(out / NORMALIZATION, lambda tmp: tmp.write_text(json.dumps(normalization, indent=1)))
        split_hashes = {}
        for split in SPLITS:
            path = out / split
            manifest = path / MANIFEST
            if manifest.is_file():
                split_hashes[split] = json.loads(manifest.read_text()).get("hash")
        report = {
            "format": output_format, "sources": [n for n, _, _ in self._sources], "counts": counts,
            "fractions": dict(zip(SPLITS, self._fractions, strict=True)), "seed": self._seed,
            "group": self._group, "excluded": excluded, "exclusion_sets": self._exclusion_sets,
            "missing_keys": {n: {"count": missing_count[n], "examples": missing[n]} for n in missing},
            "per_class": per_class, "windows": self._windows, "split_hashes": split_hashes,
        }
        from blase_tui.store.filehash import dataset_hash

        # the folder's hash as any reader of it computes it (the splits' files are in the store's cache)
        report["hash"] = dataset_hash(recording.store(), out)
        atomic_write(out / MANIFEST, lambda tmp: tmp.write_text(json.dumps(report, indent=1)))
        self.report = report
        if recording.active():
            recording.dataset(out, role="output", digest=report["hash"], records=sum(counts.values()))
            recording.metrics({f"{s}_records": float(n) for s, n in counts.items()})
            recording.metrics({f"missing_in_{name}": float(n) for name, n in missing_count.items() if n})
        recording.log("prepared %s records (train %d, val %d, test %d); %d excluded%s",
                      sum(counts.values()), counts["train"], counts["val"], counts["test"], excluded,
                      "".join(f"; {n} missing in {k}" for k, n in missing_count.items() if n))
        return report


def _add_columns(batch: Batch, secondary: list[tuple[str, set[str], dict[str, dict[str, Any]]]]) -> Batch:
    new: dict[str, list[Any]] = {}
    present = set(batch.columns)
    for _, _, values in secondary:
        for column, mapping in values.items():
            if column in present or column in new:
                continue
            new[column] = [mapping[k] for k in batch.keys]
    if not new:
        return batch
    if batch.is_table:
        import pyarrow as pa

        table = batch.data
        for c, v in new.items():
            table = table.append_column(c, pa.array(v))
        return batch.with_data(table, step="join")
    data = dict(batch.data)
    for c, v in new.items():
        data[c] = np.asarray(v)
    return batch.with_data(data, step="join")


class _Windower:
    """Rolling windows over a stream of batches, carrying the last records across batch boundaries."""

    def __init__(self, spec: dict[str, Any], fractions: tuple[float, float, float]) -> None:
        self.spec = spec
        self.fractions = fractions
        self.buffer_keys: list[str] = []
        self.buffer_x: np.ndarray | None = None
        self.buffer_y: np.ndarray | None = None
        self.buffer_t: np.ndarray | None = None
        self.position = 0  # absolute index of buffer[0] in the stream
        self.next_start = 0  # absolute index of the next window's first record
        self.total: int | None = spec.get("total")
        self.last_order: Any = None

    def _columns(self, batch: Batch) -> tuple[np.ndarray, np.ndarray | None]:
        features = self.spec["features"] or [c for c in batch.columns if c not in ("key", self.spec["target"],
                                                                                   self.spec["order_by"])]
        x = np.column_stack([np.asarray(batch.column(c), dtype=np.float32) for c in features])
        y = np.asarray(batch.column(self.spec["target"])) if self.spec["target"] else None
        return x, y

    def feed(self, batch: Batch) -> list[tuple[str, Batch]]:
        if self.total is None:
            self.total = batch.meta.total_records
        if self.spec["order_by"]:
            order = np.asarray(batch.column(self.spec["order_by"]))
            if len(order) and ((self.last_order is not None and order[0] < self.last_order)
                               or np.any(np.diff(order) < 0)):
                raise BlaseError(
                    f"rolling windows need records sorted by {self.spec['order_by']!r}; sort the source first."
                )
            if len(order):
                self.last_order = order[-1]
        x, y = self._columns(batch)
        self.buffer_keys += batch.keys
        self.buffer_x = x if self.buffer_x is None else np.concatenate([self.buffer_x, x])
        if y is not None:
            self.buffer_y = y if self.buffer_y is None else np.concatenate([self.buffer_y, y])
        return self._emit()

    def _emit(self) -> list[tuple[str, Batch]]:
        w, h, s = self.spec["window"], self.spec["horizon"], self.spec["stride"]
        need = w + h
        starts = []
        end = self.position + len(self.buffer_keys)
        start = self.next_start
        while start + need <= end:
            starts.append(start)
            start += s
        self.next_start = start
        out: list[tuple[str, Batch]] = []
        if starts:
            rel = np.asarray(starts) - self.position
            idx = rel[:, None] + np.arange(w)[None, :]
            xs = self.buffer_x[idx]
            keys = [self.buffer_keys[r + w - 1] for r in rel]
            data: dict[str, Any] = {"x": xs}
            if self.buffer_y is not None:
                data["y"] = self.buffer_y[rel + w + h - 1] if h else self.buffer_y[rel + w - 1]
            batch = Batch(keys, data, BatchMeta("windows", 0))
            ends = np.asarray(starts) + w - 1
            splits = self._split(ends)
            for split in SPLITS:
                mask = splits == split
                if mask.any():
                    out.append((split, batch.select(mask)))
        drop = max(0, min(self.next_start, self.position + len(self.buffer_keys)) - self.position)
        if drop:
            self.buffer_keys = self.buffer_keys[drop:]
            self.buffer_x = self.buffer_x[drop:]
            if self.buffer_y is not None:
                self.buffer_y = self.buffer_y[drop:]
            self.position += drop
        return out

    def _split(self, ends: np.ndarray) -> np.ndarray:
        if not self.total:
            raise BlaseError(
                "rolling windows are split in time order, which needs the record count up front; read the source"
                " with a reader that knows it (Parquet, .npy, images) or pass the total to set_windows."
            )
        position = ends / self.total
        train, val, _ = self.fractions
        return np.where(position < train, "train", np.where(position < train + val, "val", "test"))
