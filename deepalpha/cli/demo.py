"""`deepalpha demo`: the README's first command (synthetic market end to end)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: Path = typer.Option(
            Path("runs/demo"), help="where the demo writes its market and runs"
        ),
        stocks: int = typer.Option(400, min=50, help="synthetic stocks (>= 50)"),
        seed: int = typer.Option(7, help="random seed"),
        quick: bool = typer.Option(False, help="CI-sized settings (fewer windows and epochs)"),
        quiet: bool = typer.Option(False, help="no progress output"),
    ) -> None:
        """Build a small synthetic market and run the research pipelines on it."""
        from deepalpha.workflows.demo import run_demo

        run_demo(out=out, stocks=stocks, seed=seed, quick=quick, progress=not quiet)
