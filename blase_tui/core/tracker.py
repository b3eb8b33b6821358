"""Writes one run's params, metrics, tags and artifacts to the store. Shared by the step context and the public
``Track`` class. Metrics are buffered and written in batches (never one transaction per value)."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from blase_tui.store.events import EventWriter
    from blase_tui.store.runstore import RunStore

FLUSH_EVERY = 1000  # metrics
FLUSH_SECONDS = 1.0


class RunTracker:
    def __init__(
        self,
        store: RunStore,
        run_id: str,
        *,
        step_run_id: int = 0,
        folder: Path | None = None,
        events: EventWriter | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.step_run_id = step_run_id
        self.folder = folder or store.run_dir(run_id)
        self.events = events
        self._metrics: deque[tuple[str, int, str, float, int | None, float]] = deque()
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._timer: threading.Thread | None = None
        self._closed = threading.Event()
        self._metrics_file = None if events is not None else self.folder / "metrics.jsonl"

    # ------------------------------------------------------------ metrics
    def log_metric(self, key: str, value: float, iteration: int | None = None) -> None:
        now = time.time()
        value = float(value)
        self._metrics.append((self.run_id, self.step_run_id, key, value, iteration, now))  # deque: thread-safe
        if self.events is not None:
            self.events.emit("metric", key=key, value=value, iteration=iteration)
        if len(self._metrics) >= FLUSH_EVERY or time.monotonic() - self._last_flush > FLUSH_SECONDS:
            self.flush()
        elif self._timer is None:
            self._start_timer()

    def log_metrics(self, metrics: dict[str, float], iteration: int | None = None) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, iteration)

    def _start_timer(self) -> None:
        # A step that logs one metric and then works for an hour should still show it in the store.
        def loop() -> None:
            while not self._closed.wait(FLUSH_SECONDS):
                if self._metrics:
                    self.flush()

        self._timer = threading.Thread(target=loop, name="blase-metrics", daemon=True)
        self._timer.start()

    def flush(self) -> None:
        # One flush at a time, taking values in the order they were logged, so the store's row order is the
        # logging order ("last value" means the last one logged).
        with self._lock:
            self._last_flush = time.monotonic()
            rows = [self._metrics.popleft() for _ in range(len(self._metrics))]
            if not rows:
                return
            if self.events is not None:
                # the events file first: every metric the database holds is in events.jsonl too, so a kill -9
                # never leaves the index with values the run folder (and `runs reindex`) would not have
                self.events.flush()
            self.store.log_metrics(rows)
            if self._metrics_file is not None:
                import json

                with open(self._metrics_file, "a", encoding="utf-8") as fh:
                    fh.write("".join(
                        json.dumps({"t": r[5], "type": "metric", "key": r[2], "value": r[3], "iteration": r[4]}) + "\n"
                        for r in rows
                    ))

    def close(self) -> None:
        self._closed.set()
        self.flush()

    # --------------------------------------------------- params, tags, artifacts
    def log_params(self, params: dict[str, Any]) -> None:
        self.store.log_params(self.run_id, params, self.step_run_id)

    def set_tags(self, tags: dict[str, Any]) -> None:
        self.store.set_tags(self.run_id, tags)

    def log_artifact(self, path: str | Path, name: str | None = None) -> list[tuple[str, str, int]]:
        """Copy a file (or every file of a folder) into the content store and the run folder. ``name`` is a
        relative path inside the run's ``artifacts/`` folder; anything else is refused before a file is
        touched. Links are followed: the content is copied, never the link."""
        from blase_tui.errors import BlaseError
        from blase_tui.store.cas import artifact_name

        source = Path(path)
        if not source.exists():
            raise BlaseError(f"cannot log artifact {source}: no such file or folder.")
        base = artifact_name(name if name is not None else source.name)
        files = [(base, source)] if source.is_file() else [
            (f"{base}/{p.relative_to(source).as_posix()}", p) for p in sorted(source.rglob("*")) if p.is_file()
        ]
        items = []
        artifacts = self.folder / "artifacts"
        for rel, file in files:
            dest = artifacts / rel
            if not dest.parent.resolve().is_relative_to(artifacts.resolve()) and dest.parent.exists():
                raise BlaseError(f"cannot log artifact {rel}: {dest.parent} leads outside the run's artifacts"
                                 " folder (a link); remove the link or pick another name.")
            digest, size = self.store.cas.put_file(file)
            self.store.cas.link_into(digest, dest)
            items.append((rel, digest, size))
        self.store.add_artifacts(self.run_id, self.step_run_id, items)
        if self.events is not None:
            for rel, digest, size in items:
                self.events.emit("artifact", name=rel, hash=digest, size=size)
        return items

    def ingest_artifact_dir(self) -> tuple[list[tuple[str, str, int]], list[str]]:
        """Files the step wrote straight into its ``artifacts/`` folder join the content store; returns them,
        and the links to folders found there, which are removed (their targets are not the run's to keep)."""
        artifacts = self.folder / "artifacts"
        if not artifacts.is_dir():
            return [], []
        items, skipped = self.store.cas.ingest_tree(artifacts)
        for name in skipped:
            (artifacts / name).unlink()
        if items:
            self.store.add_artifacts(self.run_id, self.step_run_id, items)
        for empty in sorted((p for p in artifacts.rglob("*") if p.is_dir()), reverse=True):
            if not any(empty.iterdir()):
                shutil.rmtree(empty, ignore_errors=True)
        return items, skipped

    def log_exclusion_set(self, ref: str, resolved: str, digest: str, *, role: str, records: int) -> None:
        """An exclusion set this step saved (``role="output"``) or read (``"input"``, as asked: ``cleaned`` is
        the newest version) as one of its datasets, ``exclusions:cleaned_v1``."""
        from blase_tui.store.exclusions import DATASET

        self.store.add_dataset(self.run_id, self.step_run_id, role=role, name=DATASET + ref, path=DATASET + resolved,
                               digest=digest, fingerprint=None, records=records, size=None)
        if self.events is not None:
            self.events.emit("dataset", role=role, name=DATASET + ref, hash=digest, bytes=0)

    def log_dataset(self, path: str | Path, *, role: str = "output", name: str | None = None,
                    digest: str | None = None, records: int | None = None) -> str:
        """Record a dataset (file or folder) this run read or wrote, by content hash and a cheap fingerprint
        (used to notice later that it changed)."""
        from blase_tui.store import remote
        from blase_tui.store.filehash import dataset_hash
        from blase_tui.store.hashing import fingerprint

        if remote.is_url(str(path)):  # kept by URL, hashed by what the server says of its objects (never copied)
            url = str(path)
            found, size = remote.fingerprint(url)
            digest = digest or found
            self.store.add_dataset(self.run_id, self.step_run_id, role=role, name=name or url, path=url,
                                   digest=digest, fingerprint=found, records=records, size=size)
            if self.events is not None:
                self.events.emit("dataset", role=role, name=name or url, hash=digest, bytes=size)
            return digest
        source = Path(path).resolve()
        if not source.exists():
            from blase_tui.errors import BlaseError

            raise BlaseError(f"cannot record dataset {path}: no such file or folder.")
        digest = digest or dataset_hash(self.store, source)
        try:
            rel = source.relative_to(self.store.root).as_posix()
        except ValueError:
            rel = str(source)
        size = source.stat().st_size if source.is_file() else sum(
            p.stat().st_size for p in source.rglob("*") if p.is_file()
        )
        self.store.add_dataset(
            self.run_id, self.step_run_id, role=role, name=name or rel, path=rel, digest=digest,
            fingerprint=fingerprint(source), records=records, size=size,
        )
        if self.events is not None:
            self.events.emit("dataset", role=role, name=name or rel, hash=digest, bytes=size)
        if role == "output" and not Path(rel).is_absolute() and self.store.keep_outputs > 0:
            self._keep_output(source, rel, digest)
        return digest

    def _keep_output(self, source: Path, rel: str, digest: str) -> None:
        """Keep an output's content (``runs restore`` puts it back); a problem is one warning, never a failure."""
        try:
            why = self.store.cas.keep_dataset(source, digest, self.store.keep_outputs)
        except OSError as exc:
            why = f"{exc.strerror or exc}"
        if why is not None:
            message = (f"blase: output {rel} is recorded by its hash only ({why}); `blase runs restore` cannot bring"
                       " it back (raise [project] keep_outputs in blase.toml to keep it).")
            print(message, file=sys.stderr)  # inside a step: its log and events too
