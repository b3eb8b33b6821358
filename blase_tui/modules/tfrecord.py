"""Writing ``tf.train.Example`` records to TFRecord files without TensorFlow: the protobuf wire format and
the TFRecord framing (length, masked CRC32C) are small enough to write directly."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from blase_tui.modules.batch import Batch


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1  # negative int64 values are encoded as 10-byte two's complement
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature(values: np.ndarray | list[Any]) -> bytes:
    array = np.asarray(values)
    if array.dtype.kind in "SUO":
        items = [v if isinstance(v, bytes) else str(v).encode() for v in array.ravel()]
        return _field(1, b"".join(_field(1, v) for v in items))  # bytes_list
    if array.dtype.kind == "f":
        packed = array.astype("<f4").ravel().tobytes()
        return _field(2, _field(1, packed))  # float_list, packed
    if array.dtype.kind in "biu":
        packed = b"".join(_varint(int(v)) for v in array.astype(np.int64).ravel())
        return _field(3, _field(1, packed))  # int64_list, packed
    raise TypeError(f"cannot store a {array.dtype} column in a TFRecord")


def encode_example(features: dict[str, Any]) -> bytes:
    """A serialized ``tf.train.Example`` with one feature per entry."""
    entries = b"".join(_field(1, _field(1, name.encode()) + _field(2, _feature(v))) for name, v in features.items())
    return _field(1, entries)


def _masked_crc(data: bytes) -> int:
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class TFRecordWriter:
    """Appends records to ``path`` (under a temporary name until ``close``); arrays are stored flattened with
    a ``<name>_shape`` feature so readers can restore them."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".tmp-{os.getpid()}-{self.path.name}")
        self._fh = open(self._tmp, "wb")
        self.records = 0

    def write(self, data: bytes) -> None:
        length = struct.pack("<Q", len(data))
        self._fh.write(length + struct.pack("<I", _masked_crc(length)) + data + struct.pack("<I", _masked_crc(data)))
        self.records += 1

    def write_batch(self, batch: Batch) -> None:
        columns = {c: batch.column(c) for c in batch.columns if c != "key"}
        for i, key in enumerate(batch.keys):
            features: dict[str, Any] = {"key": [key]}
            for name, values in columns.items():
                value = np.asarray(values[i])
                features[name] = value.reshape(-1) if value.ndim else value.reshape(1)
                if value.ndim > 1 or (value.ndim == 1 and value.dtype.kind not in "SUO"):
                    features[f"{name}_shape"] = np.asarray(value.shape, dtype=np.int64)
            self.write(encode_example(features))

    def close(self) -> None:
        from blase_tui.store.filehash import file_hash

        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self._tmp, self.path)
        meta = {"records": self.records, "hash": "xxh3:" + file_hash(self.path), "file": self.path.name}
        from blase_tui.modules.load import MANIFEST

        self.path.with_name(MANIFEST).write_text(json.dumps(meta))
