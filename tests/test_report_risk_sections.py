"""The HTML report shows a backtest's risk views (issue 17 items 8, 9, 11): TE table, active
exposures, attribution; older backtests without the files render as before."""

from __future__ import annotations

from test_portfolio_risk_tracking import run  # noqa: F401  (the module-scoped fixture)

from deepalpha.portfolio.enhance import write_result
from deepalpha.report.load import read_portfolios
from deepalpha.report.risk_sections import portfolio_risk


def test_sections_render_from_the_written_files(run, tmp_path):  # noqa: F811
    _, res, _, _ = run
    res.info["assets"] = [f"SH6{i:05d}" for i in range(res.backtest.weights.shape[1])]
    write_result(res, tmp_path / "portfolio" / "sig__csi500")
    (p,) = read_portfolios(tmp_path / "portfolio")
    assert p.exposures is not None and p.attribution is not None and p.risk_yearly is not None
    html = portfolio_risk(p)
    for needle in ("ex-ante vs realised tracking error", "alt=\"active style exposures sig__csi500", "s0",
                   "active return attribution per year", "alt=\"attribution sig__csi500", "ratio (held)"):  # fmt: skip
        assert needle in html, needle
    # a backtest folder from before the risk views: nothing added, nothing fails
    for f in ("exposures.parquet", "attribution.parquet", "risk_yearly.csv"):
        (tmp_path / "portfolio" / "sig__csi500" / f).unlink()
    (p,) = read_portfolios(tmp_path / "portfolio")
    assert portfolio_risk(p) == ""
