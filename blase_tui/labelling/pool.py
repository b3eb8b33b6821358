"""The pool of records to label: streamed in budget-sized batches for scoring, and read back a few records at
a time (by location, ``file:row``) for display.

A Parquet pool is read with :class:`~blase_tui.modules.extract.Extract`, so batches follow the memory budget and
every record has a location. A ``reader = "module:function"`` pool is a function returning Batches; its
records have no location, so reading them back streams the reader again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from blase_tui.errors import BlaseError, ConfigError
from blase_tui.labelling.config import LabellingConfig, load_function
from blase_tui.modules.batch import Batch, BatchMeta, RowKeys


@dataclass
class PoolBatch:
    """Some records of the pool: their keys (an Arrow string array), the columns read (an Arrow table), their
    locations (``file:row`` for a Parquet pool, else None) and the position of the first one in the pool."""

    keys: Any
    table: Any
    locations: Sequence[str] | None
    start: int
    total: int | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def take(self, index: np.ndarray) -> PoolBatch:
        """The records at ``index`` (positions in this batch)."""
        import pyarrow as pa

        rows = pa.array(np.asarray(index, dtype=np.int64), type=pa.int64())
        locations = None if self.locations is None else self.locations[np.asarray(index)]
        return PoolBatch(self.keys.take(rows), self.table.take(rows), locations, self.start, self.total)


class Pool:
    """Where the records to label come from (``pool`` or ``reader`` in ``[labelling]``)."""

    def __init__(self, config: LabellingConfig) -> None:
        self.config = config
        self._feature_fn: Callable[..., Any] | None = None
        self._schema: list[str] | None = None

    # ---------------------------------------------------------------- columns
    def schema(self) -> list[str] | None:
        """Column names of a Parquet pool (None for a reader)."""
        if self.config.pool is None:
            return None
        if self._schema is None:
            import pyarrow.parquet as pq

            pool = self.config.pool
            if not pool.exists():
                raise ConfigError(f"the labelling pool {pool} does not exist; fix `pool` in [labelling] or write the"
                                  " pool first (e.g. run the etl step).")
            files = [pool] if pool.is_file() else sorted(
                p for pattern in ("*.parquet", "*.pq") for p in pool.rglob(pattern) if not p.name.startswith("."))
            if not files:
                raise ConfigError(f"the labelling pool {pool} holds no Parquet files; write the pool first or fix `pool`.")
            self._schema = pq.read_schema(files[0]).names
        return self._schema

    def check_columns(self, columns: Sequence[str], what: str) -> None:
        names = self.schema()
        if names is None:
            return
        for c in columns:
            if c not in names:
                raise ConfigError(f"blase.toml: [labelling] {what} names the column {c!r}, which the pool"
                                  f" {self.config.pool} lacks; it has {', '.join(names[:12])}.")

    def feature_columns(self) -> list[str] | None:
        """The columns the features are built from (None: every column but the image and series ones)."""
        features = self.config.features
        if isinstance(features, str):
            names = self.schema()
            if names is None:
                return None
            heavy = {self.config.image, *self.config.images,
                     *(self.config.series.columns if self.config.series else ())}
            return [c for c in names if c not in heavy]
        return list(features)

    # ---------------------------------------------------------------- reading
    def scan(self, columns: Sequence[str] | None) -> Iterator[PoolBatch]:
        """Every record of the pool in batches, with ``columns`` (the key column is always read)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        key = self.config.key
        if self.config.pool is None:
            assert self.config.reader is not None
            reader = load_function(self.config.reader, self.config.root, "reader")
            start = 0
            for batch in reader(self.config.root):  # the project folder: the caller's cwd may be elsewhere
                if not isinstance(batch, Batch):
                    raise BlaseError(f"the labelling reader {self.config.reader} must yield Batch objects, not"
                                     f" {type(batch).__name__}.")
                table = batch.to_table()
                keys = table.column(key) if key in table.column_names else table.column("key")
                yield PoolBatch(pc.cast(keys, pa.string()).combine_chunks(), table, None, start)
                start += len(batch)
            return
        from blase_tui.modules.extract import Extract

        cols = None if columns is None else list(dict.fromkeys([key, *columns]))
        self.check_columns(cols or [key], "`key`, `secondary`, `fields` or `features`")
        extractor = Extract(memory_budget=self.config.memory_budget, batch_size=self.config.batch)
        for batch in extractor.load_parquet(self.config.pool, columns=cols):
            table = batch.data
            keys = pc.cast(table.column(key), pa.string()).combine_chunks()
            assert isinstance(batch.keys, RowKeys)
            yield PoolBatch(keys, table, batch.keys, batch.meta.start, batch.meta.total_records)

    def features(self, part: PoolBatch) -> np.ndarray:
        """The model's input for these records: a 2-D float32 array."""
        features = self.config.features
        if isinstance(features, str):
            if self._feature_fn is None:
                self._feature_fn = load_function(features, self.config.root, "features")
            batch = Batch(keys=part.keys.to_pylist(), data=part.table, meta=BatchMeta("labelling pool", 0))
            x = np.asarray(self._feature_fn(batch), dtype=np.float32)
        elif features:
            import pyarrow as pa

            x = np.column_stack([
                part.table.column(c).cast(pa.float64()).to_numpy(zero_copy_only=False) for c in features
            ]).astype(np.float32)
        else:
            raise ConfigError("blase.toml: [labelling] has no `features`; list the columns the model reads, such as"
                              " features = [\"magpsf\", \"drb\"].")
        if x.ndim != 2 or len(x) != len(part):
            raise BlaseError(f"the labelling features must be a 2-D array with one row per record; got shape {x.shape}.")
        return x

    def fetch(self, items: Sequence[tuple[str, str | None]], columns: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The values of ``columns`` for the records ``(key, location)``; records no longer in the pool are
        left out. Reads only the row groups that hold them (a reader pool is streamed again)."""
        wanted = {k: loc for k, loc in items}
        cols = list(dict.fromkeys([self.config.key, *columns]))
        if self.config.pool is None:
            return self._fetch_by_scan(set(wanted), cols, with_columns=True)
        found = self._fetch_by_location(wanted, cols)
        missing = {k for k in wanted if k not in found}
        if missing:  # the pool changed since the queue was built: look the keys up again
            located = self._fetch_by_scan(missing, [self.config.key], with_columns=False)
            found.update(self._fetch_by_location({k: v["__location"] for k, v in located.items()}, cols))
        return found

    def _fetch_by_location(self, wanted: dict[str, str | None], cols: list[str]) -> dict[str, dict[str, Any]]:
        import pyarrow.parquet as pq

        pool = self.config.pool
        assert pool is not None
        by_file: dict[str, list[tuple[int, str]]] = {}
        for key, loc in wanted.items():
            if loc:
                name, _, row = loc.rpartition(":")
                by_file.setdefault(name, []).append((int(row), key))
        out: dict[str, dict[str, Any]] = {}
        for name, rows in by_file.items():
            path = pool / name if pool.is_dir() else pool
            if not path.is_file():
                continue
            reader = pq.ParquetFile(path)
            meta = reader.metadata
            offsets = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
            present = [c for c in cols if c in reader.schema_arrow.names]
            groups: dict[int, list[tuple[int, str]]] = {}
            for row, key in rows:
                if 0 <= row < offsets[-1]:
                    groups.setdefault(int(np.searchsorted(offsets, row, side="right") - 1), []).append((row, key))
            for group, members in groups.items():
                table = reader.read_row_group(group, columns=present)
                local = [row - int(offsets[group]) for row, _ in members]
                for (_, key), record in zip(members, table.take(local).to_pylist(), strict=True):
                    if str(record.get(self.config.key)) == key:  # a rewritten file may hold other records there
                        out[key] = record
        return out

    def _fetch_by_scan(self, keys: set[str], cols: list[str], *, with_columns: bool) -> dict[str, dict[str, Any]]:
        import pyarrow as pa
        import pyarrow.compute as pc

        value_set = pa.array(sorted(keys), type=pa.string())
        out: dict[str, dict[str, Any]] = {}
        for part in self.scan(cols if with_columns else []):
            hits = np.flatnonzero(pc.is_in(part.keys, value_set=value_set).to_numpy(zero_copy_only=False))
            for i in hits.tolist():
                key = part.keys[i].as_py()
                record = part.table.slice(i, 1).to_pylist()[0] if with_columns else {}
                if part.locations is not None:
                    record["__location"] = part.locations[i]
                out[key] = record
            if len(out) == len(keys):
                break
        return out
