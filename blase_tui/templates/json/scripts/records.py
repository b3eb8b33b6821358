"""The project's own functions: the stand-in data source and the features of a customer record."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

LABEL = "churned"
PLANS = ("basic", "pro", "team")


def write_exports(folder: Path, customers: int = 3000, seed: int = 0) -> int:
    """Stand-in for the outside world: customer records as an app exports them, nested objects and all. The
    older customers come as JSON arrays (one file per month, as a nightly export writes them), the newer ones as
    JSON lines (as an event stream appends them); a few fields are missing, as in real exports."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(customers):
        plan = PLANS[int(rng.integers(3))]
        tenure = int(rng.integers(1, 60))
        sessions = int(rng.poisson(20 if plan != "basic" else 8))
        tickets = int(rng.poisson(1.5))
        spend = round(float({"basic": 9, "pro": 29, "team": 99}[plan] * rng.uniform(0.8, 1.2)), 2)
        risk = 1.2 - 0.05 * tenure - 0.08 * sessions + 0.6 * tickets + (0.5 if plan == "basic" else 0.0)
        record = {"id": f"c{i:06d}", "plan": plan, "monthly_spend": spend, "tenure_months": tenure,
                  "usage": {"sessions": sessions, "minutes": round(sessions * float(rng.gamma(2.0, 6.0)), 1)},
                  "support": {"tickets": tickets}, "country": ["de", "fr", "us", "in"][int(rng.integers(4))],
                  LABEL: bool(rng.random() < 1 / (1 + np.exp(-risk)))}
        if rng.random() < 0.03:
            del record["usage"]["minutes"]  # an older app version did not report it
        records.append(record)
    split = customers * 2 // 5
    for month in range(2):
        part = records[month * split // 2:(month + 1) * split // 2]
        _write(folder / f"export-2026-{month + 10:02d}.json", json.dumps(part, indent=1))
    _write(folder / "events.jsonl", "".join(json.dumps(r) + "\n" for r in records[split:]))
    return customers


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def to_features(batch) -> dict[str, np.ndarray]:
    """One float32 feature vector per customer (nested fields flattened, the plan one-hot, a missing value as
    NaN, which the gradient-boosted trees take as it is) and the label, as Train reads them."""
    def nested(column: str, field: str) -> np.ndarray:
        return np.array([(v or {}).get(field, np.nan) if isinstance(v, dict) else np.nan for v in batch[column]],
                        dtype=np.float32)

    plan = np.asarray(batch["plan"]).astype(str)
    features = np.column_stack([
        np.asarray(batch["monthly_spend"], dtype=np.float32), np.asarray(batch["tenure_months"], dtype=np.float32),
        nested("usage", "sessions"), nested("usage", "minutes"), nested("support", "tickets"),
        *[(plan == p).astype(np.float32) for p in PLANS],
    ])
    return {"features": features, "label": np.where(np.asarray(batch[LABEL], dtype=bool), "churned", "stayed")}
