"""PyTorch: a plain training loop (forward, loss, backward, step) over numpy batches from the shards."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from blase_tui.errors import BlaseError
from blase_tui.frameworks.base import TrainConfig, to_float_input

_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD,
               "rmsprop": torch.optim.RMSprop}
_LOSSES = {"cross_entropy": torch.nn.CrossEntropyLoss, "categorical_crossentropy": torch.nn.CrossEntropyLoss,
           "sparse_categorical_crossentropy": torch.nn.CrossEntropyLoss, "mse": torch.nn.MSELoss,
           "mean_squared_error": torch.nn.MSELoss, "l1": torch.nn.L1Loss, "mae": torch.nn.L1Loss,
           "bce": torch.nn.BCEWithLogitsLoss, "binary_crossentropy": torch.nn.BCEWithLogitsLoss}


def pick_device(requested: str | None) -> torch.device:
    if requested:
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise BlaseError(f"device {requested!r} was asked for but CUDA is not available here; use device=\"cpu\".")
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


class TorchAdapter:
    framework = "torch"
    file_suffix = ".pt"

    def __init__(self) -> None:
        self.model: torch.nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.loss_fn: Any = None
        self.device = torch.device("cpu")
        self.classification = True
        self.input_shape: list[int] | None = None

    def setup(self, model: Any, config: TrainConfig, n_classes: int | None) -> None:
        if not isinstance(model, torch.nn.Module):
            raise BlaseError(f"framework='torch' needs a torch.nn.Module, not a {type(model).__name__}.")
        seed_everything(config.seed)
        self.device = pick_device(config.device)
        self.model = model.to(self.device)
        self.classification = config.task == "classification"
        loss = config.loss_fn or ("cross_entropy" if self.classification else "mse")
        if isinstance(loss, str):
            if loss not in _LOSSES:
                raise BlaseError(f"loss_fn {loss!r} is not one of {', '.join(_LOSSES)}; or pass a callable.")
            loss = _LOSSES[loss]()
        self.loss_fn = loss
        self._config = config

    def _optimizer(self) -> torch.optim.Optimizer:
        """The optimizer, built on first use from the training config."""
        if self.optimizer is None:
            self._build_optimizer()
        assert self.optimizer is not None
        return self.optimizer

    def _build_optimizer(self) -> None:
        assert self.model is not None
        opt = self._config.optimizer
        params = [p for p in self.model.parameters() if p.requires_grad]
        if isinstance(opt, str):
            if opt.lower() not in _OPTIMIZERS:
                raise BlaseError(f"optimizer {opt!r} is not one of {', '.join(_OPTIMIZERS)}; or pass a callable.")
            self.optimizer = _OPTIMIZERS[opt.lower()](params, lr=self._config.learning_rate)
        elif callable(opt):
            self.optimizer = opt(params)
        else:
            self.optimizer = opt

    def freeze(self, names: list[str]) -> list[str]:
        assert self.model is not None
        frozen = []
        modules = dict(self.model.named_modules())
        for name in names:
            if name not in modules:
                known = ", ".join(n for n in modules if n) or "none"
                raise BlaseError(f"freeze_layers: the model has no layer {name!r} (layers: {known}).")
            for pname, p in modules[name].named_parameters(prefix=name):
                p.requires_grad = False
                frozen.append(pname)
        return frozen

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        x = to_float_input(x)
        if self.input_shape is None:
            self.input_shape = list(x.shape[1:])
        if x.ndim == 3:  # (n, h, w) grey images: one channel
            x = x[:, None, :, :]
        elif x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # NHWC -> NCHW
        return torch.from_numpy(np.ascontiguousarray(x)).to(self.device, non_blocking=True)

    def _target(self, y: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(y))
        return t.long().to(self.device) if self.classification else t.float().to(self.device)

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int, int]:
        assert self.model is not None
        optimizer = self._optimizer()
        self.model.train()
        inputs, targets = self._tensor(x), self._target(y)
        optimizer.zero_grad(set_to_none=True)
        out = self.model(inputs)
        if not self.classification and out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        loss = self.loss_fn(out, targets)
        loss.backward()
        optimizer.step()
        correct = int((out.argmax(1) == targets).sum()) if self.classification else 0
        return float(loss.detach()) * len(y), correct, len(y)

    @torch.no_grad()
    def loss(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int, int]:
        assert self.model is not None
        self.model.eval()
        inputs, targets = self._tensor(x), self._target(y)
        out = self.model(inputs)
        if not self.classification and out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        correct = int((out.argmax(1) == targets).sum()) if self.classification else 0
        return float(self.loss_fn(out, targets)) * len(y), correct, len(y)

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (classification) or values (regression)."""
        assert self.model is not None
        if any(m.training for m in self.model.modules()):  # (eval() walks every module: ~75 us a served request)
            self.model.eval()
        out = self.model(self._tensor(x))
        if self.classification:
            return torch.softmax(out, dim=1).cpu().numpy()
        return out.reshape(len(x), -1).squeeze(-1).cpu().numpy()

    @torch.no_grad()
    def embed(self, x: np.ndarray) -> np.ndarray | None:
        """What reaches the model's last layer (its input: the last hidden representation), one row a record:
        the image embedding ``Monitor`` tests for drift. None for a model of one layer."""
        assert self.model is not None
        leaves = [m for m in self.model.modules() if not list(m.children())]
        if len(leaves) < 2:
            return None
        seen: list[torch.Tensor] = []
        handle = leaves[-1].register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0]))
        try:
            self.model.eval()
            self.model(self._tensor(x))
        finally:
            handle.remove()
        return seen[-1].reshape(len(x), -1).float().cpu().numpy() if seen else None

    def state(self) -> dict[str, Any]:
        assert self.model is not None
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def load_state(self, state: Any) -> None:
        assert self.model is not None
        self.model.load_state_dict(state)

    def save_checkpoint(self, path: Path, extra: dict[str, Any]) -> None:
        assert self.model is not None
        payload = {"model": self.model.state_dict(), "optimizer": self._optimizer().state_dict(),
                   "torch_rng": torch.get_rng_state(), **extra}
        tmp = path.with_name(f".tmp-{path.name}")
        torch.save(payload, tmp)
        os.replace(tmp, path)

    def read_checkpoint(self, path: Path) -> dict[str, Any]:
        assert self.model is not None
        payload = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(payload["model"])
        self._optimizer().load_state_dict(payload["optimizer"])
        torch.set_rng_state(payload["torch_rng"])
        return payload

    def save(self, path: Path) -> None:
        assert self.model is not None
        tmp = path.with_name(f".tmp-{path.name}")
        torch.save(self.model, tmp)  # the whole module: Evaluate loads it without the training code
        os.replace(tmp, path)

    @staticmethod
    def load(path: Path, device: str | None = None, *, allow_code: bool = True) -> TorchAdapter:
        """The module saved at ``path``. Without ``allow_code`` it is read with ``weights_only=True``, allowing
        only ``torch.nn``'s own layers besides tensors: a module of other classes is a :class:`RunsCode`."""
        import pickle

        from blase_tui.frameworks.formats import RunsCode, torch_layers

        adapter = TorchAdapter()
        adapter.device = pick_device(device)
        from blase_tui.frameworks.formats import is_torchscript

        if is_torchscript(path):  # compiled TorchScript: its own loader, no Python objects rebuilt
            adapter.model = torch.jit.load(str(path), map_location=adapter.device)
            adapter.model.eval()
            return adapter
        if allow_code:
            adapter.model = torch.load(path, map_location=adapter.device, weights_only=False)
        else:
            with torch.serialization.safe_globals(torch_layers()):
                try:
                    adapter.model = torch.load(path, map_location=adapter.device, weights_only=True)
                except pickle.UnpicklingError as exc:
                    unsafe = str(exc).split("Unsupported global:")[-1].split(" was not")[0].strip()
                    raise RunsCode(f"{path} is a torch module of classes outside torch.nn ({unsafe[:200]}): loading"
                                   " it runs their code.") from None
        if not isinstance(adapter.model, torch.nn.Module):
            raise BlaseError(f"{path} holds {type(adapter.model).__name__}, not a torch module: a state dict needs"
                             " its architecture; save the whole module (Train.save_model, log_model) or a TorchScript"
                             " archive (torch.jit.save(torch.jit.script(model), path)).")
        return adapter

    def describe(self) -> dict[str, Any]:
        assert self.model is not None
        n_params = sum(p.numel() for p in self.model.parameters())
        return {"class": type(self.model).__name__, "parameters": int(n_params), "device": str(self.device),
                "cuda": torch.cuda.get_device_name(0) if self.device.type == "cuda" else None}
