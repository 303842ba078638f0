"""`deepalpha data ...` commands: synth (synthetic market), info, validate."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deepalpha.cli import data_synth

app = typer.Typer(help="Load, inspect, validate and synthesise market data.", no_args_is_help=True)
data_synth.register(app)

out = Console()
err = Console(stderr=True)


def _fail(e: Exception) -> NoReturn:
    """Print a `DeepAlphaError` as one line, keeping its ``[file=..., code=...]`` suffix (rich
    would read it as markup), and exit 2 like the main CLI."""
    err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def info(
    path: Path = typer.Argument(..., help="CN-layout folder (real data or a synthetic market)."),
    cache: bool = typer.Option(True, help="Use / fill the panel cache."),
    n_dates: int = typer.Option(6, help="How many dates to show universe sizes on."),
) -> None:
    """Dates, stocks, fields, coverage, universe sizes on a few dates, suspended share."""
    import numpy as np

    from deepalpha.data.cn import load_cn
    from deepalpha.errors import DeepAlphaError

    try:
        p = load_cn(path, cache=cache)
    except DeepAlphaError as e:
        _fail(e)
    T, N, _ = p.shape
    listed = p.mask("listed")
    n_listed = max(int(listed.sum()), 1)

    head = Table(title=escape(str(path)), show_header=False)
    head.add_row("dates", f"{p.dates[0]} .. {p.dates[-1]}  ({T} trading days)")
    head.add_row("stocks", f"{N}")
    head.add_row("fields", ", ".join(p.fields))
    head.add_row("listed stock-days", f"{n_listed:,} ({n_listed / (T * N):.1%} of the grid)")
    for k in ("suspended", "limit_up", "limit_down", "tradable"):
        if k in p.masks:
            head.add_row(f"{k} share", f"{p.masks[k].sum() / n_listed:.2%} of listed stock-days")
    head.add_row("missing bars", str(p.meta.get("missing_bars", "?")))
    out.print(head)

    cov = Table(title="coverage: finite values within listed stock-days")
    cov.add_column("field")
    cov.add_column("coverage", justify="right")
    for f in p.fields:
        v = p.field(f)
        cov.add_row(f, f"{(np.isfinite(v) & listed).sum() / n_listed:.1%}")
    out.print(cov)

    idx = np.unique(np.linspace(0, T - 1, max(n_dates, 1)).round().astype(int))
    uni = Table(title="universe sizes (listed members)")
    uni.add_column("date")
    names = [k for k in ("csi300", "csi500", "csi800", "csi1000", "all", "listed", "tradable")]
    names = [k for k in names if k in p.masks]
    for k in names:
        uni.add_column(k, justify="right")
    for t in idx:
        uni.add_row(str(p.dates[t]), *(str(int(p.masks[k][t].sum())) for k in names))
    out.print(uni)
    for c in p.meta.get("caveats", []):
        out.print(f"[dim]caveat: {escape(c)}[/]", highlight=False)


@app.command()
def validate(
    path: Path = typer.Argument(..., help="CN-layout folder to check."),
) -> None:
    """List every problem in a CN-layout folder; exit 1 if there is any."""
    from deepalpha.data.validate import validate_cn

    rep = validate_cn(path)
    for n in rep.notes:
        out.print(f"[yellow]note:[/] {escape(n)}", highlight=False, soft_wrap=True)
    for e in rep.problems:
        out.print(f"[red]problem:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
    if rep.problems:
        out.print(
            f"[bold red]{len(rep.problems)} problem(s) in {escape(str(path))}[/]", highlight=False
        )
        raise typer.Exit(1)
    out.print(f"[bold green]ok: no problems found in {escape(str(path))}[/]", highlight=False)
