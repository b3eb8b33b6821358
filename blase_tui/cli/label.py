"""`blase label`: keyboard labelling for active-learning rounds (built by the labelling work)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Label records in active-learning rounds; export and count labels.", no_args_is_help=False)
