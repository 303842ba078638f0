"""The backtest figure draws the primary benchmark, the member proxy and the price index."""

from __future__ import annotations

import numpy as np

from deepalpha.report import plots


def test_portfolio_figure_shows_price_index_beside_total_return():
    dates = np.arange("2020-01-01", "2020-03-01", dtype="datetime64[D]")
    T = dates.size
    nav = np.linspace(1.0, 1.1, T)
    tr = np.linspace(1.0, 1.05, T)
    price = np.linspace(1.0, 1.04, T)
    fig = plots.portfolio(dates, nav, tr, nav / tr, tr * 0.99, "csi500 (total return)", price=price)
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert labels == ["portfolio", "csi500 (total return)", "member proxy", "price index"]
    fig2 = plots.portfolio(dates, nav, tr, nav / tr)
    assert [ln.get_label() for ln in fig2.axes[0].get_lines()] == ["portfolio", "index"]
