"""`blase serve`: a deployment's model behind an HTTP API (FastAPI and uvicorn, the ``serve`` extra), with every
prediction logged for ``Monitor``. A client of the engine, as the CLI and the TUI are: the engine never imports
it."""
