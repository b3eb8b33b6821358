"""Worker failures become a notification instead of ending the app. ``Worker.StateChanged`` does not
bubble, so every screen or widget that starts workers mixes this in."""

from __future__ import annotations

from typing import Any

from textual.worker import Worker, WorkerState

from blase_tui.errors import BlaseError


def error_text(error: BaseException) -> str:
    return str(error) if isinstance(error, BlaseError) else f"{type(error).__name__}: {error}"


class ShowsWorkerErrors:
    """``on_worker_state_changed``: notify the error of a failed worker, then call ``worker_failed``."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR or event.worker.error is None:
            return
        node: Any = self
        node.app.notify(error_text(event.worker.error), title="that did not work", severity="error", timeout=10)
        node.worker_failed(event.worker)

    def worker_failed(self, worker: Worker[Any]) -> None:
        """Hook for screens that must undo a state (e.g. a busy flag) when a worker fails."""
