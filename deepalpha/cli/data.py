"""`deepalpha data ...` commands: synth (synthetic market), info, validate."""

from __future__ import annotations

import typer

from deepalpha.cli import data_synth

app = typer.Typer(help="Load, inspect, validate and synthesise market data.", no_args_is_help=True)
data_synth.register(app)
