"""`deepalpha risk explain WEIGHTS --risk RISK_DIR`: risk decomposition of one portfolio."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table


def register(app: typer.Typer) -> None:
    """Add ``explain`` to the ``risk`` command group."""

    @app.command()
    def explain(
        weights: Path = typer.Argument(
            ...,
            help="a backtest's weights.parquet (or its folder), or a CSV / Parquet of "
            "date, asset, weight",
        ),
        risk: Path = typer.Option(..., "--risk", help="risk model dir (deepalpha risk build)"),
        benchmark: str | None = typer.Option(
            None,
            help="csi300 | csi500 | csi800 | csi1000 (cap-weighted member proxy) or a CSV / "
            "Parquet of asset, weight [, date]",
        ),
        date: str | None = typer.Option(None, help="YYYY-MM-DD (default: the file's last date)"),
        data: Path | None = typer.Option(
            None, help="data folder for the benchmark (default: the one the model was built from)"
        ),
        top: int = typer.Option(10, help="factors and stocks to list"),
        out: Path | None = typer.Option(None, help="also write the result as JSON here"),
    ) -> None:
        """Total, factor, specific and active risk (ex-ante TE), predicted beta, and marginal /
        percent contributions by factor, group (country / industry / style) and stock."""
        import json
        import time
        from datetime import datetime

        from deepalpha.atomic import atomic_write_text, ensure_writable
        from deepalpha.errors import ConfigError
        from deepalpha.risk.explain import explain as run_explain
        from deepalpha.risk.explain import to_dict

        t0 = time.perf_counter()
        if date is not None:
            try:
                datetime.strptime(date, "%Y-%m-%d")
            except ValueError:
                raise ConfigError(f"--date must be YYYY-MM-DD, got {date!r}") from None
        if top < 1:
            raise ConfigError(f"--top must be >= 1, got {top}")
        if out is not None:
            ensure_writable(out.parent)
        ex = run_explain(weights, risk, benchmark=benchmark, date=date, data=data)
        res = to_dict(ex, top=top)
        print_explanation(res, top)
        if out is not None:
            atomic_write_text(out, json.dumps(res, indent=2, default=str))
            Console(stderr=True).print(f"wrote {escape(str(out))}", highlight=False)
        Console(stderr=True).print(
            f"[dim]{res['n_holdings']} holdings; computed in {ex.seconds['total']:.3f} s "
            f"(decomposition {ex.seconds['decompose'] * 1e3:.1f} ms), command "
            f"{time.perf_counter() - t0:.2f} s[/]",
            highlight=False,
        )


def _p(v: float | None, d: int = 2) -> str:
    return "-" if v is None or v != v else f"{100 * v:.{d}f}%"


def print_explanation(res: dict, top: int) -> None:
    """The tables of `deepalpha.risk.explain.to_dict` output."""
    con = Console(width=max(Console().width, 110))
    act = res["active_risk"] is not None
    head = Table(
        title=f"risk on {res['date']} (exposures {res['exposure_date']}, covariance "
        f"{res['covariance_date']}; annualised)",
        show_header=False,
    )
    head.add_row("weights", escape(res["weights_file"]))
    head.add_row("holdings / weight sum", f"{res['n_holdings']} / {res['weight_sum']:.4f}")
    head.add_row("benchmark", escape(res["benchmark"] or "none"))
    head.add_row("total risk", _p(res["total_risk"]))
    head.add_row("  factor / specific", f"{_p(res['factor_risk'])} / {_p(res['specific_risk'])}")
    if act:
        head.add_row("benchmark risk", _p(res["benchmark_risk"]))
        head.add_row("active risk (ex-ante TE)", _p(res["active_risk"]))
        head.add_row(
            "  factor / specific",
            f"{_p(res['active_factor_risk'])} / {_p(res['active_specific_risk'])}",
        )
    head.add_row(f"predicted beta ({res['beta_on']})", f"{res['beta']:.3f}")
    if res["filled_assets"]:
        fa = res["filled_assets"]
        head.add_row(
            "filled risk data",
            f"{len(fa)} stock(s) without exposures or specific risk on the date (styles 0, "
            f"median specific risk): {', '.join(fa[:5])}" + (" ..." if len(fa) > 5 else ""),
        )
    con.print(head)
    what = "active risk" if act else "total risk"
    g = Table(title=f"contributions to {what} by group (Euler: they add up)")
    for c in ("group", "contribution", "% of risk"):
        g.add_column(c, justify="left" if c == "group" else "right")
    for k in ("country", "industry", "style", "specific", "total"):
        v = res["groups"][k]
        g.add_row(k, _p(v["contrib"]), _p(v["pct"], 1))
    con.print(g)
    f = Table(title=f"factors: top {top} by |contribution to {what}| (exposures in sigma)")
    cols = ["factor", "kind", "portfolio"] + (["benchmark", "active"] if act else [])
    cols += ["marginal", "contribution", "%"]
    for c in cols:
        f.add_column(c, justify="left" if c in ("factor", "kind") else "right")
    rows = sorted(res["factors"], key=lambda r: -abs(r["contrib"]))[:top]
    for r in rows:
        cells = [r["factor"], r["kind"], f"{r['portfolio']:+.3f}"]
        if act:
            cells += [f"{r['benchmark']:+.3f}", f"{r['active']:+.3f}"]
        cells += [f"{r['marginal']:+.4f}", _p(r["contrib"], 3), _p(r["pct"], 1)]
        f.add_row(*cells)
    con.print(f)
    s = Table(title=f"stocks: top {top} by |contribution to {what}|")
    for c in ("asset", "weight", "benchmark", "marginal", "contribution", "%"):
        s.add_column(c, justify="left" if c == "asset" else "right")
    for r in res["top_assets"]:
        s.add_row(
            r["asset"], _p(r["weight"]), _p(r["benchmark"]), f"{r['marginal']:+.4f}",
            _p(r["contrib"], 3), _p(r["pct"], 1),
        )  # fmt: skip
    con.print(s)
