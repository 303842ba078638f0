"""`deepalpha data synth`: write a synthetic market in the CN layout."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command to the ``data`` group."""
