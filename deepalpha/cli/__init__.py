"""The ``deepalpha`` command line. Each command group lives in its own module; heavy imports
(torch, cvxpy) happen inside the commands so ``deepalpha --help`` stays fast."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from deepalpha.cli import backtest, data, demo, models, report, risk, run
from deepalpha.cli.errors import print_error
from deepalpha.errors import DeepAlphaError

app = typer.Typer(
    name="deepalpha",
    help="Neural stock-selection research: data, risk model, models, evaluation, portfolios.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data.app, name="data")
app.add_typer(risk.app, name="risk")
app.add_typer(models.app, name="models")
demo.register(app)
backtest.register(app)
run.register(app)
report.register(app)


def main() -> None:
    """Console-script entry point: bad input prints one red line and exits 2, no traceback."""
    try:
        app()
    except DeepAlphaError as e:
        print_error(e)
        sys.exit(2)
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":
    main()
