"""Writing to the model registry: a model object or file saved in the framework's format, its card built, both
kept with the run that records them and registered as the next version of a name."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from blase_tui.errors import BlaseError, ConfigError
from blase_tui.models import card as card_mod
from blase_tui.models.frameworks import Framework, open_model, resolve


def register(tracker: Any, name: str, path: Path, card_path: Path, *, framework: str, metrics: dict[str, Any],
             record_output: bool = True, role: str = "output") -> str | None:
    """Keep the model file at ``path`` and its card with ``tracker``'s step (or run) and register them as the
    next version of ``name``; returns ``"name vN"`` (None without a tracker). ``record_output``: the file is
    one of the step's datasets (False for a file saved to a temporary folder, kept only in the content store),
    an ``output`` it wrote or an ``input`` it imported."""
    if tracker is None:
        return None
    from blase_tui.store import models

    items = tracker.log_artifact(path, name=f"model/{path.name}")
    if record_output:
        # an output file at its path: a later identical execution is reused only while that file is unchanged
        tracker.log_dataset(path, role=role)
    card_items = tracker.log_artifact(card_path, name=f"model/{card_path.name}")
    version = models.register(tracker.store, name, run_id=tracker.run_id, step_run_id=tracker.step_run_id,
                              framework=framework, file_hash=items[0][1], card_hash=card_items[0][1],
                              file_name=path.name, metrics=metrics)
    return f"{name} v{version}"


def save(obj: Any, framework: Framework, folder: Path, stem: str) -> Path:
    """``obj`` written into ``folder`` in its framework's own format: scikit-learn as skops (loading it runs no
    code) where skops can write it, else a pickle; a torch module whole (``torch.save``); Keras ``.keras``."""
    if framework.name == "sklearn":
        path = folder / f"{stem}.skops"
        try:
            import skops.io as sio

            sio.dump(obj, path)
            return path
        except Exception:  # noqa: BLE001 - skops not installed, or an estimator holding what it cannot write
            path.unlink(missing_ok=True)
        import pickle

        path = folder / f"{stem}.pkl"
        path.write_bytes(pickle.dumps(obj))
        return path
    path = folder / f"{stem}{framework.suffix}"
    if framework.name == "torch":
        import torch

        torch.save(obj, path)
    else:
        obj.save(path)
    return path


def read_model(path: Path, framework: str, trusted: bool) -> Any:
    """The model object in the file at ``path``, to read its card from; a file that is not a model of
    ``framework`` (damaged, cut short, another kind of file) is one line naming it, never a traceback."""
    from blase_tui.frameworks.formats import RunsCode

    try:
        return open_model(path, framework, path.name, "cpu", allow_code=trusted).model
    except RunsCode:
        raise
    except BlaseError as exc:  # the adapter's own refusal (a state dict without its architecture): bad input
        raise ConfigError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - whatever the framework's reader raises on a file it cannot read
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path} is not a {framework} model blase can read ({type(exc).__name__}: {first[:120]});"
                          " give the file the framework saved, whole.") from None


def log(tracker: Any, model: Any, name: str, *, framework: str | None = None, input_example: Any = None,
        metrics: dict[str, Any] | None = None, task: str = "classification", trusted: bool = True,
        imported: bool = False, known: dict[str, Any] | None = None) -> str:
    """Register ``model`` (a framework's object, or the path of a saved model file) as the next version of
    ``name`` in ``tracker``'s run, with its card; returns ``"name vN"``. A file is opened to read its card
    (classes, columns, input) — ``trusted``: even where opening it runs code from the file (a pickle); else
    only a safe format (skops, torch weights, ``.keras`` in safe mode) is read, and a pickle is refused.
    ``imported``: a file made elsewhere (``blase models import``): an input of the run, which did not train it.
    ``known``: a card the file came with (``Train.save_model``'s ``<file>.card.json``): it wins over what is read
    from the model."""
    if tracker is None:
        raise BlaseError("log_model needs a run: call it inside a step, or open one with Track().start_run().")
    from blase_tui.store.models import check_name

    check_name(name)  # before anything is saved or kept
    where = {} if imported else {"run_id": tracker.run_id, "step_run_id": tracker.step_run_id}
    with tempfile.TemporaryDirectory(prefix="blase-model-") as tmp:
        if isinstance(model, str | Path):
            path = Path(model)
            if not path.is_file():
                raise BlaseError(f"cannot register {path}: no such file.")
            fw = resolve(framework, path=path)
            obj = read_model(path, fw.name, trusted)
            record_output = True
        else:
            fw = resolve(framework, obj=model)
            obj = model
            path = save(model, fw, Path(tmp), name)
            record_output = False
        extra = {"imported_from": str(path), "imported_in": tracker.run_id} if imported else None
        card = card_mod.build(obj, fw.name, task=task, input_example=input_example, metrics=metrics, where=where,
                              extra={**(extra or {}), **(known or {})})
        card_path = Path(tmp) / f"{path.name}.card.json"
        card_path.write_text(json.dumps(card, indent=1, default=str))
        saved = register(tracker, name, path, card_path, framework=fw.name, metrics=card["metrics"],
                         record_output=record_output, role="input" if imported else "output")
    assert saved is not None
    return saved
