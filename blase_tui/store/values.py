"""Param values written as text (``--set epochs=4``, ``--param lr=0.01``) read as the values they name."""

from __future__ import annotations

import json
from typing import Any


def parse_literal(text: str) -> Any:
    """``--set`` values without a known type: JSON (numbers, true/false, lists) or else the plain string."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    for number in (int, float):  # ".5", "1e-3", "+2": numbers JSON would not accept
        try:
            return number(text)
        except ValueError:
            continue
    try:
        return json.loads(text)
    except ValueError:
        return text
