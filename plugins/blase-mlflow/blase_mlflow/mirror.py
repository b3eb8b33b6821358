"""``[plugins.mlflow] mirror = true``: each run of the project is exported to ``tracking_uri`` when it closes.
blase calls this in a process of its own after the run closed (``blase.run_closed`` entry point), so an MLflow
server that is slow or down never delays or fails a step; the outcome is the run's tag ``mlflow.mirror`` and
one line in ``.blase/plugins.log``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def run_closed(project_root: Path, run_id: str, settings: dict[str, Any]) -> str | None:
    if not settings.get("mirror"):
        return None
    from blase_tui.plugin import BlaseError, Project

    project = Project.discover(Path(project_root))
    store = project.store
    uri = settings.get("tracking_uri")
    if not uri:
        store.set_tags(run_id, {"mlflow.mirror": "not exported: no tracking_uri in [plugins.mlflow]"})
        raise BlaseError("mirror = true needs tracking_uri in [plugins.mlflow] of blase.toml.")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # a server that is down: give up soon
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    from blase_mlflow.export import export_runs
    from blase_tui.plugin import reason

    try:
        done = export_runs(store, [run_id], tracking_uri=str(uri), experiment=str(settings.get("experiment")
                                                                                   or project.name),
                           project_name=project.name)[0]
    except Exception as exc:
        why = reason(exc)[:300]
        store.set_tags(run_id, {"mlflow.mirror": f"failed: {why}"})
        store.write_run_json(run_id)
        raise BlaseError(f"not exported to MLflow at {uri}: {why}") from exc
    store.set_tags(run_id, {"mlflow.mirror": f"{uri} run {done.mlflow_run_id}"})
    store.write_run_json(run_id)
    return f"exported to MLflow at {uri} as run {done.mlflow_run_id}"
