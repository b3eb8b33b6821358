"""What every framework adapter provides to ``Train`` and ``Evaluate``. Adapters import their framework
inside their own module, which ``Train`` imports only when that framework is asked for."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np


@dataclass
class TrainConfig:
    optimizer: Any = "adam"
    loss_fn: Any = None
    metrics: list[str] = field(default_factory=lambda: ["accuracy"])
    batch_size: int = 64
    learning_rate: float = 1e-3
    early_stopping: int | None = None  # patience in epochs, on the monitored value
    monitor: str = "val_loss"
    task: str = "classification"
    input_column: str | None = None
    target_column: str | None = None
    device: str | None = None
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Adapter(Protocol):
    """What every framework's adapter is: ``model`` the framework's own object, ``classification`` whether its
    outputs are class scores; ``load`` opens a saved model (``allow_code=False``: only formats that run no code
    from the file, else ``frameworks.formats.RunsCode``)."""

    framework: str
    file_suffix: str
    model: Any
    classification: bool

    @staticmethod
    def load(path: Path, device: str | None = None, *, allow_code: bool = True) -> Adapter: ...

    def setup(self, model: Any, config: TrainConfig, n_classes: int | None) -> None: ...
    def freeze(self, names: list[str]) -> list[str]: ...
    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int, int]: ...
    def predict(self, x: np.ndarray) -> np.ndarray: ...
    def loss(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int, int]: ...
    def state(self) -> Any: ...
    def load_state(self, state: Any) -> None: ...
    def save_checkpoint(self, path: Path, extra: dict[str, Any]) -> None: ...
    def read_checkpoint(self, path: Path) -> dict[str, Any]: ...
    def save(self, path: Path) -> None: ...
    def describe(self) -> dict[str, Any]: ...


def to_float_input(x: np.ndarray) -> np.ndarray:
    """Model input as float32: uint8 images are scaled to [0, 1]."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    return x.astype(np.float32, copy=False)


def plugin_adapter(framework: str) -> Any:
    """The adapter class a plugin provides for ``framework`` (entry point group ``blase.frameworks``): it has
    the methods of :class:`Adapter` and a ``load(path, device)`` class method."""
    from blase_tui.core import plugins

    if plugins.find("frameworks", framework) is None:
        from blase_tui.errors import BlaseError

        raise BlaseError(f"framework {framework!r} is not one of torch, tensorflow, sklearn, nor one a plugin"
                         " adds (`blase plugins list`).")
    return plugins.load("frameworks", framework, what=f"framework {framework!r}")
