"""The CLI stays light: no torch, tensorflow, textual or plugin for --help, runs list, or a light step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import _env

PROBE = """
import json, sys
sys.argv = ["blase", *json.loads(sys.argv[1])]
from blase_tui.cli.hot import run
try:
    run()
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in ("torch", "tensorflow", "textual", "sklearn", "pandas", "pyarrow", "fastapi", "uvicorn",
                          "astropy", "openai", "blase_fits", "blase_mlflow", "blase_dask", "mlflow", "dask")
               if m in sys.modules)
sys.__stderr__.write("HEAVY=" + json.dumps(heavy) + "\\n")
"""


@pytest.mark.parametrize("args", [["--help"], ["runs", "list"], ["step", "b"], ["runs", "show", "latest"]])
def test_cli_does_not_import_heavy_frameworks(project: Path, blase, args: list[str]) -> None:
    blase("step", "c", cwd=project, check=True)  # so that `runs show latest` has a run
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], cwd=project, env=_env(),
                          capture_output=True, text=True, timeout=60)
    heavy = json.loads(proc.stderr.split("HEAVY=")[-1])
    assert heavy == [], f"blase {' '.join(args)} imported {heavy}"
