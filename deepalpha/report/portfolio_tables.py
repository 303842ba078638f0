"""Report tables of one index-enhancement backtest: excess by benchmark and cost sensitivity.

Used by `deepalpha.report.html.portfolio_section`; the formatting helpers come from `html`
(imported inside the functions: `html` imports this module).
"""

from __future__ import annotations

from deepalpha.report.load import PortfolioView

__all__ = ["benchmark_table", "cost_table"]

BENCHMARKS = (
    ("tr_", "total-return index (price + accrued member dividend yield)"),
    ("price_", "price index (no dividends: flatters by the yield)"),
    ("proxy_", "cap-weighted member proxy (total return)"),
)


def benchmark_table(p: PortfolioView) -> str:
    """Excess return, TE and IR of the whole period against each benchmark the backtest has
    (``tr_*``, ``price_*``, ``proxy_*`` metrics); empty for runs made before they existed."""
    from deepalpha.report.html import num, pct, table

    m = p.metrics
    rows = [
        [label, pct(m.get(f"{k}bench_annual_return")), pct(m.get(f"{k}excess_return")),
         pct(m.get(f"{k}tracking_error")), num(m.get(f"{k}information_ratio"))]
        for k, label in BENCHMARKS if f"{k}excess_return" in m
    ]  # fmt: skip
    if not rows:
        return ""
    return table(["benchmark", "bench ann.", "excess ann.", "TE", "IR"], rows,
                 caption="excess by benchmark, whole period")  # fmt: skip


def cost_table(p: PortfolioView) -> str:
    """Excess / IR at slippage 0 / 5 / 10 / 20 bps per side (the same targets re-costed; the
    configured level is the main run); empty when the backtest has no such table."""
    from deepalpha.report.html import num, pct, table

    c = p.costs
    if c is None or c.height == 0:
        return ""
    rows = [
        [f"{r['slippage_bps']:g}", pct(r.get("excess_return")), num(r.get("information_ratio")),
         pct(r.get("tracking_error")), pct(r.get("cost_annual")),
         pct(r.get("price_excess_return")), pct(r.get("proxy_excess_return")),
         str(r.get("source", "-"))]
        for r in c.iter_rows(named=True)
    ]  # fmt: skip
    return table(
        ["slippage bps / side", "excess ann.", "IR", "TE", "cost / yr", "vs price index",
         "vs proxy", "source"], rows, left=1,
        caption="cost sensitivity (same targets re-costed; the optimiser has no cost term)",
    )  # fmt: skip
