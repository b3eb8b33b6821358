"""``Clean``: mark records to exclude, with a reason, and save them as a named, versioned exclusion set.

>>> cleaner = Clean()                      # saves as "cleaned_v1", then "cleaned_v2", ...
>>> for batch in extractor.load_images(directory="data/raw/images"):
...     cleaner.apply_filter(batch, filter_bad_images)   # returns True for records to drop
...     batch = cleaner.remove_keys(batch)
>>> cleaner.clear_keys()
'cleaned_v1'
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from blase_tui.errors import BlaseError, ConfigError
from blase_tui.modules import recording
from blase_tui.modules.batch import Batch


class Clean:
    """Collects excluded keys with reasons. ``apply_filter`` marks records, ``remove_keys`` drops the marked
    records from a batch and adds them to the set, ``clear_keys`` saves the set and starts a new one."""

    def __init__(self, name: str = "cleaned") -> None:
        self.name = name
        self._marked: dict[str, str] = {}
        self.excluded: dict[str, str] = {}
        self.saved: list[str] = []
        self.excluded_sets: list[dict[str, str]] = []  # sets that could not be saved (no project)

    def apply_filter(self, batch: Batch, fn: Callable[[Batch], Any], reason: str | None = None) -> list[str]:
        """Call ``fn(batch)``; it returns a boolean mask (True: exclude), a list of keys, or a dict of key to
        reason. Returns the keys marked in this batch."""
        recording.params("apply_filter", filter=fn, **({"reason": reason} if reason else {}))
        result = fn(batch)
        default = reason or getattr(fn, "__name__", "filter")
        if isinstance(result, dict):
            marked = {str(k): str(v) for k, v in result.items()}
        elif isinstance(result, list | tuple | set) and (not result or isinstance(next(iter(result)), str)):
            marked = {str(k): default for k in result}
        else:
            mask = np.asarray(result, dtype=bool)
            if mask.shape != (len(batch),):
                raise BlaseError(
                    f"{default} returned {mask.shape[0] if mask.ndim else 'a single'} values for a batch of "
                    f"{len(batch)} records; return one True/False per record (True: exclude)."
                )
            marked = {batch.keys[i]: default for i in np.flatnonzero(mask)}
        known = set(batch.keys)
        unknown = [k for k in marked if k not in known]
        if unknown:
            raise BlaseError(f"{default} named key {unknown[0]!r}, which is not in this batch.")
        self._marked.update(marked)
        return list(marked)

    def remove_keys(self, batch: Batch) -> Batch:
        """The batch without its marked records; those keys join the exclusion set."""
        drop = [i for i, k in enumerate(batch.keys) if k in self._marked]
        for i in drop:
            key = batch.keys[i]
            self.excluded[key] = self._marked.pop(key)
        if not drop:
            return batch
        keep = np.ones(len(batch), dtype=bool)
        keep[drop] = False
        return batch.select(keep)

    def exclude(self, keys: dict[str, str] | list[str], reason: str = "excluded") -> None:
        """Add keys directly (e.g. from a list someone reviewed)."""
        self.excluded.update(keys if isinstance(keys, dict) else {k: reason for k in keys})

    def clear_keys(self) -> str | None:
        """Save the exclusion set in the project as the next version of its name (``cleaned_v1``...), also
        outside any run; keep a JSON copy as an artifact of the step; start an empty set. Returns the saved
        name (None outside any project: the set stays in ``excluded_sets`` only)."""
        self.excluded.update(self._marked)
        self._marked.clear()
        recording.params("clear_keys", name=self.name)
        try:
            saved = recording.save_exclusions(self.name, self.excluded)
        except ConfigError as exc:  # no project: nowhere to keep it but here
            recording.say("exclusion set not saved (%s)", exc)
            self.excluded_sets.append(dict(self.excluded))
            self.excluded = {}
            return None
        folder = recording.artifact_dir()
        if folder is not None:
            path = folder / "exclusions" / f"{saved}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.excluded, indent=1, sort_keys=True))
        elif recording.active():
            with tempfile.TemporaryDirectory(prefix="blase-clean-") as tmp:
                path = Path(tmp) / f"{saved}.json"
                path.write_text(json.dumps(self.excluded, indent=1, sort_keys=True))
                recording.artifact(path, name=f"exclusions/{saved}.json")
        recording.metrics({f"excluded_{self.name}": float(len(self.excluded))})
        recording.log("saved exclusion set %s (%d keys)", saved, len(self.excluded))
        self.saved.append(saved)
        self.excluded = {}
        return saved
