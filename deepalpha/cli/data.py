"""`deepalpha data ...` commands: synth (synthetic market), info, validate, import, export."""

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
    path: Path = typer.Argument(
        ..., help="Data folder: deepalpha layout (real, synthetic, imported) or a Qlib folder."
    ),
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
    head.add_row("layout", str(p.meta.get("layout", "cn")))
    head.add_row("dates", f"{p.dates[0]} .. {p.dates[-1]}  ({T} trading days)")
    head.add_row("stocks", f"{N}")
    head.add_row("fields", ", ".join(p.fields))
    head.add_row("listed stock-days", f"{n_listed:,} ({n_listed / (T * N):.1%} of the grid)")
    for k in ("suspended", "limit_up", "limit_down", "tradable"):
        if k in p.masks:
            head.add_row(f"{k} share", f"{p.masks[k].sum() / n_listed:.2%} of listed stock-days")
    head.add_row("missing bars", str(p.meta.get("missing_bars", "?")))
    for src, uses in p.meta.get("missing_inputs", {}).items():
        head.add_row("missing input", f"{src} -> {', '.join(uses)}")
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
    path: Path = typer.Argument(
        ..., help="Data folder to check: deepalpha layout or a plain Qlib provider folder."
    ),
) -> None:
    """List every problem in a data folder; exit 1 if there is any.

    A deepalpha layout needs every file; a Qlib provider folder is checked as it is: missing
    fundamentals and industries (needed only by System A and the risk model) are notes."""
    from deepalpha.data.audit import validate_cn

    rep = validate_cn(path)
    for n in rep.notes:
        out.print(f"[yellow]note:[/] {escape(n)}", highlight=False, soft_wrap=True)
    for w in rep.warnings:
        out.print(f"[magenta]warning:[/] {escape(str(w))}", highlight=False, soft_wrap=True)
    for e in rep.problems:
        out.print(f"[red]problem:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
    if rep.problems:
        out.print(
            f"[bold red]{len(rep.problems)} problem(s) in {escape(str(path))}[/]", highlight=False
        )
        raise typer.Exit(1)
    out.print(f"[bold green]ok: no problems found in {escape(str(path))}[/]", highlight=False)


@app.command("import")
def import_(
    out_dir: Path = typer.Argument(..., help="Data folder to create (deepalpha layout)."),
    bars: list[str] = typer.Option(
        ...,
        "--bars",
        help="Daily bars: a Parquet/CSV file, a folder or a glob. Repeat to join more tables "
        "on (date, code), e.g. Tushare adj_factor and daily_basic.",
    ),
    prices: str = typer.Option(
        ..., "--prices", help="raw (as traded; back-adjusted with the factor) or adjusted."
    ),
    map_: list[str] = typer.Option(
        [],
        "--map",
        help="Column names: canonical=source pairs, e.g. date=TradingDay,code=SecuCode, or a "
        "YAML file of canonical: source.",
    ),
    membership: str | None = typer.Option(
        None, help="Index membership: spells (index, code, start, end) or date, index, code."
    ),
    fundamentals: str | None = typer.Option(
        None, help="Long report table: code, period_end[, ann_date], total_mv, pe, roe, ..."
    ),
    industries: str | None = typer.Option(None, help="Industry table: code, industry[, name]."),
    industry_map: list[str] = typer.Option(
        [], "--industry-map", help="Industry name=risk-model group pairs (e.g. 银行=banks)."
    ),
    index_bars: str | None = typer.Option(
        None, help="Index bars (date, code, open, high, low, close, volume) for benchmarks."
    ),
    overwrite: bool = typer.Option(False, help="Replace an existing folder (after success)."),
    check: bool = typer.Option(True, help="Load the new folder once before the rename."),
) -> None:
    """Long tables (Parquet/CSV; Tushare names recognised) -> a checked deepalpha data folder.

    Bad input stops the import with the file, row and column; nothing is written then."""
    from deepalpha.data.importer import import_tables, parse_map
    from deepalpha.errors import DeepAlphaError

    try:
        rep = import_tables(
            out_dir,
            bars=bars,
            prices=prices,  # type: ignore[arg-type]
            mapping=parse_map(map_),
            membership=membership,
            fundamentals=fundamentals,
            industries=industries,
            index_bars=index_bars,
            industry_map=parse_map(industry_map),
            overwrite=overwrite,
            check=check,
        )
    except DeepAlphaError as e:
        _fail(e)
    for n in rep.notes:
        out.print(f"[yellow]note:[/] {escape(n)}", highlight=False, soft_wrap=True)
    out.print(
        f"[bold green]imported[/] {rep.stocks} stocks x {rep.days} days "
        f"({rep.dates[0]} .. {rep.dates[1]}), {rep.files} files -> {escape(str(rep.out))} "
        f"in {rep.seconds:.1f} s",
        highlight=False,
    )


@app.command("export")
def export(
    path: Path = typer.Argument(..., help="Data folder to read (any layout load_cn reads)."),
    out_dir: Path = typer.Argument(..., help="Folder to write."),
    to: str = typer.Option("qlib", help="qlib (a Qlib provider folder) | long (Parquet tables)."),
    overwrite: bool = typer.Option(False, help="Replace an existing folder."),
    cache: bool = typer.Option(True, help="Use / fill the panel cache."),
) -> None:
    """Our panel out: a Qlib provider folder (volume in Qlib's shares / factor, universes as
    instruments/<index>.txt spells, index bars included) or long Parquet (bars, membership)."""
    from deepalpha.data.cn import load_cn, load_indices
    from deepalpha.data.export import export_long, export_qlib
    from deepalpha.errors import ConfigError, DataError, DeepAlphaError

    try:
        if to not in ("qlib", "long"):
            raise ConfigError(f"--to must be qlib or long, got {to!r}")
        panel = load_cn(path, cache=cache)
        if to == "qlib":
            try:
                ix = load_indices(path)
            except DataError:
                ix = None
            dest = export_qlib(panel, out_dir, indices=ix, overwrite=overwrite)
        else:
            dest = export_long(panel, out_dir, overwrite=overwrite)
    except DeepAlphaError as e:
        _fail(e)
    out.print(f"[bold green]exported[/] {escape(str(path))} -> {escape(str(dest))} ({to})")
