"""Data helpers of the sample project: plain functions that the steps in main.py hand to blase's modules."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def example_func(batch):
    """Transform: scale pixels to [0, 1] floats (the model's input) and keep the labels."""
    return {"image": batch["image"].astype(np.float32) / 255.0, "label": batch["label"]}


def filter_bad_images(batch, min_ink: float = 0.05):
    """Clean: True for the images to exclude, those with almost no ink (fraction of clearly drawn pixels)."""
    images = batch["image"]
    ink = (images.reshape(len(images), -1) > 64).mean(axis=1)
    return ink < min_ink


def write_png_atomic(array: np.ndarray, path: Path) -> None:
    """Write a grayscale PNG so that a crash never leaves a half file that looks whole."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(array).save(tmp, format="PNG")
    os.replace(tmp, path)

