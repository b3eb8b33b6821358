"""Data helpers of the sample project (plain Python, no blase needed)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np


def write_png_atomic(array: np.ndarray, path: Path) -> None:
    """Write a grayscale PNG so that a crash never leaves a half file that looks whole."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(array).save(tmp, format="PNG")
    os.replace(tmp, path)


def read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("L"), dtype=np.uint8)


def ink_fraction(image: np.ndarray) -> float:
    """Share of pixels that are clearly drawn."""
    return float((image > 64).mean())


def split_of(key: str, seed: int, train: float, val: float) -> str:
    """Deterministic split per record key: a record stays in its split when the dataset grows."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return "train" if u < train else "val" if u < train + val else "test"


def save_npy_atomic(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)
