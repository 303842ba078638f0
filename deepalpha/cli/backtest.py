"""`deepalpha backtest PREDICTIONS ...`: index-enhancement backtest of any prediction file."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``backtest`` command to the main app."""
