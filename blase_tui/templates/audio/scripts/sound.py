"""The project's own functions: the stand-in recordings, a loudness filter and the features of a clip."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np

RATE = 8000
BANDS = 32


def write_clips(root: Path, per_class: int = 40) -> int:
    """Stand-in for the outside world: one-second 16-bit WAV clips of a whistle (high pitch) and a hum (low
    pitch) with noise, a few of them near silent, one folder per class."""
    rng = np.random.default_rng(0)
    t = np.arange(RATE) / RATE
    n = 0
    for label, (low, high) in {"hum": (80, 300), "whistle": (1200, 3000)}.items():
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pitch = rng.uniform(low, high)
            loud = 0.002 if i % 17 == 5 else rng.uniform(0.3, 0.8)  # a few near-silent clips
            clip = loud * np.sin(2 * np.pi * pitch * t) + 0.05 * loud * rng.standard_normal(RATE)
            pcm = (np.clip(clip, -1, 1) * 32767).astype("<i2")
            path = folder / f"{label}_{i:03d}.wav"
            tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
            with wave.open(str(tmp), "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(RATE)
                out.writeframes(pcm.tobytes())
            os.replace(tmp, path)
            n += 1
    return n


def rms(batch) -> np.ndarray:
    """Loudness of each clip (root mean square of its samples)."""
    return np.sqrt(np.mean(np.square(batch["audio"].astype(np.float64)), axis=1))


def band_energies(batch) -> dict[str, np.ndarray]:
    """Log energy in 32 frequency bands of each clip (``features``) and its class from its folder
    (``label``)."""
    spectrum = np.abs(np.fft.rfft(batch["audio"], axis=1)) ** 2
    bands = np.array_split(spectrum, BANDS, axis=1)
    features = np.log1p(np.stack([b.sum(axis=1) for b in bands], axis=1)).astype(np.float32)
    labels = np.asarray([key.rsplit("/", 1)[0] for key in batch.keys])
    return {"features": features, "label": labels}
