"""Report sections of one backtest's risk views (`deepalpha.portfolio.risk_tracking` output):
ex-ante vs realised tracking error per year, active exposures over time, return attribution.

Everything is against the cap-weighted member proxy (the benchmark the optimiser sees). Each
function takes a `PortfolioView` and returns HTML ("" when the backtest predates these files);
the formatting helpers come from `html` (imported inside: `html` imports this module).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from deepalpha.report import plots
from deepalpha.report.load import PortfolioView

__all__ = ["attribution_section", "exposure_section", "portfolio_risk", "te_table"]


def te_table(p: PortfolioView) -> str:
    """Realised TE against the member proxy / ex-ante TE, per year."""
    from deepalpha.report.html import num, pct, table

    y = p.risk_yearly
    if y is None or y.height == 0:
        return ""
    spec = [
        ("proxy_realised_te", "realised TE", pct), ("ex_ante_te", "ex-ante (optimiser)", pct),
        ("te_ratio", "ratio", num), ("ex_ante_te_held", "ex-ante (held)", pct),
        ("te_ratio_held", "ratio (held)", num), ("bias_stat", "bias stat", num),
        ("realised_factor_te", "realised factor", pct),
        ("ex_ante_factor_te", "ex-ante factor", pct),
        ("realised_specific_te", "realised specific", pct),
        ("ex_ante_specific_te", "ex-ante specific", pct),
        ("realised_residual_te", "residual (costs)", pct),
    ]  # fmt: skip
    spec = [s for s in spec if s[0] in y.columns]
    rows = [[str(r["year"])] + [f(r.get(k)) for k, _, f in spec] for r in y.iter_rows(named=True)]
    return table(
        ["year"] + [h for _, h, _ in spec],
        rows,
        caption="ex-ante vs realised tracking error against the member proxy (ratio = realised "
        "/ ex-ante; held = the drifted weights actually held each day; bias stat = std of the "
        "daily active return over its forecast)",
    )


def exposure_section(p: PortfolioView) -> str:
    """Active style exposures over time (figure) and a summary table of styles and the
    industries with the largest mean absolute active weight."""
    from deepalpha.report.html import img, num, pct, table

    ex = p.exposures
    if ex is None or ex.height == 0:
        return ""
    st = ex.filter(pl.col("kind") == "style")
    out = []
    if st.height:
        wide = st.pivot(on="factor", index="date", values="active").sort("date")
        d = wide["date"].to_numpy().astype("datetime64[D]")
        lines = [plots.Line(c, d, wide[c].to_numpy()) for c in wide.columns if c != "date"]
        fig = plots.new_figure(3.4)
        ax = plots.style(fig.add_subplot(), "Active style exposures (portfolio - proxy)", "sigma")
        for ln in plots.colors(lines):
            ax.plot(ln.dates, ln.values, color=ln.color, linewidth=0.9, label=ln.label)
        ax.axhline(0, color="#999", linewidth=0.6)
        plots.date_axis(ax)
        plots.legend(ax, len(lines), outside=True)
        out.append(img(fig, f"active style exposures {p.name}"))
    agg = (
        ex.group_by("factor", "kind", maintain_order=True)
        .agg(
            pl.col("active").mean().alias("mean"),
            pl.col("active").abs().mean().alias("mean_abs"),
            pl.col("active").min().alias("min"),
            pl.col("active").max().alias("max"),
            pl.col("portfolio").mean().alias("port"),
            pl.col("benchmark").mean().alias("bench"),
        )
        .filter(pl.col("kind") != "country")
    )
    top_ind = agg.filter(pl.col("kind") == "industry").sort("mean_abs", descending=True).head(8)
    rows = []
    for r in pl.concat([agg.filter(pl.col("kind") == "style"), top_ind]).iter_rows(named=True):
        f = num if r["kind"] == "style" else pct
        rows.append([r["factor"], r["kind"], f(r["port"]), f(r["bench"]), f(r["mean"]),
                     f(r["mean_abs"]), f(r["min"]), f(r["max"])])  # fmt: skip
    out.append(
        table(
            ["factor", "kind", "portfolio", "proxy", "active mean", "mean |active|", "min", "max"],
            rows,
            left=2,
            caption="active exposures over the backtest (styles in sigma, industries as weight; "
            "the 8 industries with the largest mean |active|)",
        )
    )
    return "".join(out)


def attribution_section(p: PortfolioView) -> str:
    """Cumulative attribution figure and per-year table of the active return."""
    from deepalpha.report.html import img, pct, table

    a = p.attribution
    if a is None or a.height == 0:
        return ""
    a = a.sort("date")
    d = a["date"].to_numpy().astype("datetime64[D]")
    fig = plots.new_figure(3.4)
    ax = plots.style(fig.add_subplot(), "Cumulative active return vs the member proxy (sums)")
    series = ("total", "country", "industry", "style", "specific", "residual")
    for c, col in zip(series, ("#111111", *plots.PALETTE[:5]), strict=True):
        ax.plot(d, np.cumsum(a[c].to_numpy()), color=col, linewidth=1.4 if c == "total" else 1.0,
                label=c)  # fmt: skip
    ax.axhline(0, color="#999", linewidth=0.6)
    ax.yaxis.set_major_formatter(plots.PercentFormatter(1.0, decimals=0))
    plots.date_axis(ax)
    plots.legend(ax, len(series), outside=True)
    years = a.with_columns(pl.col("date").dt.year().cast(pl.Utf8).alias("year"))
    styles = [c for c in a.columns if c.startswith("style:")]
    cols = [*series, *styles]
    by = years.group_by("year", maintain_order=True).agg([pl.col(c).sum() for c in cols])
    tot = years.select([pl.lit("all").alias("year"), *[pl.col(c).sum() for c in cols]])
    rows = [
        [r["year"]] + [pct(r[c], 2) for c in cols]
        for r in pl.concat([by, tot]).iter_rows(named=True)
    ]
    heads = ["year", *series, *[c.removeprefix("style:") for c in styles]]
    cap = (
        "active return attribution per year (arithmetic sums of daily parts; factor = country + "
        "industry + style, residual = costs and execution; the parts add up to the total)"
    )
    return img(fig, f"attribution {p.name}") + table(heads, rows, caption=cap)


def portfolio_risk(p: PortfolioView) -> str:
    """All risk views of one backtest (empty for backtests without them)."""
    body = te_table(p) + exposure_section(p) + attribution_section(p)
    if not body:
        return ""
    return f"<h4>risk against the member proxy</h4>{body}"
