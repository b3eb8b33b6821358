"""Run ids: sortable by time, readable, and unique (time to the millisecond plus randomness, and the store
refuses a duplicate so the caller draws again)."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case: no i, l, o, u


def new_run_id(now: float | None = None) -> str:
    """``20261123-122412345-k3f9x2``: UTC date, time to the millisecond, six random characters."""
    now = time.time() if now is None else now
    millis = int(now * 1000) % 1000
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    rand = "".join(_ALPHABET[b & 31] for b in os.urandom(6))  # 256 = 8 x 32: each letter equally likely
    return f"{stamp}{millis:03d}-{rand}"
