"""`deepalpha report RUN_DIR [--out FILE.html]`: the self-contained HTML report of a run."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app``."""

    @app.command()
    def report(
        run_dir: Path = typer.Argument(..., help="a finished run directory (has metrics.json)"),
        out: Path = typer.Option(None, help="output HTML file (default RUN_DIR/report.html)"),
    ) -> None:
        """Write one self-contained HTML page (plots embedded, opens offline) for a run."""
        from rich.console import Console

        from deepalpha.report.html import write_report

        path = write_report(run_dir, out)
        size = path.stat().st_size
        Console().print(f"report: {path} ({size / 1024:,.0f} KiB)", highlight=False)
