"""Model cards (written by ``Train.save_model`` beside the model file) and saved model files."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from blase_tui.core.fmt import fmt_hash, fmt_time, fmt_value
from blase_tui.render.common import MODEL_SUFFIXES, header, hex_dump, read_head, sparkline


def render_card(card: dict[str, Any], *, path: Path | None = None, width: int = 100, max_rows: int = 20,
                title: str | None = None) -> RenderableType:
    """A model card (written by ``Train.save_model`` beside the model file) as a readable summary: framework
    and architecture, task and classes, input, the kept metrics, epochs, data, provenance and a sparkline of
    each metric over the training history."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column(overflow="fold")

    model = card.get("model") if isinstance(card.get("model"), dict) else {}
    framework = [str(card.get("framework") or "unknown framework")]
    if model.get("class"):
        framework.append(str(model["class"]))
    if isinstance(model.get("parameters"), int):
        framework.append(f"{model['parameters']:,} parameters")
    if model.get("device"):
        framework.append(str(model["cuda"] or model["device"]) if model.get("cuda") else str(model["device"]))
    grid.add_row("framework", " · ".join(framework))
    if isinstance(model.get("params"), dict) and model["params"]:  # scikit-learn hyper-parameters
        hp = ", ".join(f"{k}={v}" for k, v in list(model["params"].items())[:12])
        grid.add_row("hyper-params", hp + (" …" if len(model["params"]) > 12 else ""))

    task = [str(card.get("task") or "")]
    classes = card.get("classes")
    if isinstance(classes, list) and classes:
        shown = " ".join(str(c) for c in classes[:20]) + (" …" if len(classes) > 20 else "")
        task.append(f"{len(classes)} classes: {shown}")
    grid.add_row("task", " · ".join(t for t in task if t) or "-")

    inp = card.get("input")
    if isinstance(inp, dict):
        shape = "×".join(str(s) for s in inp.get("shape") or []) or "scalar"
        text = f"{inp.get('column', '?')} {shape} {inp.get('dtype', '')}".strip()
        if inp.get("target"):
            text += f" → {inp['target']}"
        grid.add_row("input", text)

    metrics = card.get("metrics") if isinstance(card.get("metrics"), dict) else {}
    shown_metrics = {k: v for k, v in metrics.items() if k not in ("epoch", "seconds")}
    if shown_metrics:
        line = Text()
        for i, (k, v) in enumerate(shown_metrics.items()):
            if i:
                line.append("  ")
            line.append(f"{k} ")
            line.append(fmt_value(v), "bold")
        grid.add_row("metrics", line)

    epochs = card.get("epochs")
    n_epochs = len(epochs) if isinstance(epochs, list) else epochs
    epoch_text = [f"{n_epochs} run" if n_epochs not in (None, []) else ""]
    if card.get("best_epoch") is not None:
        epoch_text.append(f"best epoch {card['best_epoch']} (its weights are kept)")
    if card.get("resumed_from"):
        epoch_text.append(f"resumed from {card['resumed_from']}")
    if any(epoch_text):
        grid.add_row("epochs", " · ".join(t for t in epoch_text if t))

    if card.get("data_manifest_hash"):
        grid.add_row("data", f"training data {fmt_hash(str(card['data_manifest_hash']))}")
    if card.get("training_run"):
        step = f" (step run {card['training_step_run']})" if card.get("training_step_run") is not None else ""
        grid.add_row("run", f"{card['training_run']}{step}")
    if card.get("seed") is not None:
        grid.add_row("seed", str(card["seed"]))
    if card.get("frozen_layers"):
        grid.add_row("frozen", str(card["frozen_layers"]))
    packages = card.get("packages")
    if isinstance(packages, dict) and packages:
        grid.add_row("packages", " · ".join(f"{k} {v}" for k, v in packages.items()))
    if isinstance(card.get("created"), int | float):
        grid.add_row("created", fmt_time(card["created"]))

    parts: list[RenderableType] = []
    if path is not None:
        parts.append(header(path, title or "model card"))
    parts.append(grid)
    history = card.get("history")
    if isinstance(history, list) and len(history) > 1:
        parts += [Text(""), _history_sparklines(history, width, max_rows)]
    return Group(*parts)



def _history_sparklines(history: list[dict[str, Any]], width: int, max_rows: int) -> Table:
    """One row per metric: first value, its course over the epochs as a sparkline, last value."""
    keys = [k for k in history[0] if k not in ("epoch", "seconds")]
    spark_width = max(8, min(len(history), width - 40))
    table = Table(box=None, padding=(0, 1), show_header=True, header_style="dim", title_justify="left")
    table.add_column(f"history ({len(history)} epochs)", style="bold", no_wrap=True)
    table.add_column("first", justify="right")
    table.add_column("", no_wrap=True, style="cyan")
    table.add_column("last", justify="right")
    table.add_column("best", justify="right")
    for k in keys[:max_rows]:
        vals = [row.get(k) for row in history]
        finite = [float(v) for v in vals if isinstance(v, int | float) and math.isfinite(v)]
        if not finite:
            continue
        # losses and errors improve downwards, everything else (accuracy, f1, auc) upwards
        lower_better = any(w in k.lower() for w in ("loss", "error", "mae", "mse", "rmse"))
        best = min(finite) if lower_better else max(finite)
        table.add_row(k, fmt_value(finite[0]), sparkline(finite, spark_width), fmt_value(finite[-1]), fmt_value(best))
    return table


def model_file(path: Path, width: int, max_rows: int) -> RenderableType:
    """A saved model: its card when one lies beside it (``model.pt.card.json``), else size and a hex head."""
    kind = f"{MODEL_SUFFIXES.get(path.suffix.lower(), 'model')} model"
    card_path = path.with_name(path.name + ".card.json")
    if card_path.is_file():
        try:
            card = json.loads(card_path.read_bytes())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            card = None
        if isinstance(card, dict):
            return Group(header(path, kind, f"card: {card_path.name}"),
                         render_card(card, width=width, max_rows=max_rows))
    head, _ = read_head(path, 256)
    return Group(header(path, kind, "no model card beside it"), hex_dump(head, width, min(max_rows, 4)))
