"""PCM WAV files, one record each: ``audio`` (float32 samples in [-1, 1]) and ``sample_rate``."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blase_tui.modules import recording
from blase_tui.modules.batch import Batch
from blase_tui.modules.readers.common import Bad, Record, batches, check_on_error, files, reason, stack

if TYPE_CHECKING:
    from blase_tui.modules.extract import Extract


def load(extract: Extract, directory: str | Path, *, recursive: bool = True, batch_size: int | None = None,
         memory_budget: int | str | None = None, on_error: str | None = None,
         allow_empty: bool = False) -> Iterator[Batch]:
    on_error = check_on_error(on_error or extract.on_error)
    root = Path(directory)
    found = files(root, ("*.wav",), recursive, allow_empty, "WAV")
    base = root if root.is_dir() else root.parent
    bar = recording.progress(f"load_audio {root}", total=len(found), unit="files")

    def items() -> Iterator[Any]:
        for path in found:
            key = path.relative_to(base).as_posix()
            try:
                clip, rate = read_wav(path)
            except (wave.Error, EOFError, ValueError, OSError) as exc:
                bar.update(1)
                yield Bad(path, key, f"not a readable WAV file: {reason(exc)}")
                continue
            bar.update(1, nbytes=clip.nbytes)
            yield Record(key, (clip, rate), clip.nbytes * 2)

    def columns(values: list[tuple[Any, ...]]) -> dict[str, np.ndarray]:
        return {"audio": stack([v[0] for v in values]), "sample_rate": np.asarray([v[1] for v in values], dtype=np.int64)}

    try:
        yield from batches(extract, items(), root=root, reader="load_audio", columns=columns, on_error=on_error,
                           batch_size=batch_size, memory_budget=memory_budget, total=len(found))
    finally:
        bar.close()
    recording.dataset(root, role="input")


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        raw = w.readframes(frames)
    if len(raw) < frames * channels * width:
        raise EOFError(f"file ends after {len(raw)} of {frames * channels * width} bytes of samples")
    if width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        ints = (b[:, 0].astype(np.int32) | (b[:, 1].astype(np.int32) << 8) | (b[:, 2].astype(np.int32) << 16))
        ints = np.where(ints & 0x800000, ints - 0x1000000, ints)
        data = ints.astype(np.float32) / 8388608
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648
    else:
        raise ValueError(f"unsupported sample width {width} bytes")
    if channels > 1:
        data = data.reshape(-1, channels)
    return data, rate
