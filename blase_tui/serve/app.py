"""The HTTP app of ``blase serve``: a deployment's model behind MLflow's scoring protocol.

- ``POST /invocations``: MLflow's JSON formats or CSV (:mod:`blase_tui.serve.payload`); answers
  ``{"predictions": [...]}``, plus ``"probabilities"`` and ``"classes"`` with ``?probabilities=true`` (or
  ``"params": {"probabilities": true}``). A bad payload is a 4xx with ``{"error_code", "message"}`` naming the
  problem; the server goes on answering.
- ``GET /ping`` (200 while the model is loaded), ``/health`` (counts and the prediction log's state),
  ``/version`` (blase's version), ``/metadata`` (model, version, training run, signature).

Every predicted record goes to the prediction log (:mod:`blase_tui.serve.predlog`) unless it is off.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np
from fastapi import FastAPI
from fastapi.responses import Response

from blase_tui.serve.model import ServedModel
from blase_tui.serve.payload import PayloadError, first_missing, flag, missing_refused, parse, to_input
from blase_tui.serve.predlog import Entry, PredictionLog

MAX_ROWS = 10_000
MAX_BODY = 16 * 1024 * 1024
_ERROR_CODES = {400: "BAD_REQUEST", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
                422: "INVALID_PARAMETER_VALUE", 500: "INTERNAL_ERROR"}


def _dumps(value: Any) -> bytes:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)


def _listable(values: np.ndarray) -> Any:
    """An array as orjson writes it fastest: numeric arrays contiguous, anything else as Python values."""
    values = np.asarray(values)
    return np.ascontiguousarray(values) if values.dtype.kind in "biuf" else values.tolist()


def default_log_dir(folder: Path, name: str) -> Path:
    """Where a deployment's predictions are logged: ``predictions/<model>/`` of the project it lies in (or the
    working directory's project), else beside the deployment."""
    from blase_tui.core.config import find_project_root

    root = find_project_root(folder) or find_project_root()
    return (root / "predictions" / name) if root is not None else (folder / "predictions")


