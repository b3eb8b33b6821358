"""A ``Batch``: stable record keys, the data (named numpy arrays or an Arrow table) and where it came from."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BadRecord:
    """A record that could not be read: the file, the record within it (row number or key) and why."""

    source: str
    record: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "record": self.record, "reason": self.reason}


@dataclass(frozen=True)
class BatchMeta:
    source: str
    index: int
    total_batches: int | None = None
    total_records: int | None = None
    start: int = 0  # position of the batch's first record in the whole stream
    lineage: tuple[str, ...] = ()


class RowKeys(Sequence[str]):
    """Keys ``"<prefix><row>"`` for a run of rows, made into strings only when someone reads them: a batch of a
    million Parquet rows does not build a million Python strings to pass them along."""

    __slots__ = ("prefix", "rows")

    def __init__(self, prefix: str, rows: np.ndarray) -> None:
        self.prefix = prefix
        self.rows = np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice | np.ndarray | list):
            return RowKeys(self.prefix, self.rows[i])
        return f"{self.prefix}{self.rows[i]}"

    def __iter__(self) -> Iterator[str]:
        prefix = self.prefix
        return (f"{prefix}{r}" for r in self.rows.tolist())

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented

    def __hash__(self) -> int:
        return hash((self.prefix, self.rows.tobytes()))

    def __repr__(self) -> str:
        return f"RowKeys({self.prefix!r}, {len(self)} rows)"

    def to_arrow(self) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        rows = pc.cast(pa.array(self.rows), pa.string())
        return pc.binary_join_element_wise(pa.scalar(self.prefix), rows, "")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.to_arrow().to_numpy(zero_copy_only=False).astype(str), dtype=dtype)


@dataclass
class Batch:
    """``keys[i]`` identifies record ``i`` for good (a relative path, ``file:row``, or a key column such as
    ``candid``); ``data`` maps column names to arrays of the same length, or is a ``pyarrow.Table``."""

    keys: Sequence[str]
    data: dict[str, Any] | Any
    meta: BatchMeta
    bad_records: list[BadRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def is_table(self) -> bool:
        return not isinstance(self.data, dict)

    @property
    def columns(self) -> list[str]:
        return list(self.data.column_names) if self.is_table else list(self.data)

    def column(self, name: str) -> Any:
        """One column as a numpy array (Arrow columns are converted)."""
        if self.is_table:
            return self.data.column(name).to_numpy(zero_copy_only=False)
        return self.data[name]

    def __getitem__(self, name: str) -> Any:
        return self.column(name)

    @property
    def nbytes(self) -> int:
        if self.is_table:
            return int(self.data.nbytes)
        total = 0
        for value in self.data.values():
            if isinstance(value, np.ndarray):
                total += value.nbytes if value.dtype != object else sum(getattr(v, "nbytes", 64) for v in value)
            else:
                total += sum(getattr(v, "nbytes", 64) for v in value)
        return total

    def select(self, mask: Any) -> Batch:
        """The records where ``mask`` is true (or at the given integer positions), in order."""
        index = np.asarray(mask)
        if index.dtype == bool:
            if len(index) != len(self):
                raise ValueError(f"mask has {len(index)} entries for a batch of {len(self)} records")
            index = np.flatnonzero(index)
        keys = self.keys[index] if isinstance(self.keys, RowKeys) else [self.keys[i] for i in index]
        if self.is_table:
            data = self.data.take(index)
        else:
            data = {k: (v[index] if isinstance(v, np.ndarray) else [v[i] for i in index]) for k, v in self.data.items()}
        return Batch(keys=keys, data=data, meta=self.meta, bad_records=list(self.bad_records))

    def with_data(self, data: Any, *, step: str | None = None, keys: list[str] | None = None) -> Batch:
        """A batch with new data for the same records (lineage extended with ``step``)."""
        meta = replace(self.meta, lineage=self.meta.lineage + ((step,) if step else ()))
        return Batch(keys=keys if keys is not None else self.keys, data=data, meta=meta,
                     bad_records=list(self.bad_records))

    def to_table(self) -> Any:
        """The batch as a ``pyarrow.Table`` with a ``key`` column first."""
        import pyarrow as pa

        if self.is_table:
            table = self.data
        else:
            arrays = {}
            for name, value in self.data.items():
                arr = np.asarray(value) if not isinstance(value, np.ndarray) else value
                if arr.ndim > 1:
                    arrays[name] = pa.FixedSizeListArray.from_arrays(
                        pa.array(arr.reshape(-1)), int(np.prod(arr.shape[1:]))
                    )
                else:
                    arrays[name] = pa.array(arr)
            table = pa.table(arrays)
        if "key" in table.column_names:
            return table
        keys = self.keys.to_arrow() if isinstance(self.keys, RowKeys) else pa.array(list(self.keys), type=pa.string())
        return table.add_column(0, "key", keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys)
