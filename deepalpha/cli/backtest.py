"""`deepalpha backtest PREDICTIONS ...`: index-enhancement backtest of any prediction file."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

FMT_PCT = (
    "annual_return",
    "bench_annual_return",
    "excess_return",
    "tracking_error",
    "ex_ante_te",
    "proxy_realised_te",
    "excess_max_drawdown",
    "monthly_win_rate",
    "turnover_per_rebalance",
    "cost_annual",
    "proxy_excess_return",
    "proxy_tracking_error",
    "price_excess_return",
    "price_tracking_error",
    "tr_excess_return",
    "tr_tracking_error",
    "relaxed_share",
)


def _fmt(k: str, v: Any) -> str:
    if v is None:
        return "-"
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    if v != v:
        return "-"
    if k in FMT_PCT or k.endswith("_return"):
        return f"{100 * v:.2f}%"
    if k in ("days", "rebalances"):
        return f"{v:.0f}"
    return f"{v:.3f}"


def _date(s: str | None, name: str) -> Any:
    from deepalpha.errors import ConfigError

    if s is None:
        return None
    try:
        return datetime.strptime(s, "%Y-%m-%d").date()
    except ValueError:
        raise ConfigError(f"--{name} must be YYYY-MM-DD, got {s!r}") from None


def register(app: typer.Typer) -> None:
    """Add the ``backtest`` command to the main app."""

    @app.command()
    def backtest(
        predictions: Path = typer.Argument(
            ..., help="prediction file: Parquet (date, asset, score) or a Qlib pred.pkl"
        ),
        data: Path = typer.Option(..., "--data", help="CN-layout data folder (real or synthetic)"),
        index: str = typer.Option("csi500", help="csi300 | csi500 | csi800 | csi1000"),
        risk: Path | None = typer.Option(
            None, "--risk", help="risk model dir (deepalpha risk build); default: simple model"
        ),
        freq: str = typer.Option("weekly", help="weekly | monthly"),
        te: float = typer.Option(0.05, help="annual ex-ante tracking-error limit"),
        turnover: float = typer.Option(0.30, help="one-sided turnover limit per rebalance"),
        industry_bound: float = typer.Option(0.02, help="|active industry weight|"),
        style_bound: float = typer.Option(0.3, help="|active style exposure| in sigma"),
        stock_bound: float = typer.Option(0.015, help="|active weight| per stock"),
        min_index_weight: float = typer.Option(0.8, help="minimum weight in index members"),
        max_outside: int = typer.Option(
            300,
            help="best-scored non-members as candidates (from the data's point-in-time 'all' "
            "universe when it has one)",
        ),
        execution: str = typer.Option("close", help="close | vwap (next day's)"),
        slippage_bps: float = typer.Option(
            10.0, help="slippage per side, basis points (half-spread + impact; see costs.py)"
        ),
        benchmark: str = typer.Option(
            "total_return",
            help="primary benchmark: total_return (price index + accrued member dividend "
            "yield) | index (price index, no dividends) | proxy (cap-weighted members); excess "
            "against all three is printed",
        ),
        alpha_alignment: bool = typer.Option(
            False,
            "--alpha-alignment",
            help="price the signal's residual (what the risk factors miss) as an extra factor "
            "with an estimated variance; needs --risk (see portfolio/alpha_alignment.py)",
        ),
        risk_scaling: bool = typer.Option(
            True,
            "--risk-scaling/--no-risk-scaling",
            help="scale the optimiser's covariance by the strategy's own past forecast bias, so "
            "the TE limit holds on realised TE (see portfolio/bias_scaling.py); --no-risk-scaling "
            "trusts the risk model's forecast as is",
        ),
        start: str | None = typer.Option(None, help="first signal date YYYY-MM-DD"),
        end: str | None = typer.Option(None, help="last date YYYY-MM-DD"),
        out: Path | None = typer.Option(
            None, help="write nav/rebalances/yearly/costs/weights/metrics here"
        ),
        drop_nonfinite: bool = typer.Option(
            False,
            "--drop-nonfinite",
            help="drop NaN/inf scores (counted in a warning) instead of refusing the file",
        ),
    ) -> None:
        """Index-enhancement backtest: TE-constrained optimiser at each rebalance, next-day
        execution under A-share trading rules and costs; excess against the total-return index,
        the price index and the member proxy, and a cost-sensitivity table (0/5/10/20 bps)."""
        from pydantic import ValidationError

        from deepalpha.atomic import ensure_writable
        from deepalpha.data.predictions import read_predictions
        from deepalpha.errors import ConfigError
        from deepalpha.guards import finite_scores
        from deepalpha.portfolio.costs import CostConfig
        from deepalpha.portfolio.enhance import BacktestConfig, backtest_predictions, write_result
        from deepalpha.portfolio.optimizer import OptimizerConfig

        con = Console(stderr=True)
        try:
            cfg = BacktestConfig(
                index=index,
                freq=freq,
                execution=execution,
                start=_date(start, "start"),
                end=_date(end, "end"),
                max_outside=max_outside,
                benchmark=benchmark,
                alpha_alignment=alpha_alignment,
                risk_scaling=risk_scaling,
                optimizer=OptimizerConfig(
                    te=te,
                    turnover=turnover,
                    industry_bound=industry_bound,
                    style_bound=style_bound,
                    stock_active_bound=stock_bound,
                    min_index_weight=min_index_weight,
                ),
                costs=CostConfig(slippage_bps=slippage_bps),
            )
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            raise ConfigError(f"bad option {loc}: {err['msg']}") from None
        if cfg.start is not None and cfg.end is not None and cfg.start > cfg.end:
            raise ConfigError(f"--start {cfg.start} is after --end {cfg.end}")
        if alpha_alignment and risk is None:
            raise ConfigError(
                "--alpha-alignment needs --risk RISK_DIR (a risk model with specific returns)"
            )
        if out is not None:
            ensure_writable(out)  # before the backtest, not after it
        t0 = time.perf_counter()
        preds = read_predictions(predictions)
        preds, dropped = finite_scores(preds, file=predictions, drop=drop_nonfinite)
        if dropped:
            con.print(
                f"[yellow]warning:[/] dropped {dropped:,} NaN/inf score(s) from {predictions} "
                "(--drop-nonfinite)",
                highlight=False,
            )
        con.print(
            f"{predictions}: {preds.height:,} scores, "
            f"{preds['date'].min()}..{preds['date'].max()}, {preds['asset'].n_unique():,} assets"
        )
        from rich.progress import Progress

        with Progress(console=con, transient=True) as bar:
            task = bar.add_task("rebalancing", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            res = backtest_predictions(
                preds, data, cfg, risk_dir=risk, progress=progress, log=con.print
            )
        wall = time.perf_counter() - t0
        m = res.metrics
        w0, w1 = res.info["window"]
        tab = Table(title=f"{index} enhancement {w0}..{w1} ({res.info['benchmark']})")
        tab.add_column("metric")
        tab.add_column("value", justify="right")
        for k in (
            "annual_return",
            "bench_annual_return",
            "excess_return",
            "tracking_error",
            "information_ratio",
            "price_excess_return",
            "price_information_ratio",
            "proxy_excess_return",
            "proxy_information_ratio",
            "excess_max_drawdown",
            "monthly_win_rate",
            "ex_ante_te",
            "proxy_realised_te",
            "te_ratio",
            "turnover_per_rebalance",
            "turnover_annual",
            "cost_annual",
            "relaxed_share",
            "mean_solve_time",
            "rebalances",
        ):
            if k in m:
                tab.add_row(k, _fmt(k, m[k]))
        outc = Console(width=max(Console().width, 110))
        outc.print(tab)
        yt = Table(title="per year (returns over the year, not annualised)")
        cols = {
            "year": "year",
            "period_return": "port",
            "bench_period_return": "bench",
            "excess_period_return": "excess",
            "price_excess_period_return": "vs price idx",
            "tracking_error": "TE",
            "information_ratio": "IR",
            "excess_max_drawdown": "ex MDD",
            "turnover_annual": "turn/yr",
            "cost_annual": "costs",
            "ex_ante_te": "ex-ante TE",
            "te_ratio": "TE ratio",
        }
        cols = {k: v for k, v in cols.items() if k in res.yearly.columns}
        for v in cols.values():
            yt.add_column(v, justify="right")
        for row in res.yearly.select(list(cols)).iter_rows(named=True):
            yt.add_row(*[str(row["year"])] + [_fmt(c, row[c]) for c in list(cols)[1:]])
        outc.print(yt)
        outc.print(excess_table(res))
        sens = res.info.get("cost_sensitivity")
        if sens is not None:
            outc.print(cost_table(sens, res.config.costs.slippage_bps))
        con.print(f"risk model: {res.info['risk_model']}")
        con.print(f"candidates: {res.info.get('candidate_universe', '-')}")
        for c in res.info["caveats"]:
            con.print(f"[dim]note: {c}[/]")
        if out is not None:
            files = write_result(res, out)
            con.print(f"wrote {', '.join(str(f) for f in files)}")
        con.print(f"wall time {wall:.1f} s")


BENCH_ROWS = (
    ("tr_", "total-return index (primary default)"),
    ("price_", "price index (no dividends)"),
    ("proxy_", "cap-weighted member proxy"),
)


def excess_table(res: Any) -> Table:
    """Excess return / TE / IR against each benchmark the backtest has."""
    m = res.metrics
    tab = Table(title=f"excess by benchmark (primary: {res.info.get('benchmark', '-')})")
    for c in ("benchmark", "bench ann.", "excess ann.", "TE", "IR"):
        tab.add_column(c, justify="left" if c == "benchmark" else "right")
    for p, label in BENCH_ROWS:
        if f"{p}excess_return" not in m:
            tab.add_row(label, "-", "-", "-", "not available")
            continue
        tab.add_row(
            label,
            _fmt("x_return", m.get(f"{p}bench_annual_return")),
            _fmt("excess_return", m[f"{p}excess_return"]),
            _fmt("tracking_error", m.get(f"{p}tracking_error")),
            _fmt("information_ratio", m.get(f"{p}information_ratio")),
        )
    return tab


def cost_table(sens: Any, configured: float) -> Table:
    """The cost-sensitivity rows (`deepalpha.portfolio.sensitivity`) as a rich table."""
    tab = Table(title="cost sensitivity (same targets re-costed; excess vs the primary benchmark)")
    cols = {
        "slippage_bps": "slippage bps/side",
        "excess_return": "excess ann.",
        "information_ratio": "IR",
        "tracking_error": "TE",
        "cost_annual": "costs / yr",
        "price_excess_return": "vs price index",
        "proxy_excess_return": "vs proxy",
    }
    for v in cols.values():
        tab.add_column(v, justify="right")
    for row in sens.iter_rows(named=True):
        cells = [_fmt(k, row.get(k)) for k in cols]
        cells[0] = f"{row['slippage_bps']:g}" + (" *" if row["slippage_bps"] == configured else "")
        tab.add_row(*cells)
    return tab