def create_app(target: Path | ServedModel, *, log_dir: Path | None | bool = True, max_rows: int = MAX_ROWS,
               max_body: int = MAX_BODY, device: str | None = None, flush_seconds: float = 1.0,
               trust: bool = False) -> Any:
    """The FastAPI app serving ``target`` (a deployment folder, or a loaded :class:`ServedModel`). ``log_dir``:
    True for the default place, a folder, or False/None for no prediction log. ``trust``: load the model even
    where that runs code from its file, as ``blase serve --trust``."""
    import blase_tui

    served = target if isinstance(target, ServedModel) else ServedModel(Path(target), device=device, trust=trust)
    log: PredictionLog | None = None
    if log_dir:
        folder = default_log_dir(served.folder, served.name) if log_dir is True else Path(log_dir)
        log = PredictionLog(folder, model=served.name, version=served.version, flush_seconds=flush_seconds)
    stats = {"requests": 0, "records": 0, "client_errors": 0, "server_errors": 0, "started": time.time()}
    # a request's id when the client sends none: 80 random bits for this process, then a count (32 hex digits,
    # as a uuid4's, unique across workers and restarts, without a uuid's ~5 us a request)
    prefix, counter = uuid.uuid4().hex[:20], itertools.count()
    signature = served.signature

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_app: Any):  # type: ignore[no-untyped-def]
        if log is not None:
            log.start()
        try:
            yield
        finally:
            if log is not None:
                log.close()

    app = FastAPI(title=f"blase: {served.label}", version=blase_tui.__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.served = served
    app.state.log = log

    def error(status: int, message: str, request_id: str = "") -> tuple[int, bytes, str]:
        key = "client_errors" if status < 500 else "server_errors"
        stats[key] += 1
        body = {"error_code": _ERROR_CODES.get(status, "BAD_REQUEST"), "message": message}
        return status, _dumps(body), request_id

    def answer(body: bytes, content_type: str, want_proba: str | None, request_id: str | None,
               started: float) -> tuple[int, bytes, str]:
        """``(status, JSON body, request id)`` for one ``/invocations`` request (``want_proba``: the query's
        ``probabilities`` value, if any)."""
        try:
            asked = flag(want_proba, "?probabilities") if want_proba is not None else False
            parsed = parse(body, content_type, probabilities=asked)
            x, n = to_input(parsed, signature, max_rows=max_rows)
        except PayloadError as exc:
            return error(exc.status, exc.message)
        # a missing value goes to a model that may take it (HistGradientBoosting, a pipeline with an imputer);
        # a network takes none, and any model that fails on one gets a 422 naming where it is, never a 500. The
        # input is searched for one only then: not on the hot path of a scikit-learn model's good requests
        if served.framework != "sklearn" and (missing := first_missing(x, served.columns)) is not None:
            return error(422, missing_refused(missing, served.label).message)
        try:
            predictions, proba = served.predict(x)
        except Exception as exc:  # noqa: BLE001 - one bad request must not take the server down
            if (missing := first_missing(x, served.columns)) is not None:
                return error(422, missing_refused(missing, served.label).message)
            return error(500, f"the model failed on this input: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        if parsed.probabilities and proba is None:
            return error(422, f"{served.label} gives no probabilities (it is not a classifier with predict_proba);"
                              " ask without probabilities.")
        latency = (time.perf_counter() - started) * 1000
        request_id = request_id or f"{prefix}{next(counter):012x}"
        stats["records"] += n
        if log is not None:
            log.add(Entry(request_id, time.time(), latency, x, predictions, proba, served.columns))
        out: dict[str, Any] = {"predictions": _listable(predictions)}
        if parsed.probabilities:
            out["probabilities"] = _listable(proba)
            if served.classes is not None:
                out["classes"] = served.classes.tolist()
        try:
            return 200, _dumps(out), request_id
        except TypeError as exc:  # a prediction JSON cannot hold: said, not a bare 500
            return error(500, f"the model's output cannot be written as JSON: {exc}", request_id)

    async def invocations(scope: dict[str, Any], receive: Any, send: Any) -> None:
        """``POST /invocations`` as a plain ASGI handler: the hot path skips the framework's routing and
        request objects (FastAPI serves the other routes)."""
        started = time.perf_counter()
        stats["requests"] += 1
        headers = {k.lower(): v for k, v in scope["headers"]}
        declared = headers.get(b"content-length", b"")
        if scope["method"] != "POST":
            result = error(405, "/invocations takes POST requests.")
        elif declared.isdigit() and int(declared) > max_body:
            result = error(413, f"the body is {int(declared)} bytes, more than the {max_body} this server takes"
                                " (--max-body); send fewer records per request.")
        else:
            chunks, size, more, result = [], 0, True, None
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > max_body:
                    result = error(413, f"the body is more than the {max_body} bytes this server takes"
                                        " (--max-body); send fewer records per request.")
                    break
                chunks.append(chunk)
                more = message.get("more_body", False)
            if result is None:
                query = scope.get("query_string", b"")
                want_proba = parse_qs(query.decode(), keep_blank_values=True).get("probabilities", [None])[0] \
                    if b"probabilities" in query else None
                rid = headers.get(b"x-request-id")
                result = answer(b"".join(chunks), headers.get(b"content-type", b"application/json").decode("latin-1"),
                                want_proba, rid.decode("latin-1") if rid else None, started)
        status, content, request_id = result
        out_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
        if request_id:
            out_headers.append((b"x-request-id", request_id.encode("latin-1")))
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": content})

    @app.get("/ping")
    async def ping() -> Response:
        return Response("\n", media_type="text/plain")

    @app.get("/health")
    async def health() -> Response:
        # counts are this worker process's: with --workers N, each answers with its own (worker: its pid)
        body: dict[str, Any] = {"status": "ok", "model": served.name, "version": served.version,
                                "worker": os.getpid(), "uptime_s": round(time.time() - stats["started"], 3),
                                **{k: v for k, v in stats.items() if k != "started"}}
        if log is not None:
            body["prediction_log"] = {"folder": str(log.folder), "rows_written": log.rows_written,
                                      "files": log.files_written, "pending": log.pending, "errors": log.errors,
                                      "last_error": log.last_error}
        return Response(_dumps(body), media_type="application/json")

    @app.get("/version")
    async def version() -> Response:
        return Response(blase_tui.__version__, media_type="text/plain")

    @app.get("/metadata")
    async def metadata() -> Response:
        manifest = served.manifest
        body = {"model": manifest["model"], "chosen_because": manifest.get("chosen_because"),
                "deployed_by_run": manifest.get("deployed_by_run"), "signature": signature,
                "packages": manifest.get("packages"), "blase": blase_tui.__version__,
                "prediction_log": str(log.folder) if log is not None else None}
        return Response(_dumps(body), media_type="application/json")

    return _Served(app, invocations)


class _Served:
    """The ASGI app: ``/invocations`` goes straight to its handler, everything else (the other routes,
    lifespan events) to FastAPI."""

    def __init__(self, api: Any, invocations: Any) -> None:
        self.api = api
        self.invocations = invocations
        self.state = api.state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/invocations":
            await self.invocations(scope, receive, send)
        else:
            await self.api(scope, receive, send)
